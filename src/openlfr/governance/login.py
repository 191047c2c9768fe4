"""Logging in and out: a name and password become a token (an :class:`Actor`), and back.

Used by every door: the console (session cookie), the HTTP API (bearer token) and the
command line (``openlfr login``). Failures are audited under the name the caller gave,
marked ``unverified:`` and cleaned of control characters, never as the user named.
"""

from __future__ import annotations

from datetime import timedelta

from openlfr.governance import credentials
from openlfr.governance.context import Ctx
from openlfr.governance.credentials import Actor
from openlfr.store.api_models import ApiToken
from openlfr.store.models import User


def login(ctx: Ctx, name: str, password: str, kind: str, lifetime: timedelta) -> tuple[Actor, ApiToken, User] | None:
    """A new token of ``kind`` for ``name`` if the password is right and the user active, else
    ``None``; both outcomes are audited."""
    user = credentials.check_password(ctx.session, name, password)
    if user is None:
        ctx.audit(f"unverified:{credentials.clean_name(name)}", "auth.login.failed", "user", "-")
        return None
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
