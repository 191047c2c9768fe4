"""Shared fixtures: where the real evaluation data lives, a private data directory, and a fresh
migrated database per test (``db_url``) on SQLite and, when configured, PostgreSQL."""

from __future__ import annotations

import functools
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from sqlalchemy import make_url, text

from openlfr.governance import credentials as _credentials
from openlfr.store import make_engine, upgrade

REPO = Path(__file__).resolve().parents[1]
# the hasher the production code made at import, before any test ran
_PRODUCTION_HASHER = _credentials._hasher
T = TypeVar("T")


def shared_data_dir() -> Path:
    """``OPENLFR_DATA`` or ``../shared/data`` beside the repository."""
    return Path(os.environ.get("OPENLFR_DATA", REPO.parent / "shared" / "data"))


@pytest.hookimpl(tryfirst=True)  # before pytest's own -m selection reads the marks
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """``slow_on_postgres``: the PostgreSQL run of a long test that runs whole processes is a
    slow test. Its SQLite run checks the rule in the README's command; the database-specific
    paths it goes through (locks, conflicts) are each checked fast on PostgreSQL elsewhere."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        if (item.get_closest_marker("slow_on_postgres") and callspec is not None
                and callspec.params.get("db_url") == "postgres"):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real face data (LFW, videos, ...); skips the test when it is absent."""
    path = shared_data_dir()
    if not (path / "lfw").is_dir():
        pytest.skip(f"real face data not found at {path} (set OPENLFR_DATA to the shared data folder)")
    return path


@pytest.fixture(scope="session", autouse=True)
def _cheap_password_hashing() -> Iterator[None]:
    """Hash and check passwords at argon2id's minimum cost in this test process.

    At the production cost (64 MiB, 3 passes) each hash or check takes 0.2-0.3 s on 2 cores,
    and the tests make and log in hundreds of users. Production keeps its parameters:
    ``tests/governance/test_gov_password_hash.py`` checks them with the real hasher
    (:func:`production_password_hashing`). Subprocesses (``openlfr`` commands, workers) are
    untouched; a hash records its own parameters, so either side verifies the other's.
    """
    from argon2 import PasswordHasher

    cheap = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_credentials, "_hasher", cheap)
        yield


@pytest.fixture
def production_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """The production argon2id hasher for this test (undoing :func:`_cheap_password_hashing`)."""
    monkeypatch.setattr(_credentials, "_hasher", _PRODUCTION_HASHER)


@pytest.fixture(scope="session", autouse=True)
def _one_tls_context_for_test_clients() -> Iterator[None]:
    """One TLS context for every httpx client the tests make.

    httpx builds a new context for each client (loading certifi's CA bundle: about 12 ms on
    2 cores), and the API tests make thousands of clients, all talking plain HTTP on loopback;
    that was half the time of the route-by-role test. The context is made the same way, once,
    and shared (httpx allows sharing one). Only this test process is affected.
    """
    import httpx._transports.default as transport

    made = transport.create_ssl_context
    shared = functools.lru_cache(maxsize=8)(made)

    def create_ssl_context(verify: object = True, cert: object = None, trust_env: bool = True) -> object:
        if isinstance(verify, bool) and cert is None:
            return shared(verify=verify, cert=None, trust_env=trust_env)
        return made(verify=verify, cert=cert, trust_env=trust_env)  # type: ignore[arg-type]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(transport, "create_ssl_context", create_ssl_context)
        yield


@pytest.fixture(autouse=True)
def _private_openlfr_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep every test's watchlists, stores and keys out of the user's real data folder.

    Converted models are cached in one session-wide folder so they are built once.
    """
    home = tmp_path_factory.mktemp("openlfr-home")
    monkeypatch.setenv("OPENLFR_DATA_DIR", str(home))
    cache = REPO / ".cache" / "models"
    monkeypatch.setenv("OPENLFR_MODEL_CACHE_DIR", str(cache))
    # recordings that cameras may read: the shared data and the tests' own temporary files
    monkeypatch.setenv("OPENLFR_CAMERA_FILE_ROOTS",
                       os.pathsep.join([str(shared_data_dir()), str(tmp_path_factory.getbasetemp())]))
    from openlfr.config import get_settings

    get_settings.cache_clear()


# --- databases: every store test runs on SQLite and, when a server is configured, PostgreSQL
PG_ENV = "OPENLFR_TEST_POSTGRES_URL"


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def _pg_template() -> Iterator[str | None]:
    """A migrated template database on the test server (None when no server is configured)."""
    url = os.environ.get(PG_ENV)
    if not url:
        yield None
        return
    name = f"openlfr_tmpl_{uuid.uuid4().hex[:8]}"
    admin = make_engine(url).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(make_url(url).set(database=name).render_as_string(hide_password=False))
    upgrade(engine)
    engine.dispose()
    yield name
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path, _sqlite_template: Path) -> str:
    """URL of a fresh, migrated SQLite file. A module whose rules cannot depend on the
    database overrides ``db_url`` with it, to keep the suite fast; the database-specific paths
    (locks, conflicts, triggers) are tested on both elsewhere."""
    path = tmp_path / "openlfr.db"
    shutil.copyfile(_sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path, _sqlite_template: Path,
           _pg_template: str | None) -> Iterator[str]:
    """URL of a fresh, migrated database: a SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        path = tmp_path / "openlfr.db"
        shutil.copyfile(_sqlite_template, path)
        yield f"sqlite:///{path}"
        return
    if _pg_template is None:
        pytest.skip(f"{PG_ENV} not set: no PostgreSQL server to test against (see .ci/postgres.sh)")
    yield from _pg_database(_pg_template)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of an empty database, no migration run (for migration tests): a SQLite file, or a
    new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    if not os.environ.get(PG_ENV):
        pytest.skip(f"{PG_ENV} not set: no PostgreSQL server to test against (see .ci/postgres.sh)")
    yield from _pg_database(None)


def _pg_database(template: str | None) -> Iterator[str]:
    """A new PostgreSQL database (a copy of ``template``, or empty) for one test, dropped after."""
    base = os.environ[PG_ENV]
    name = f"openlfr_t_{uuid.uuid4().hex[:12]}"
    admin = make_engine(base).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")))
    yield make_url(base).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


# --- stores built once and copied into each test that needs them
class StoreSnapshots:
    """Worlds (organisations, users, agreements ...) that many tests start from, built once on
    the first test's own store and copied into each later test's fresh store: a SQLite file
    copy, or a PostgreSQL ``CREATE DATABASE ... TEMPLATE``, plus the store's files (blobs,
    keys). A copy is exactly what building would leave, at a fraction of the cost; worlds built
    on the real clock are rebuilt once older than ``max_age_s``, so nothing time-dependent
    (the checkpoint interval, login windows) drifts."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._made: dict[tuple[str, str], tuple[float, str, object]] = {}
        self._pg: list[str] = []

    def restore_or_build(self, key: str, db_url: str, paths: list[Path], build: Callable[[], T],
                         max_age_s: float | None = None, copy_postgres: bool = True) -> T:
        """Give the fresh store at ``db_url`` (and its files ``paths``) the world ``key``:
        copied from the snapshot, or built by ``build()`` and snapshotted. Returns what
        ``build`` returned (kept with the snapshot). The caller closes its own connections
        to ``db_url`` first. Without ``copy_postgres``, a PostgreSQL store is always built:
        copying a database (dropping the fresh one, creating it again from the snapshot)
        costs more than a world of a few dozen inserts."""
        import time

        slot = (key, make_url(db_url).get_backend_name())
        if slot[1] != "sqlite" and not copy_postgres:
            return build()
        made = self._made.get(slot)
        if made is None or (max_age_s is not None and time.monotonic() - made[0] > max_age_s):
            value = build()
            self._made[slot] = (time.monotonic(), self._save(slot, db_url, paths), value)
            return value
        self._load(made[1], db_url, paths)
        return made[2]  # type: ignore[return-value]

    def _save(self, slot: tuple[str, str], db_url: str, paths: list[Path]) -> str:
        folder = self.root / f"{slot[1]}-{uuid.uuid4().hex[:12]}"
        for i, p in enumerate(paths):
            if p.is_dir():
                shutil.copytree(p, folder / str(i))
            elif p.is_file():
                (folder / str(i)).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(p, folder / str(i))
        url = make_url(db_url)
        if url.get_backend_name() == "sqlite":
            shutil.copyfile(url.database, folder / "store.db")
            return str(folder)
        name = f"openlfr_snap_{uuid.uuid4().hex[:12]}"
        self._admin(db_url, f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            f"WHERE datname = '{url.database}' AND pid <> pg_backend_pid()",
                    f'CREATE DATABASE "{name}" TEMPLATE "{url.database}"')
        self._pg.append(db_url.replace(url.database, name))
        return f"{folder}|{name}"

    def _load(self, saved: str, db_url: str, paths: list[Path]) -> None:
        folder, _, pg_name = saved.partition("|")
        for i, p in enumerate(paths):
            src = Path(folder) / str(i)
            if src.is_dir():
                shutil.copytree(src, p, dirs_exist_ok=True)
            elif src.is_file():
                p.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, p)
        url = make_url(db_url)
        if not pg_name:
            for suffix in ("-wal", "-shm"):
                Path(url.database + suffix).unlink(missing_ok=True)
            shutil.copyfile(Path(folder) / "store.db", url.database)
            return
        self._admin(db_url, f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)',
                    f'CREATE DATABASE "{url.database}" TEMPLATE "{pg_name}"')

    @staticmethod
    def _admin(db_url: str, *statements: str) -> None:
        admin = make_engine(os.environ[PG_ENV]).execution_options(isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            for sql in statements:
                conn.execute(text(sql))
        admin.dispose()

    def close(self) -> None:
        for url in self._pg:
            self._admin(url, f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')


@pytest.fixture(scope="session")
def store_snapshots(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StoreSnapshots]:
    """The session's :class:`StoreSnapshots`."""
    snaps = StoreSnapshots(tmp_path_factory.mktemp("store-snapshots"))
    yield snaps
    snaps.close()


#: Debian's chromium, which the console tests drive with Playwright (``source .ci/browser.sh``)
CHROMIUM = os.environ.get("OPENLFR_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="session")
def browser():  # type: ignore[no-untyped-def]
    """A headless chromium for the whole run; skips where chromium or Playwright is absent."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed (source .ci/browser.sh)")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"chromium not found at {CHROMIUM} (source .ci/browser.sh to apt-install it)")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield b
        b.close()
