"""Fixtures for the governance tests: a fresh, migrated store per test on SQLite and, when
``OPENLFR_TEST_POSTGRES_URL`` is set, on a real PostgreSQL server (see ``.ci/postgres.sh``)."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import make_url, text

from govkit import KEY, Clock, Estate, fake_template
from openlfr.governance import Governance, Policy
from openlfr.store import make_engine, upgrade

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


@pytest.fixture
def clock() -> Clock:
    """The services' clock, starting at :data:`T0`."""
    return Clock()


@pytest.fixture
def gov(db_url: str, tmp_path: Path, clock: Clock) -> Iterator[Governance]:
    """A :class:`Governance` on the fresh database with a fake template function."""
    g = Governance(db_url, blob_root=tmp_path / "blobs", key=KEY, policy=Policy(), template_fn=fake_template,
                   clock=clock, migrate=False)
    yield g
    g.close()


@pytest.fixture
def estate(gov: Governance, clock: Clock) -> Estate:
    """An :class:`Estate` with its users already created."""
    e = Estate(gov, clock)
    e.setup_users()
    return e
