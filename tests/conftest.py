"""Shared fixtures: where the real evaluation data lives, a private data directory, and a fresh
migrated database per test (``db_url``) on SQLite and, when configured, PostgreSQL."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import make_url, text

from openlfr.store import make_engine, upgrade

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """``OPENLFR_DATA`` or ``../shared/data`` beside the repository."""
    return Path(os.environ.get("OPENLFR_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real face data (LFW, videos, ...); skips the test when it is absent."""
    path = shared_data_dir()
    if not (path / "lfw").is_dir():
        pytest.skip(f"real face data not found at {path} (set OPENLFR_DATA to the shared data folder)")
    return path


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
    base = os.environ[PG_ENV]
    name = f"openlfr_t_{uuid.uuid4().hex[:12]}"
    admin = make_engine(base).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{_pg_template}"'))
    yield make_url(base).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()
