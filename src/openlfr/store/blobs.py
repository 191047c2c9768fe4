"""Encrypted blob store: images, templates, snapshots and crops, AES-256-GCM at rest.

Each blob is one file ``<dir>/<id[:2]>/<id>`` (mode 0600, folders 0700) holding
``b"OLFR2" + key id(4) + nonce(12) + ciphertext``, sealed under the keyring's primary key
(see :mod:`openlfr.store.keys`); the blob id is bound in as associated data, so a file
renamed to another id fails to decrypt. Blobs of earlier versions (``b"OLFR1" + nonce +
ciphertext``) are still read. The keyring comes from ``OPENLFR_KEY`` (base64, one fixed
key) or the key file ``OPENLFR_KEY_FILE`` (default ``<data_dir>/key``), created (mode 0600)
on first use; ``openlfr key rotate`` replaces the key and reseals every blob.

:class:`BlobTransaction` makes blob writes follow the database transaction: blobs written
in a rolled-back transaction are removed, and deletions happen only after a commit.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from openlfr.errors import InputError, NotFoundError
from openlfr.store.keys import MAGIC_V1, MAGIC_V2, EncryptionKeyError, Keyring, load_or_create_key, open_keyring
from openlfr.store.settings import private_dir, write_private

MAGIC = MAGIC_V2

__all__ = [
    "MAGIC", "MAGIC_V1", "MAGIC_V2", "BlobStore", "BlobTransaction", "EncryptionKeyError", "Keyring",
    "load_or_create_key", "open_keyring",
]


class BlobStore:
    """AES-GCM encrypted files addressed by random ids.

    ``key`` is a :class:`~openlfr.store.keys.Keyring` (which follows a rotation done by
    another process) or one fixed 32-byte key.
    """

    def __init__(self, root: Path, key: bytes | Keyring, *, durable: bool = True) -> None:
        if isinstance(key, Keyring):
            self.keyring = key
        else:
            if len(key) != 32:
                raise EncryptionKeyError("blob key must be 32 bytes")
            self.keyring = Keyring.single(bytes(key))
        self.root = Path(root)
        self.durable = durable

    def _path(self, blob_id: str) -> Path:
        if not blob_id or not all(c in "0123456789abcdef" for c in blob_id):
            raise InputError(f"invalid blob id {blob_id!r}")
        return self.root / blob_id[:2] / blob_id

    def put(self, data: bytes) -> str:
        """Encrypt ``data`` to a new blob (mode 0600, written atomically) and return its id."""
        blob_id = secrets.token_hex(16)
        sealed = self.keyring.seal(data, blob_id.encode())
        path = self._path(blob_id)
        if not path.parent.is_dir():
            private_dir(path.parent)
        write_private(path, sealed, durable=self.durable)
        return blob_id

    def get(self, blob_id: str) -> bytes:
        """Decrypt and return a blob; :class:`NotFoundError` when it was deleted."""
        path = self._path(blob_id)
        try:
            sealed = path.read_bytes()
        except FileNotFoundError as err:
            raise NotFoundError(f"blob {blob_id} does not exist (deleted?)") from err
        if not sealed.startswith((MAGIC_V1, MAGIC_V2)):
            raise EncryptionKeyError(f"blob {blob_id} is not an openlfr encrypted blob")
        return self.keyring.open(sealed, blob_id.encode(), f"blob {blob_id}")

    def exists(self, blob_id: str) -> bool:
        """Whether the blob's file is present."""
        return self._path(blob_id).exists()

    def delete(self, blob_id: str) -> None:
        """Remove a blob's file (no error if already gone)."""
        self._path(blob_id).unlink(missing_ok=True)

    def remove_orphans(self, referenced: set[str], older_than_s: float = 600.0) -> tuple[int, int]:
        """Delete what a crash can leave behind, if older than ``older_than_s`` seconds (so that a
        write still in progress elsewhere is never touched): half-written ``.*.tmp`` files, and
        blob files no row refers to (written by a transaction that never committed). Returns
        (temporary files, orphan blobs) removed."""
        import time

        cutoff = time.time() - older_than_s
        tmp = orphans = 0
        if not self.root.is_dir():
            return 0, 0
        for folder in self.root.iterdir():
            if not folder.is_dir() or len(folder.name) != 2:
                continue
            for path in folder.iterdir():
                try:
                    if path.stat().st_mtime > cutoff:
                        continue
                except FileNotFoundError:
                    continue
                if path.name.startswith(".") and path.name.endswith(".tmp"):
                    path.unlink(missing_ok=True)
                    tmp += 1
                elif path.name not in referenced and all(c in "0123456789abcdef" for c in path.name):
                    path.unlink(missing_ok=True)
                    orphans += 1
        return tmp, orphans


class BlobTransaction:
    """Blob operations tied to one database transaction (see module docstring)."""

    def __init__(self, store: BlobStore) -> None:
        self.store = store
        self._written: list[str] = []
        self._to_delete: list[str] = []

    def put(self, data: bytes) -> str:
        """Write a blob now; it is removed again if the transaction rolls back."""
        blob_id = self.store.put(data)
        self._written.append(blob_id)
        return blob_id

    def get(self, blob_id: str) -> bytes:
        """Read a blob."""
        return self.store.get(blob_id)

    def delete(self, blob_id: str) -> None:
        """Schedule a blob's deletion for when the transaction commits."""
        self._to_delete.append(blob_id)

    def commit(self) -> None:
        """Carry out the scheduled deletions."""
        for blob_id in self._to_delete:
            self.store.delete(blob_id)
        self._written.clear()
        self._to_delete.clear()

    def rollback(self) -> None:
        """Remove the blobs written in this transaction; keep the ones scheduled for deletion."""
        for blob_id in self._written:
            self.store.delete(blob_id)
        self._written.clear()
        self._to_delete.clear()
