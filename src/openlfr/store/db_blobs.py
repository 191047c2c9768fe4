"""Encrypted blobs in the database, so that every host and API replica reads the same crops,
images and snapshots; and the choice between the two blob backends.

:class:`DatabaseBlobStore` keeps each blob as a row of ``blobs``
(:class:`~openlfr.store.models.StoredBlob`) holding exactly the bytes a
:class:`~openlfr.store.blobs.BlobStore` file would hold (sealed under the same keyring, the
blob id bound in as associated data), so the database only ever sees ciphertext. In a
service's transaction (:class:`DatabaseBlobTransaction`) a blob is inserted and deleted
through the transaction's own session: it commits or rolls back with the rows that refer to
it, and no crash can leave an orphan or a dangling reference. Named secrets (the audit
checkpoint signing key) are rows under their fixed, non-hex name, so every host signs with
the same key; a key rotation reseals every row (:meth:`DatabaseBlobStore.reseal`).

Every host must open the blobs with the same keyring: give each the same ``OPENLFR_KEY``, or
the same key file (``OPENLFR_KEY_FILE`` on a shared secret mount, which a rotation replaces
for all of them at once: a ring notices the replaced file before sealing or failing to open).

:func:`blob_backend` says which backend a store uses: ``cluster.blobs`` (``OPENLFR_BLOBS``),
where ``auto`` means the database on PostgreSQL and files on SQLite (the embedded default
stays a folder, and a SQLite file holds no large blobs).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, make_url, select, update
from sqlalchemy.orm import Session

from openlfr.errors import InputError, NotFoundError
from openlfr.store.blobs import (
    HEX, BlobBackend, BlobStore, BlobTransaction, SealedSecret, check_blob_id, new_blob_id,
)
from openlfr.store.keys import ID_LEN, MAGIC_V2, EncryptionKeyError, Keyring
from openlfr.store.inserts import dialect_insert
from openlfr.store.models import StoredBlob

BACKENDS = ("files", "database")
#: called with (where, outcome) for each row a rotation looks at (see :func:`openlfr.store.keys.reseal_file`)
Progress = Callable[[Path, str], None]
#: blobs read and resealed per transaction by a key rotation
RESEAL_BATCH = 100
#: orphan rows deleted per statement
DELETE_BATCH = 500

__all__ = ["BACKENDS", "DatabaseBlobStore", "DatabaseBlobTransaction", "blob_backend", "open_blob_store"]


def blob_backend(store: Engine | str, choice: str | None = None) -> str:
    """``"files"`` or ``"database"``: ``choice`` (default the setting ``cluster.blobs``), with
    ``"auto"`` resolved by the database of ``store`` (an engine or a URL): the database on
    PostgreSQL, files elsewhere."""
    if choice is None:
        from openlfr.config import get_settings

        choice = get_settings().cluster.blobs
    if choice == "auto":
        name = make_url(store).get_backend_name() if isinstance(store, str) else store.dialect.name
        return "database" if name == "postgresql" else "files"
    if choice not in BACKENDS:
        raise InputError(f"unknown blob backend {choice!r}: auto, files or database")
    return choice


def open_blob_store(engine: Engine, *, root: Path | None = None, key: bytes | Keyring | None = None,
                    backend: str | None = None) -> BlobBackend:
    """The blob store of the store at ``engine``: files under ``root`` (default
    ``<data_dir>/blobs``) or rows of its ``blobs`` table, as :func:`blob_backend` says; sealed
    under ``key`` (default the configured keyring: ``OPENLFR_KEY`` or the key file)."""
    from openlfr.store.keys import open_keyring
    from openlfr.store.settings import blob_dir

    ring = key if key else open_keyring()  # (empty: a worker told to read the key file itself)
    if blob_backend(engine, backend) == "database":
        return DatabaseBlobStore(engine, ring)
    return BlobStore(root or blob_dir(), ring)


def _insert_ignoring_duplicates(on: Session | Connection, values: dict[str, Any]) -> Any:
    """``INSERT ... ON CONFLICT (id) DO NOTHING`` into ``blobs`` on either database."""
    return dialect_insert(on, StoredBlob).values(**values).on_conflict_do_nothing(index_elements=["id"])


class DatabaseBlobStore(BlobBackend):
    """Sealed blobs as rows of the ``blobs`` table (see module docstring).

    The methods without a session act in their own short transaction; a service's work goes
    through :meth:`transaction` instead."""

    kind = "database"

    def __init__(self, engine: Engine, key: bytes | Keyring) -> None:
        super().__init__(key)
        self.engine = engine

    @contextmanager
    def _conn(self, session: Session | None) -> Iterator[Connection | Session]:
        if session is not None:
            yield session
        else:
            with self.engine.begin() as conn:
                yield conn

    # ------------------------------------------------------------------ rows
    def put_sealed(self, blob_id: str, sealed: bytes, session: Session | None = None) -> None:
        """Insert a row (in ``session``'s transaction, or in one of its own)."""
        with self._conn(session) as conn:
            conn.execute(insert(StoredBlob).values(id=check_blob_id(blob_id), sealed=sealed,
                                                   created_at=datetime.now(UTC)))

    def sealed(self, blob_id: str, session: Session | None = None) -> bytes:
        found = self._read(check_blob_id(blob_id), session)
        if found is None:
            raise NotFoundError(f"blob {blob_id} does not exist (deleted?)")
        return found

    def _read(self, row_id: str, session: Session | None) -> bytes | None:
        with self._conn(session) as conn:
            value = conn.execute(select(StoredBlob.sealed).where(StoredBlob.id == row_id)).scalar()
        return bytes(value) if value is not None else None

    def get(self, blob_id: str, session: Session | None = None) -> bytes:
        """Decrypt and return a blob (read in ``session``'s transaction when given)."""
        return self.open(blob_id, self.sealed(blob_id, session))

    def exists(self, blob_id: str) -> bool:
        with self._conn(None) as conn:
            return conn.execute(select(StoredBlob.id).where(StoredBlob.id == check_blob_id(blob_id))).first() \
                is not None

    def delete(self, blob_id: str, session: Session | None = None) -> None:
        with self._conn(session) as conn:
            conn.execute(delete(StoredBlob).where(StoredBlob.id == check_blob_id(blob_id)))

    def ids(self) -> set[str]:
        with self._conn(None) as conn:
            return {i for i in conn.execute(select(StoredBlob.id)).scalars() if set(i) <= HEX}

    def remove_orphans(self, referenced: set[str], older_than_s: float = 600.0,
                       session: Session | None = None) -> tuple[int, int]:
        """Rows no row of another table refers to, older than ``older_than_s`` seconds. A blob
        commits with the rows that refer to it, so there are none unless a service stored a
        blob it never referred to; nothing is ever half-written (hence 0 temporary files)."""
        cutoff = datetime.now(UTC) - timedelta(seconds=older_than_s)
        with self._conn(session) as conn:
            stale = [i for i in conn.execute(select(StoredBlob.id).where(StoredBlob.created_at <= cutoff)).scalars()
                     if i not in referenced and set(i) <= HEX]
            for start in range(0, len(stale), DELETE_BATCH):
                conn.execute(delete(StoredBlob).where(StoredBlob.id.in_(stale[start:start + DELETE_BATCH])))
        return 0, len(stale)

    def transaction(self, session: Session) -> BlobTransaction:
        return DatabaseBlobTransaction(self, session)

    def secret(self, name: str) -> SealedSecret:
        """A row under the fixed id ``name`` (never a blob id: it is not hex)."""
        return DatabaseSecret(self, name)

    # ------------------------------------------------------------------ key rotation
    def reseal(self, ring: Keyring, progress: Progress | None = None) -> Counter[str]:
        """Reseal every row not under ``ring``'s primary key, :data:`RESEAL_BATCH` per transaction,
        repeating until a sweep finds nothing left (rows written meanwhile under an old key are
        caught too). A row deleted meanwhile is not brought back: the update replaces only the
        bytes it read. Outcomes as :func:`openlfr.store.keys.reseal_tree` counts them, the first
        sweep's plus anything resealed later."""
        totals: Counter[str] = Counter()
        first = True
        while True:
            counts: Counter[str] = Counter()
            with self._conn(None) as conn:
                ids = list(conn.execute(select(StoredBlob.id).order_by(StoredBlob.id)).scalars())
            for start in range(0, len(ids), RESEAL_BATCH):
                batch = ids[start:start + RESEAL_BATCH]
                with self.engine.begin() as conn:
                    rows = conn.execute(select(StoredBlob.id, StoredBlob.sealed).where(StoredBlob.id.in_(batch)))
                    found = {row_id: bytes(sealed) for row_id, sealed in rows}
                    outcomes = [(row_id, self._reseal_row(conn, ring, row_id, found.get(row_id))) for row_id in batch]
                for row_id, outcome in outcomes:  # reported once committed
                    counts[outcome] += 1
                    if progress is not None:
                        progress(Path("<database>") / "blobs" / row_id, outcome)
            if first:
                totals, first = counts, False
            else:
                totals["resealed"] += counts["resealed"]
            if not counts["resealed"]:
                return totals

    def pending(self, ring: Keyring) -> tuple[int, int]:
        """(rows, rows not under ``ring``'s primary key), reading only each row's first bytes."""
        head = func.substr(StoredBlob.sealed, 1, len(MAGIC_V2) + ID_LEN)
        with self._conn(None) as conn:
            heads = [bytes(h) for h in conn.execute(select(head)).scalars()]
        return len(heads), sum(not ring.is_current(h) for h in heads)

    @staticmethod
    def _reseal_row(conn: Connection, ring: Keyring, row_id: str, sealed: bytes | None) -> str:
        if sealed is None:
            return "gone"
        if ring.is_current(sealed):
            return "current"
        try:
            data = ring.open(sealed, row_id.encode(), f"blob {row_id}")
        except EncryptionKeyError:
            return "unreadable"
        done = conn.execute(update(StoredBlob).where(StoredBlob.id == row_id, StoredBlob.sealed == sealed)
                            .values(sealed=ring.seal(data, row_id.encode())))
        return "resealed" if done.rowcount else "gone"


class DatabaseBlobTransaction(BlobTransaction):
    """Blob operations in the service's own database transaction: nothing to undo or to do
    after the commit, the database does both."""

    def __init__(self, store: DatabaseBlobStore, session: Session) -> None:
        super().__init__(store)
        self.db = store
        self.session = session

    def put(self, data: bytes) -> str:
        """Insert a blob in this transaction."""
        blob_id = new_blob_id()
        self.db.put_sealed(blob_id, self.db.seal(blob_id, data), self.session)
        return blob_id

    def get(self, blob_id: str) -> bytes:
        """Read a blob as this transaction sees it (its own writes included)."""
        return self.db.get(blob_id, self.session)

    def delete(self, blob_id: str) -> None:
        """Delete a blob in this transaction (it comes back if the transaction rolls back)."""
        self.db.delete(blob_id, self.session)

    def remove_orphans(self, referenced: set[str], older_than_s: float = 600.0) -> tuple[int, int]:
        return self.db.remove_orphans(referenced, older_than_s, self.session)

    def commit(self) -> None:
        """Nothing to do: the rows were committed with the transaction."""

    def rollback(self) -> None:
        """Nothing to undo: the rows were rolled back with the transaction."""


class DatabaseSecret(SealedSecret):
    """A named secret as a row of ``blobs`` (sealed for its name, like the file it replaces)."""

    def __init__(self, store: DatabaseBlobStore, name: str) -> None:
        if not name or set(name) <= HEX or len(name) > 64:
            raise InputError(f"invalid secret name {name!r}: it must not look like a blob id")
        self.store = store
        self.name = name

    def load(self, session: Session | None = None) -> bytes | None:
        return self.store._read(self.name, session)

    def create(self, sealed: bytes, session: Session | None = None) -> bool:
        """Insert unless another host did first: in ``session``'s transaction when given (on
        SQLite a second connection would wait for that transaction's write lock), which a
        concurrent creator then waits for."""
        with self.store._conn(session) as conn:
            conn.execute(_insert_ignoring_duplicates(conn, {
                "id": self.name, "sealed": sealed, "created_at": datetime.now(UTC)}))
        return session is None
