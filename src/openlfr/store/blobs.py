"""Encrypted blob store: images, templates, snapshots and crops, AES-256-GCM at rest.

Each blob is one file ``<dir>/<id[:2]>/<id>`` holding ``b"OLFR1" + nonce(12) + ciphertext``;
the blob id is bound in as associated data, so a file renamed to another id fails to
decrypt. The key is 32 bytes, given base64 in ``OPENLFR_KEY`` or read from ``<data_dir>/key``,
which is created (mode 0600) on first use.

:class:`BlobTransaction` makes blob writes follow the database transaction: blobs written
in a rolled-back transaction are removed, and deletions happen only after a commit.
"""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from openlfr.errors import InputError, NotFoundError, OpenLFRError

MAGIC = b"OLFR1"
KEY_ENV = "OPENLFR_KEY"


class EncryptionKeyError(OpenLFRError):
    """The encryption key is missing, malformed or does not open a blob."""


def load_or_create_key(key_file: Path) -> bytes:
    """The 32-byte key from ``OPENLFR_KEY`` (base64) or ``key_file``, created if missing."""
    env = os.environ.get(KEY_ENV)
    if env:
        try:
            key = base64.b64decode(env, validate=True)
        except ValueError as err:
            raise EncryptionKeyError(f"{KEY_ENV} is not valid base64") from err
        if len(key) != 32:
            raise EncryptionKeyError(f"{KEY_ENV} must decode to 32 bytes, got {len(key)}")
        return key
    if key_file.exists():
        key = base64.b64decode(key_file.read_text().strip())
        if len(key) != 32:
            raise EncryptionKeyError(f"key file {key_file} does not hold a 32-byte base64 key")
        return key
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    # O_EXCL + 0600: never world-readable, and two first runs cannot race to different keys.
    try:
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return load_or_create_key(key_file)
    with os.fdopen(fd, "w") as fh:
        fh.write(base64.b64encode(key).decode() + "\n")
    return key


class BlobStore:
    """AES-GCM encrypted files addressed by random ids."""

    def __init__(self, root: Path, key: bytes) -> None:
        if len(key) != 32:
            raise EncryptionKeyError("blob key must be 32 bytes")
        self.root = Path(root)
        self._aead = AESGCM(key)

    def _path(self, blob_id: str) -> Path:
        if not blob_id or not all(c in "0123456789abcdef" for c in blob_id):
            raise InputError(f"invalid blob id {blob_id!r}")
        return self.root / blob_id[:2] / blob_id

    def put(self, data: bytes) -> str:
        """Encrypt ``data`` to a new blob and return its id."""
        blob_id = secrets.token_hex(16)
        nonce = secrets.token_bytes(12)
        sealed = MAGIC + nonce + self._aead.encrypt(nonce, data, blob_id.encode())
        path = self._path(blob_id)
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.parent.mkdir(mode=0o700, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(sealed)
        os.replace(tmp, path)
        return blob_id

    def get(self, blob_id: str) -> bytes:
        """Decrypt and return a blob; :class:`NotFoundError` when it was deleted."""
        path = self._path(blob_id)
        try:
            sealed = path.read_bytes()
        except FileNotFoundError as err:
            raise NotFoundError(f"blob {blob_id} does not exist (deleted?)") from err
        if not sealed.startswith(MAGIC):
            raise EncryptionKeyError(f"blob {blob_id} is not an openlfr encrypted blob")
        nonce, body = sealed[len(MAGIC) : len(MAGIC) + 12], sealed[len(MAGIC) + 12 :]
        try:
            return self._aead.decrypt(nonce, body, blob_id.encode())
        except InvalidTag as err:
            raise EncryptionKeyError(f"blob {blob_id} cannot be decrypted: wrong key or tampered file") from err

    def exists(self, blob_id: str) -> bool:
        """Whether the blob's file is present."""
        return self._path(blob_id).exists()

    def delete(self, blob_id: str) -> None:
        """Remove a blob's file (no error if already gone)."""
        self._path(blob_id).unlink(missing_ok=True)


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
