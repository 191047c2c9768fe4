"""Engines and sessions from a database URL; schema managed by the bundled Alembic migrations."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, event, make_url
from sqlalchemy.orm import Session, sessionmaker

from openlfr.store.settings import database_url, private_dir, tighten_file

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")


def make_engine(url: str | None = None, *, worker: bool = False) -> Engine:
    """An engine for ``url`` (default: :func:`~openlfr.store.settings.database_url`).

    PostgreSQL: a pool of ``cluster.pool_size`` connections (``cluster.worker_pool_size`` for a
    camera worker process, ``worker=True``), up to twice as many more in a burst, each checked
    before use (``pool_pre_ping``: a connection PgBouncer or a restart dropped is replaced, not
    handed out). psycopg's automatic prepared statements are off, so the same URL works directly
    and through PgBouncer in transaction mode, where a transaction's next statement may run on
    another server connection (docs/scale.md, "Connections").

    SQLite gets foreign keys enforced, a 30 s busy timeout, write-ahead logging (readers never
    wait for a writer, nor a writer for readers) and ``BEGIN IMMEDIATE`` transactions, so it
    behaves like PostgreSQL for the integrity rules the services rely on; and ``secure_delete``,
    so what a deletion or an update removes is overwritten with zeros in the file, not left in
    free space for anyone holding a copy of it (see :func:`scrub_wal` for the write-ahead log). A connection with the
    execution option ``openlfr_read_only=True`` (:func:`read_only`) begins a plain deferred
    transaction instead, which never takes the write lock.
    """
    url = url or database_url()
    kwargs: dict[str, Any] = {"future": True}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"timeout": 30}
    elif make_url(url).get_backend_name() == "postgresql":
        kwargs.update(_postgres_pool(worker, make_url(url).get_driver_name()))
    engine = create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        _private_sqlite_file(engine)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA secure_delete=ON")  # erased rows are zeroed in the file (not in free pages)
            if engine.url.database not in (None, "", ":memory:"):
                cur.execute("PRAGMA journal_mode=WAL")  # kept in the file; harmless to repeat
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin_immediate(conn: Any) -> None:
            # Take the write lock when a transaction starts, so two processes cannot both read
            # the audit head and then race to append (SQLite's stand-in for SELECT ... FOR UPDATE).
            # Read-only work begins a deferred transaction: with WAL it never waits for a writer.
            read_only = conn.get_execution_options().get("openlfr_read_only", False)
            conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


def _postgres_pool(worker: bool, driver: str) -> dict[str, Any]:
    """Pool and driver options of a PostgreSQL engine (see :func:`make_engine`)."""
    from openlfr.config import get_settings

    cluster = get_settings().cluster
    size = cluster.worker_pool_size if worker else cluster.pool_size
    # prepare_threshold=None: never PREPARE. psycopg prepares a query after its 5th run on a
    # connection; behind PgBouncer (1.18, transaction mode) that name then exists on one server
    # connection and not on the next ("prepared statement _pg3_0 already exists / does not
    # exist"). Cost measured on loopback: ~30 us more per statement to plan, against ms per write.
    options: dict[str, Any] = {"pool_size": size, "max_overflow": 2 * size, "pool_pre_ping": True}
    if driver == "psycopg":  # (psycopg2 never prepares on its own)
        options["connect_args"] = {"prepare_threshold": None}
    return options


def _private_sqlite_file(engine: Engine) -> None:
    """Create the SQLite file 0600 (its folder 0700) before SQLite does, or tighten an existing
    one: SQLite gives its journal and WAL files the database file's mode, so they follow."""
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:") or engine.url.query.get("uri"):
        return
    path = Path(database)
    if path.exists():
        tighten_file(path)
        for suffix in ("-journal", "-wal", "-shm"):
            tighten_file(path.with_name(path.name + suffix))
        return
    if not path.parent.is_dir():
        private_dir(path.parent)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    except OSError:  # pragma: no cover - let SQLite report the problem in its own words
        pass


def scrub_wal(engine: Engine, wait_ms: int = 5000) -> bool:
    """After an erasure, fold SQLite's write-ahead log into the database file and truncate it
    to nothing (``wal_checkpoint(TRUNCATE)``): the log still holds the pages as they were
    before, so without this the erased rows (and the names of destroyed key and crop files)
    would outlive the erasure there. Returns whether the log was emptied (False when a reader
    still held an older snapshot after ``wait_ms``: the frames are then overwritten by later
    writes, and the next erasure tries again). PostgreSQL: nothing to do here; a deleted
    row's old version stays in its table's file until VACUUM reclaims it (docs/audit-verification.md)."""
    if engine.dialect.name != "sqlite" or engine.url.database in (None, "", ":memory:"):
        return True
    raw = engine.raw_connection()
    try:
        conn = raw.driver_connection
        if conn is None:  # (a connection already closed: nothing was emptied, the next erasure tries again)
            return False
        conn.execute(f"PRAGMA busy_timeout={int(wait_ms)}")
        try:
            busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        finally:
            conn.execute("PRAGMA busy_timeout=30000")
        return not busy
    finally:
        raw.close()


def alembic_config(url: str) -> Config:
    """An Alembic config pointing at the migrations shipped inside the package."""
    from alembic.config import Config  # (here: a process that never migrates, a camera worker, skips 0.09 s)

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    # ConfigParser interpolation: a literal % in a password must be doubled.
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database at ``engine`` to the newest schema, or to ``revision`` (creating it if empty).

    On SQLite the migrations run with foreign keys off: changing a constraint there means
    recreating the table, and the old table cannot be dropped while rows point at it. If any
    migration ran, ``PRAGMA foreign_key_check`` must then find no dangling reference, or
    nothing is committed.
    """
    from alembic import command
    from alembic.migration import MigrationContext

    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.connect() as conn, _sqlite_foreign_keys_off(conn), conn.begin():
        before = MigrationContext.configure(conn).get_current_revision()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
        if conn.dialect.name == "sqlite" and MigrationContext.configure(conn).get_current_revision() != before:
            dangling = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
            if dangling:
                raise RuntimeError(f"migration left rows pointing at nothing (table, rowid, parent): {dangling[:5]}")


@contextmanager
def _sqlite_foreign_keys_off(conn: Connection) -> Iterator[None]:
    """Foreign keys off on this SQLite connection (given before its transaction begins: SQLite
    ignores the pragma inside one), and on again after; nothing on other databases."""
    if conn.dialect.name != "sqlite":
        yield
        return
    driver = conn.connection.driver_connection  # the sqlite3 connection, in autocommit: no BEGIN yet
    assert driver is not None
    driver.execute("PRAGMA foreign_keys=OFF")
    try:
        yield
    finally:
        driver.execute("PRAGMA foreign_keys=ON")


def read_only(engine: Engine) -> Engine:
    """The same engine whose transactions are read-only (on SQLite, deferred: no write lock)."""
    return engine.execution_options(openlfr_read_only=True)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit."""
    return sessionmaker(engine, expire_on_commit=False)
