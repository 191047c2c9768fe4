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
* A much higher ceiling, ``place_limit`` failures per ``window`` from one place whatever the
  names, stops a spray of guesses across many names (one attempt per name) from one address;
  it counts failures only (a success gives its attempt back), so staff who log in behind one
  proxy address do not use it up, and one person's typos at their own name never reach it
  before their own lockout does.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from sqlalchemy import select

from openlfr.governance.context import Ctx
from openlfr.governance.errors import Throttled
from openlfr.store.inserts import locked_row
from openlfr.store.models import LoginThrottle

MAX_LOCK_S = 3600.0


def throttle_key(name: str, place: str) -> str:
    """``<name, lower case>|<place>`` (cut to the column's width)."""
    return f"{name.strip().lower()[:120]}|{place[:170]}"


def place_key(place: str) -> str:
    """The key of every name's failures from ``place``: it starts with a space, which a name's
    key never does (names are stripped), so no user name can share it."""
    return f" any name|{place[:170]}"


def reserve(ctx: Ctx, name: str, place: str, *, limit: int, window: float, place_limit: int | None = None,
            max_lock: float = MAX_LOCK_S) -> None:
    """Count one login attempt for ``name`` from ``place`` (and, with ``place_limit``, for
    ``place`` whatever the name), or :class:`Throttled` while either is locked. The name's
    key is checked first: a name already locked out adds nothing to the place's count."""
    _count(ctx, throttle_key(name, place), limit, window, max_lock, "too many failed attempts")
    if place_limit is not None:
        _count(ctx, place_key(place), place_limit, window, max_lock,
               "too many failed logins from this address, whatever the name")
    ctx.session.flush()


def _count(ctx: Ctx, key: str, limit: int, window: float, max_lock: float, why: str) -> None:
    """Count one attempt against ``key``, locked for the database's transaction."""
    now = ctx.now()
    # the row, made if missing (concurrent first attempts must not both insert), locked
    row = locked_row(ctx.session, LoginThrottle,
                     {"key": key, "failures": 0, "window_start": now, "lockouts": 0, "locked_until": None}, ["key"])
    if row.locked_until is not None and row.locked_until > now:
        wait = (row.locked_until - now).total_seconds()
        raise Throttled(f"{why}: try again in {wait_text(wait)}", wait)
    if (now - row.window_start).total_seconds() > window:
        row.failures, row.window_start = 0, now
    row.failures += 1
    if row.failures >= limit:
        row.lockouts += 1
        row.locked_until = now + timedelta(seconds=min(max_lock, window * 2 ** (row.lockouts - 1)))
        row.failures, row.window_start = 0, now


def wait_text(seconds: float) -> str:
    """``45 s``, ``5 min``, ``2 h`` (rounded up): how long to wait, for people."""
    s = max(1, math.ceil(seconds))
    if s < 120:
        return f"{s} s"
    return f"{math.ceil(s / 60)} min" if s < 7200 else f"{math.ceil(s / 3600)} h"


def clear(ctx: Ctx, name: str, place: str) -> None:
    """Forget the attempts of ``name`` from ``place`` after a good login, and give the attempt
    back to ``place``'s count (it counts failures only)."""
    row = ctx.session.get(LoginThrottle, throttle_key(name, place))
    if row is not None:
        ctx.session.delete(row)
    shared = ctx.session.execute(select(LoginThrottle).where(LoginThrottle.key == place_key(place))
                                 .with_for_update()).scalar_one_or_none()
    if shared is not None and shared.failures > 0:
        shared.failures -= 1


def locked_until(ctx: Ctx, name: str, place: str) -> datetime | None:
    """When the key unlocks, if it is locked now."""
    row = ctx.session.get(LoginThrottle, throttle_key(name, place))
    if row is None or row.locked_until is None or row.locked_until <= ctx.now():
        return None
    return row.locked_until


__all__ = ["clear", "locked_until", "place_key", "reserve", "throttle_key", "wait_text"]
