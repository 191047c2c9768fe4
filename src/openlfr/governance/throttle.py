"""The login throttle: failed logins per user name and place, kept in the database.

Every door (the console, the HTTP API, the command line) logs in through
:func:`openlfr.governance.login.log_in`, which calls :func:`reserve` before it checks the
password. ``reserve`` counts the attempt first, in its own short transaction (the row is
locked: ``BEGIN IMMEDIATE`` on SQLite, ``SELECT ... FOR UPDATE`` on PostgreSQL), so that
concurrent guesses cannot all be checked before any is counted. A success clears the count.

* The key is the name (lower case) **and** the place (client address; ``cli:<user>`` on the
  command line): guesses at one account from one place never lock that user out elsewhere,
  and never affect another user.
* ``limit`` attempts are allowed per ``window`` seconds; the attempt that reaches the limit
  locks the key for ``window`` seconds, doubling with each further lockout (up to
  ``max_lock`` seconds) until a success.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from openlfr.governance.context import Ctx
from openlfr.governance.errors import Throttled
from openlfr.store.api_models import LoginThrottle

MAX_LOCK_S = 3600.0


def throttle_key(name: str, place: str) -> str:
    """``<name, lower case>|<place>`` (cut to the column's width)."""
    return f"{name.strip().lower()[:120]}|{place[:170]}"


def reserve(ctx: Ctx, name: str, place: str, *, limit: int, window: float, max_lock: float = MAX_LOCK_S) -> None:
    """Count one login attempt for ``name`` from ``place``, or :class:`Throttled` while locked."""
    now = ctx.now()
    key = throttle_key(name, place)
    # make sure the row exists (concurrent first attempts must not both insert), then lock it
    dialect = ctx.session.get_bind().dialect.name
    insert = {"postgresql": pg_insert, "sqlite": sqlite_insert}.get(dialect)
    values = {"key": key, "failures": 0, "window_start": now, "lockouts": 0, "locked_until": None}
    if insert is not None:
        ctx.session.execute(insert(LoginThrottle).values(**values).on_conflict_do_nothing(index_elements=["key"]))
    row = ctx.session.execute(select(LoginThrottle).where(LoginThrottle.key == key).with_for_update()).scalar_one_or_none()
    if row is None:  # another database: plain insert (its own locking applies)
        row = LoginThrottle(**values)
        ctx.session.add(row)
    if row.locked_until is not None and row.locked_until > now:
        wait = (row.locked_until - now).total_seconds()
        raise Throttled(f"too many failed attempts: try again in {wait:.0f} s", wait)
    if (now - row.window_start).total_seconds() > window:
        row.failures, row.window_start = 0, now
    row.failures += 1
    if row.failures >= limit:
        row.lockouts += 1
        row.locked_until = now + timedelta(seconds=min(max_lock, window * 2 ** (row.lockouts - 1)))
        row.failures, row.window_start = 0, now
    ctx.session.flush()


def clear(ctx: Ctx, name: str, place: str) -> None:
    """Forget the attempts of ``name`` from ``place`` after a good login."""
    row = ctx.session.get(LoginThrottle, throttle_key(name, place))
    if row is not None:
        ctx.session.delete(row)


def locked_until(ctx: Ctx, name: str, place: str) -> datetime | None:
    """When the key unlocks, if it is locked now."""
    row = ctx.session.get(LoginThrottle, throttle_key(name, place))
    if row is None or row.locked_until is None or row.locked_until <= ctx.now():
        return None
    return row.locked_until


__all__ = ["clear", "locked_until", "reserve", "throttle_key"]
