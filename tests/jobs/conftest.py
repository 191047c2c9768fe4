"""Fixtures of the batch-job tests: a store opened as the command line and a worker open it
(the configured database, the data directory's blob folder and keyring), with the usual cast
(:class:`govkit.Estate`) on the real clock, so that a worker in another process agrees with it."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "governance"))

from govkit import Clock, Estate, fake_template  # noqa: E402

from openlfr.governance import Governance  # noqa: E402


@pytest.fixture
def store(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Governance]:
    """A :class:`Governance` on a fresh database, configured as every process of the test sees it
    (``OPENLFR_DATABASE_URL``; nobody logged in at the command line), templates by the fake model."""
    monkeypatch.setenv("OPENLFR_DATABASE_URL", db_url)
    monkeypatch.setenv("OPENLFR_CREDENTIALS_FILE", str(tmp_path / "credentials.json"))
    monkeypatch.delenv("OPENLFR_TOKEN", raising=False)
    from openlfr.config import get_settings

    get_settings.cache_clear()
    gov = Governance(db_url, template_fn=fake_template, migrate=False)
    yield gov
    gov.close()


@pytest.fixture
def estate(store: Governance) -> Estate:
    """The usual organisations and users, on the real clock."""
    e = Estate(store, Clock(datetime.now(UTC)))
    e.setup_users()
    return e
