"""Where the governance store lives: database URL and blob folder.

Read from ``OPENLFR_DATABASE_URL`` (any SQLAlchemy URL; ``postgresql+psycopg://...`` for
PostgreSQL) with the embedded default ``sqlite:///<data_dir>/openlfr.db``. These belong in
:mod:`openlfr.config` eventually; they are kept here so the store can be used on its own.
"""

from __future__ import annotations

import os
from pathlib import Path

from openlfr.config import get_settings


def data_dir() -> Path:
    """The openlfr data directory (``OPENLFR_DATA_DIR``), created if missing."""
    path = Path(get_settings().data_dir)
    path.mkdir(parents=True, exist_ok=True)
    return path


def database_url() -> str:
    """``OPENLFR_DATABASE_URL`` or the SQLite file in the data directory."""
    url = os.environ.get("OPENLFR_DATABASE_URL")
    if url:
        return url
    return f"sqlite:///{data_dir() / 'openlfr.db'}"


def blob_dir() -> Path:
    """Folder of encrypted blobs: ``<data_dir>/blobs``."""
    return data_dir() / "blobs"
