"""Fixtures for the governance tests: a fresh, migrated store per test (``db_url``, from the
top-level conftest: SQLite, and PostgreSQL when ``OPENLFR_TEST_POSTGRES_URL`` is set)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from govkit import KEY, Clock, Estate, fake_template
from openlfr.governance import Governance, Policy


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
