"""Encrypted blob store: images, templates, snapshots and crops, AES-256-GCM at rest.

Every blob is ``b"OLFR2" + key id(4) + nonce(12) + ciphertext``, sealed under the keyring's
primary key (see :mod:`openlfr.store.keys`) with the blob id bound in as associated data, so
sealed bytes moved to another id fail to decrypt. Blobs of earlier versions (``b"OLFR1" +
nonce + ciphertext``) are still read. The keyring comes from ``OPENLFR_KEY`` (base64, one
fixed key) or the key file ``OPENLFR_KEY_FILE`` (default ``<data_dir>/key``), created (mode
0600) on first use; ``openlfr key rotate`` replaces the key and reseals every blob.

Two backends share one interface, :class:`BlobBackend` (sealing, ids and the checks are
written once, here); they differ only in where the sealed bytes lie:

* :class:`BlobStore`, the embedded default (SQLite): one file ``<dir>/<id[:2]>/<id>`` per blob
  (mode 0600, folders 0700). :class:`BlobTransaction` makes the files follow the database
  transaction: blobs written in a rolled-back transaction are removed, and deletions happen
  only after a commit; a crash in between can leave files no row refers to, which the
  retention sweep removes (:meth:`BlobBackend.remove_orphans`).
* :class:`openlfr.store.db_blobs.DatabaseBlobStore` (PostgreSQL): rows of the ``blobs`` table,
  written and deleted in the services' own transaction, so every host and API replica reads
  them and a blob commits or rolls back with the rows that refer to it.

Named secrets (the audit checkpoint signing key) are sealed the same way, their name as the
associated data: a file beside the blob folder, or a row under a fixed id
(:meth:`BlobBackend.secret`).
"""

from __future__ import annotations

import os
import secrets
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from openlfr.errors import InputError, NotFoundError
from openlfr.store.keys import (
    MAGIC_V1,
    MAGIC_V2,
    EncryptionKeyError,
    Keyring,
    load_or_create_key,
    open_keyring,
)
from openlfr.store.settings import fsync_dir, private_dir, write_private

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

MAGIC = MAGIC_V2
HEX = frozenset("0123456789abcdef")

__all__ = [
    "MAGIC", "MAGIC_V1", "MAGIC_V2", "BlobBackend", "BlobStore", "BlobTransaction", "EncryptionKeyError", "Keyring",
    "SealedSecret", "load_or_create_key", "open_keyring",
]


def check_blob_id(blob_id: str) -> str:
    """``blob_id`` if it is a blob id (lowercase hex), else :class:`InputError`."""
    if not blob_id or not all(c in HEX for c in blob_id):
        raise InputError(f"invalid blob id {blob_id!r}")
    return blob_id


def new_blob_id() -> str:
    """A new random blob id (32 hex digits)."""
    return secrets.token_hex(16)


def as_keyring(key: bytes | Keyring) -> Keyring:
    """A :class:`Keyring`: ``key`` itself, or a fixed ring of that one 32-byte key."""
    if isinstance(key, Keyring):
        return key
    if len(key) != 32:
        raise EncryptionKeyError("blob key must be 32 bytes")
    return Keyring.single(bytes(key))


class SealedSecret(ABC):
    """One named secret sealed under the keyring (its name the associated data), made once per
    installation: the first writer wins, everyone then reads the winner's."""

    name: str

    @abstractmethod
    def load(self, session: Session | None = None) -> bytes | None:
        """The sealed bytes, or ``None`` when there are none yet."""

    @abstractmethod
    def create(self, sealed: bytes, session: Session | None = None) -> bool:
        """Store ``sealed`` unless a secret is already there. Returns whether what is stored now
        is durable (committed): ``False`` when it was written in ``session``'s open
        transaction, which may still roll back."""


class BlobBackend(ABC):
    """Sealed blobs addressed by random ids; subclasses say where the sealed bytes lie.

    ``put``/``get``/``exists``/``delete`` act at once (their own transaction); services go
    through :meth:`transaction`, which ties them to the database transaction.
    """

    kind: ClassVar[str]

    def __init__(self, key: bytes | Keyring) -> None:
        self.keyring = as_keyring(key)  # a ring read from a file follows a rotation by another process

    # ------------------------------------------------------------------ what a backend provides
    @abstractmethod
    def sealed(self, blob_id: str) -> bytes:
        """The blob as stored (ciphertext); :class:`NotFoundError` when it does not exist."""

    @abstractmethod
    def put_sealed(self, blob_id: str, sealed: bytes) -> None:
        """Store already sealed bytes under ``blob_id`` (a new blob, or one restored from a backup)."""

    @abstractmethod
    def exists(self, blob_id: str) -> bool:
        """Whether the blob is stored."""

    @abstractmethod
    def delete(self, blob_id: str) -> None:
        """Remove a blob (no error if already gone)."""

    @abstractmethod
    def ids(self) -> set[str]:
        """The id of every stored blob (named secrets aside)."""

    @abstractmethod
    def remove_orphans(self, referenced: set[str], older_than_s: float = 600.0,
                       session: Session | None = None) -> tuple[int, int]:
        """Delete blobs no row refers to (and half-written files), if older than ``older_than_s``
        seconds, so that a write still in progress elsewhere is never touched. Returns
        (temporary files, orphan blobs) removed."""

    @abstractmethod
    def transaction(self, session: Session) -> BlobTransaction:
        """Blob operations tied to ``session``'s transaction."""

    @abstractmethod
    def secret(self, name: str) -> SealedSecret:
        """The named secret ``name`` of this installation."""

    # ------------------------------------------------------------------ sealing, once for both
    def seal(self, blob_id: str, data: bytes) -> bytes:
        """``data`` sealed for ``blob_id``."""
        return self.keyring.seal(data, check_blob_id(blob_id).encode())

    def open(self, blob_id: str, sealed: bytes) -> bytes:
        """The clear bytes of a blob's ``sealed`` bytes (:class:`EncryptionKeyError` if they do not open)."""
        if not sealed.startswith((MAGIC_V1, MAGIC_V2)):
            raise EncryptionKeyError(f"blob {blob_id} is not an openlfr encrypted blob")
        return self.keyring.open(sealed, blob_id.encode(), f"blob {blob_id}")

    def put(self, data: bytes) -> str:
        """Encrypt ``data`` to a new blob and return its id."""
        blob_id = new_blob_id()
        self.put_sealed(blob_id, self.seal(blob_id, data))
        return blob_id

    def get(self, blob_id: str) -> bytes:
        """Decrypt and return a blob; :class:`NotFoundError` when it was deleted."""
        return self.open(blob_id, self.sealed(check_blob_id(blob_id)))


class FileSecret(SealedSecret):
    """A named secret in a file (mode 0600), created by linking a complete temporary file to the
    final name, which fails if another process got there first."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.name = self.path.name

    def load(self, session: Session | None = None) -> bytes | None:
        try:
            return self.path.read_bytes()
        except FileNotFoundError:
            return None

    def create(self, sealed: bytes, session: Session | None = None) -> bool:
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{secrets.token_hex(4)}.tmp")
        write_private(tmp, sealed)
        try:
            os.link(tmp, self.path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
        fsync_dir(self.path.parent)
        return True


class BlobStore(BlobBackend):
    """AES-GCM encrypted files addressed by random ids (the embedded default).

    ``key`` is a :class:`~openlfr.store.keys.Keyring` (which follows a rotation done by
    another process) or one fixed 32-byte key. Named secrets are files beside ``root``.
    """

    kind = "files"

    def __init__(self, root: Path, key: bytes | Keyring, *, durable: bool = True) -> None:
        super().__init__(key)
        self.root = Path(root)
        self.durable = durable

    def _path(self, blob_id: str) -> Path:
        check_blob_id(blob_id)
        return self.root / blob_id[:2] / blob_id

    def put_sealed(self, blob_id: str, sealed: bytes) -> None:
        """Write a blob's file atomically (mode 0600)."""
        path = self._path(blob_id)
        if not path.parent.is_dir():
            private_dir(path.parent)
        write_private(path, sealed, durable=self.durable)

    def sealed(self, blob_id: str) -> bytes:
        try:
            return self._path(blob_id).read_bytes()
        except FileNotFoundError as err:
            raise NotFoundError(f"blob {blob_id} does not exist (deleted?)") from err

    def exists(self, blob_id: str) -> bool:
        return self._path(blob_id).exists()

    def delete(self, blob_id: str) -> None:
        self._path(blob_id).unlink(missing_ok=True)

    def ids(self) -> set[str]:
        if not self.root.is_dir():
            return set()
        return {p.name for folder in self.root.iterdir() if folder.is_dir() and len(folder.name) == 2
                for p in folder.iterdir() if p.is_file() and set(p.name) <= HEX}

    def remove_orphans(self, referenced: set[str], older_than_s: float = 600.0,
                       session: Session | None = None) -> tuple[int, int]:
        """Half-written ``.*.tmp`` files, and blob files no row refers to (written by a
        transaction that never committed): see :meth:`BlobBackend.remove_orphans`."""
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
                elif path.name not in referenced and set(path.name) <= HEX:
                    path.unlink(missing_ok=True)
                    orphans += 1
        return tmp, orphans

    def transaction(self, session: Session) -> BlobTransaction:
        return BlobTransaction(self)

    def secret(self, name: str) -> SealedSecret:
        """A file ``<name>`` beside the blob folder (``openlfr key rotate`` reseals the files with
        the rest of the data directory: :func:`openlfr.store.keys.reseal_tree`)."""
        return FileSecret(self.root.parent / name)


class BlobTransaction:
    """Blob operations tied to one database transaction, on a store that is not itself
    transactional (files): writes are undone by a rollback, deletions wait for the commit."""

    def __init__(self, store: BlobBackend) -> None:
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

    def remove_orphans(self, referenced: set[str], older_than_s: float = 600.0) -> tuple[int, int]:
        """:meth:`BlobBackend.remove_orphans` (in this transaction where the store is transactional)."""
        return self.store.remove_orphans(referenced, older_than_s)

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
