"""One retention sweep at a time across replicas: every API replica runs a
:class:`~openlfr.governance.retention.RetentionSweeper`, and a sweep that finds another under way
(its advisory lock on PostgreSQL, the write lock on SQLite) is skipped, yet the sweeps still happen.
The sweeper also deletes rate-limit rows (client addresses) once their window is long over."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from govkit import KEY, Clock
from openlfr.governance import Governance, Policy, retention
from openlfr.governance.retention import RetentionSweeper
from openlfr.store.models import AuditEvent, RateLimit


@dataclass
class Overlap:
    """How many :func:`retention.sweep` calls ran, and the most that ran at once."""

    calls: int = 0
    most: int = 0
    active: int = 0


@contextmanager
def watch_sweeps(monkeypatch: pytest.MonkeyPatch, hold_s: float = 0.05) -> Iterator[Overlap]:
    """Count the sweeps and how many overlap: each one is held ``hold_s`` seconds before it
    works, so two sweeps not kept apart by a lock would be seen running together."""
    seen, lock, real = Overlap(), threading.Lock(), retention.sweep

    def watched(ctx: Any, *args: Any, **kwargs: Any) -> retention.SweepReport:
        with lock:
            seen.active += 1
            seen.calls += 1
            seen.most = max(seen.most, seen.active)
        try:
            time.sleep(hold_s)
            return real(ctx, *args, **kwargs)
        finally:
            with lock:
                seen.active -= 1

    monkeypatch.setattr(retention, "sweep", watched)
    yield seen


def run_sweepers(govs: list[Governance], seconds: float, interval_s: float = 0.01) -> list[RetentionSweeper]:
    """One sweeper per replica (``govs``), all running for ``seconds``; returns them stopped."""
    sweepers = [RetentionSweeper(g, interval_s).start() for g in govs]
    time.sleep(seconds)
    for s in sweepers:
        s.stop()
    return sweepers


def replicas(url: str, root: Path, n: int, clock: Callable[[], Any] | None = None) -> list[Governance]:
    """``n`` governance objects on one store, each with its own engine (as separate processes)."""
    extra = {"clock": clock} if clock is not None else {}
    return [Governance(url, blob_root=root / "blobs", key=KEY, policy=Policy(), migrate=False, **extra)
            for _ in range(n)]


def sweep_events(gov: Governance) -> int:
    with gov.reading() as ctx:
        return ctx.session.execute(select(func.count()).select_from(AuditEvent)
                                   .where(AuditEvent.action == "retention.sweep")).scalar_one()


def test_replicas_never_sweep_at_once_and_still_sweep(db_url: str, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    govs = replicas(db_url, tmp_path, 4)
    try:
        with watch_sweeps(monkeypatch) as seen:
            sweepers = run_sweepers(govs, 1.5)
        assert seen.most == 1, f"{seen.most} sweeps ran at once"
        done = sum(s.sweeps for s in sweepers)
        assert seen.calls >= 5 and done == seen.calls, (seen.calls, done)
        assert sweep_events(govs[0]) == done  # each sweep committed its audited summary
        if govs[0].engine.dialect.name == "postgresql":  # the lock was tried and found taken
            assert sum(s.skipped for s in sweepers) > 0
    finally:
        for g in govs:
            g.close()


@pytest.mark.postgres
def test_without_the_lock_replicas_would_sweep_at_once(db_url: str, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The control: the watch above does see overlapping sweeps when the lock is not taken."""
    if not db_url.startswith("postgresql"):
        pytest.skip("PostgreSQL's advisory lock only (SQLite's write lock cannot be left out)")
    monkeypatch.setattr(retention, "sweep_lock", lambda ctx: True)
    govs = replicas(db_url, tmp_path, 4)
    try:
        with watch_sweeps(monkeypatch, hold_s=0.2) as seen:
            run_sweepers(govs, 1.0)
        assert seen.most > 1
    finally:
        for g in govs:
            g.close()


def test_a_sweep_skipped_while_another_holds_the_lock(db_url: str, tmp_path: Path) -> None:
    first, second = replicas(db_url, tmp_path, 2)
    try:
        sweeper = RetentionSweeper(second, 60)
        with first.transaction() as ctx:
            assert retention.sweep_lock(ctx)
            if first.engine.dialect.name == "postgresql":
                assert sweeper.sweep_once() is None and sweeper.skipped == 1
        report = sweeper.sweep_once()  # the lock is released at commit
        assert report is not None and sweeper.sweeps == 1
    finally:
        first.close()
        second.close()


def test_the_sweeper_forgets_old_rate_limit_rows(db_url: str, tmp_path: Path) -> None:
    clock = Clock()
    (gov,) = replicas(db_url, tmp_path, 1, clock)
    try:
        with gov.transaction() as ctx:
            ctx.session.add_all([RateLimit(key="enrol:ip:old", window_start=clock() - timedelta(days=2), count=3),
                                 RateLimit(key="enrol:ip:new", window_start=clock() - timedelta(hours=2), count=3)])
        assert RetentionSweeper(gov, 60).sweep_once() is not None
        with gov.reading() as ctx:
            assert list(ctx.session.execute(select(RateLimit.key)).scalars()) == ["enrol:ip:new"]
    finally:
        gov.close()
