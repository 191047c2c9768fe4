"""Logging in and out: a name and password become a token (an :class:`Actor`), and back.

Used by every door: the console (session cookie), the HTTP API (bearer token) and the
command line (``openlfr login``), all through :func:`log_in`. Failures are audited under the
name the caller gave, marked ``unverified:`` and cleaned of control characters, never as the
user named.

:func:`log_in` takes three short steps, so that the slow password hash (argon2, about 50 ms)
never holds the database's write lock: count the attempt (:mod:`openlfr.governance.throttle`),
check the password in a read, then issue the token (or audit the failure) in a write.
"""

from __future__ import annotations

from datetime import timedelta

from openlfr.governance import credentials, throttle
from openlfr.governance.context import Ctx, Governance
from openlfr.governance.credentials import Actor
from openlfr.store.models import ApiToken, User


def log_in(gov: Governance, name: str, password: str, kind: str, lifetime: timedelta, place: str, *,
           limit: int | None = None, window: float | None = None,
           place_limit: int | None = None) -> tuple[Actor, ApiToken, User] | None:
    """A new token of ``kind`` for ``name`` if the password is right and the user active, else
    ``None`` (both audited); :class:`~openlfr.governance.errors.Throttled` while ``name`` has
    had too many failures from ``place`` (``limit`` per ``window`` seconds, then a lockout
    that doubles), or ``place`` too many failures whatever the names (``place_limit`` per
    ``window``); defaults from the policy."""
    limit = limit or gov.policy.login_attempts
    window = window or gov.policy.login_window_seconds
    place_limit = place_limit or gov.policy.login_place_attempts
    with gov.transaction() as ctx:
        throttle.reserve(ctx, name, place, limit=limit, window=window, place_limit=place_limit)
    with gov.reading() as ctx:
        user = credentials.check_password(ctx.session, name, password)
        user_id = user.id if user is not None else None
    with gov.transaction() as ctx:
        user = ctx.session.get(User, user_id) if user_id is not None else None
        if user is None or not user.active:
            ctx.audit(f"unverified:{credentials.clean_name(name)}", "auth.login.failed", "user", "-", place=place)
            return None
        throttle.clear(ctx, name, place)
        token, row = credentials.new_token(ctx.session, user, kind, lifetime, ctx.now())
        ctx.audit(user.name, f"auth.{kind}", "user", user.id, expires_at=row.expires_at)
        return Actor(token, user.name), row, user


def logout(ctx: Ctx, actor: Actor) -> None:
    """Revoke the token ``actor`` holds."""
    user = ctx.user_of(actor)
    found = credentials.live_token(ctx.session, actor.token, ctx.now())
    if found is not None and found[0].revoked_at is None:
        found[0].revoked_at = ctx.now()
        ctx.audit(user.name, "auth.logout", "user", user.id, kind=found[0].kind)
