"""Failures counted per key in a fixed window, in the ``rate_limits`` table, so every API replica
(and every process of one) shares the count: enrolment guesses per client address, and how many
refused credentials per address are written to the audit log. (Logins have their own throttle,
with lockouts: :mod:`openlfr.governance.throttle`.)

A key's window opens at its first failure and lasts ``window`` seconds; ``limit`` failures in it
refuse further attempts until it ends (:func:`retry_after`), and the first failure after it ends
opens a new one. Counting is race-safe on both databases, as in the login throttle: the row is
made to exist (``INSERT ... ON CONFLICT DO NOTHING``) and then locked (``SELECT ... FOR UPDATE``
on PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` already holds the write lock), so concurrent failures
from any number of processes are all counted.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete

from openlfr.governance.context import Ctx
from openlfr.store.inserts import locked_row
from openlfr.store.models import RateLimit

KEY_LENGTH = 300  # the column's width


def _key(key: str) -> str:
    return key[:KEY_LENGTH]


def _locked_row(ctx: Ctx, key: str) -> RateLimit:
    """``key``'s row, created if missing (concurrent first failures must not both insert), and
    locked until the transaction ends."""
    return locked_row(ctx.session, RateLimit, {"key": key, "window_start": ctx.now(), "count": 0}, ["key"])


def _wait(row: RateLimit | None, now: datetime, limit: int, window: float) -> float:
    """Seconds until ``row``'s window ends if it holds ``limit`` failures, else 0."""
    if row is None or row.count < limit:
        return 0.0
    return max(0.0, (row.window_start + timedelta(seconds=window) - now).total_seconds())


def _count(ctx: Ctx, row: RateLimit, window: float) -> None:
    now = ctx.now()
    if (now - row.window_start).total_seconds() >= window:  # the window is over: a new one opens
        row.count, row.window_start = 0, now
    row.count += 1


def failed(ctx: Ctx, key: str, *, window: float) -> int:
    """Count one failure against ``key``; the number of failures in its window, this one included."""
    row = _locked_row(ctx, _key(key))
    _count(ctx, row, window)
    ctx.session.flush()
    return row.count


def retry_after(ctx: Ctx, key: str, *, limit: int, window: float) -> float:
    """Seconds until ``key`` may be tried again (0: now): its window's end, once it holds
    ``limit`` failures."""
    return _wait(ctx.session.get(RateLimit, _key(key), populate_existing=True), ctx.now(), limit, window)


def take(ctx: Ctx, key: str, *, limit: int, window: float) -> bool:
    """Count one against ``key`` if it has fewer than ``limit`` in its window (True), else
    change nothing (False): the check and the count in one step, under the row's lock."""
    row = _locked_row(ctx, _key(key))
    if _wait(row, ctx.now(), limit, window) > 0:
        return False
    _count(ctx, row, window)
    ctx.session.flush()
    return True


def clear(ctx: Ctx, key: str) -> None:
    """Forget ``key``'s failures."""
    ctx.session.execute(delete(RateLimit).where(RateLimit.key == _key(key)))


def prune(ctx: Ctx, older_than: timedelta) -> int:
    """Delete the rows whose window opened more than ``older_than`` ago (a client address is
    personal data: kept no longer than the limit needs it); how many went."""
    result = ctx.session.execute(delete(RateLimit).where(RateLimit.window_start < ctx.now() - older_than))
    return int(getattr(result, "rowcount", 0) or 0)


__all__ = ["clear", "failed", "prune", "retry_after", "take"]
