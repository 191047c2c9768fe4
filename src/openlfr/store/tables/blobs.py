"""Encrypted blobs held in the database (PostgreSQL), so that every host and API replica reads
the same crops, images and snapshots (:class:`openlfr.store.db_blobs.DatabaseBlobStore`).

The bytes are sealed exactly as the files of :class:`openlfr.store.blobs.BlobStore` are
(AES-256-GCM under the keyring, the blob id bound in): the database never sees a clear image.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from openlfr.store.tables.base import Base
from openlfr.store.types import UTCDateTime


class StoredBlob(Base):
    """One sealed blob: ``b"OLFR2" + key id + nonce + ciphertext``."""

    __tablename__ = "blobs"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
