"""Credentials: passwords (argon2id), tokens, and the :class:`Actor` every service call needs.

A service acts for a user only on a credential: an :class:`Actor` carries a token (a console
session, an API token or a command-line login) that :meth:`Ctx.require` checks against the
store on every call — live, not revoked, not expired, its user active. A user name alone
proves nothing, at any door (HTTP, console, command line or Python).

Tokens are random and kept in the store only as their SHA-256; passwords only as argon2id
hashes. Deactivating a user, changing their role or resetting their password revokes every
token they hold, so their sessions, API clients and open alert streams stop at once.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from openlfr.errors import InputError
from openlfr.store.models import ApiToken, Credential, User

MIN_PASSWORD = 10
TOKEN_KINDS = ("session", "bearer", "cli", "job")  # job: a batch job's own, for one run (openlfr.jobs.runner)

_hasher = PasswordHasher()


@functools.cache
def _dummy_hash(hasher: PasswordHasher) -> str:
    """A hash by ``hasher``, verified against when the user does not exist, so a wrong name costs
    as long as a wrong password. Made on first use: an argon2 hash takes about 0.1 s, which every
    process (each CLI command, each camera worker) would otherwise pay at import."""
    return hasher.hash("openlfr-no-such-user")


@dataclass(frozen=True)
class Actor:
    """Who asks a service to act: the bearer of ``token``.

    ``name`` is only what the caller claims (shown in refusals as ``unverified:<name>``);
    the services look the token up and act as the user it belongs to.
    """

    token: str = field(repr=False)
    name: str = ""


def token_digest(token: str) -> str:
    """What the store keeps of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


MIN_STRENGTH = 3  # zxcvbn's score (0-4): 3 = "safely unguessable", about 10^8 guesses or more


def check_strength(password: str, context: tuple[str, ...] = ()) -> None:
    """Refuse a password shorter than :data:`MIN_PASSWORD` characters or weaker than
    :data:`MIN_STRENGTH` by zxcvbn's estimate (common passwords, keyboard patterns, dates,
    names, and anything built on ``context``: the user's name and organisation)."""
    if len(password) < MIN_PASSWORD:
        raise InputError(f"a password needs at least {MIN_PASSWORD} characters")
    from zxcvbn import zxcvbn

    result = zxcvbn(password[:100], user_inputs=[c for c in context if c])
    if result["score"] < MIN_STRENGTH:
        hint = result["feedback"].get("warning") or "it is too easy to guess"
        raise InputError(f"password too weak: {hint.rstrip('.')}; use a few unrelated words")


def hash_password(password: str, context: tuple[str, ...] = ()) -> str:
    """An argon2id hash of ``password``, if it passes :func:`check_strength`."""
    check_strength(password, context)
    return _hasher.hash(password)


def store_password(session: Session, user: User, password: str, at: datetime) -> None:
    """Set ``user``'s password (callers check who may, and audit it)."""
    org = user.org.name if getattr(user, "org", None) is not None else ""
    digest = hash_password(password, (user.name, org, *org.split(), org.replace(" ", "")))
    row = session.get(Credential, user.id)
    if row is None:
        session.add(Credential(user_id=user.id, password_hash=digest, updated_at=at))
    else:
        row.password_hash, row.updated_at = digest, at


def check_password(session: Session, name: str, password: str) -> User | None:
    """The active user ``name`` if ``password`` is theirs, else ``None`` (same cost either way)."""
    user = session.execute(select(User).where(User.name == name)).scalar_one_or_none()
    cred = session.get(Credential, user.id) if user is not None else None
    try:
        _hasher.verify(cred.password_hash if cred else _dummy_hash(_hasher), password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None or cred is None or not user.active:
        return None
    return user


def new_token(session: Session, user: User, kind: str, lifetime: timedelta, at: datetime) -> tuple[str, ApiToken]:
    """A new random token for ``user`` (returned once; stored only as its SHA-256)."""
    if kind not in TOKEN_KINDS:
        raise InputError(f"token kind must be one of {', '.join(TOKEN_KINDS)}")
    token = secrets.token_urlsafe(32)
    row = ApiToken(token_sha256=token_digest(token), user_id=user.id, kind=kind, csrf=secrets.token_urlsafe(24),
                   created_at=at, expires_at=at + lifetime)
    session.add(row)
    session.flush()
    return token, row


def live_token(session: Session, token: str, at: datetime) -> tuple[ApiToken, User] | None:
    """The token row and its user if ``token`` is live and the user active, else ``None``."""
    if not token:
        return None
    row = session.execute(select(ApiToken).where(ApiToken.token_sha256 == token_digest(token))).scalar_one_or_none()
    if row is None or row.revoked_at is not None or row.expires_at <= at:
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        return None
    return row, user


def revoke_all(session: Session, user_id: int, at: datetime) -> int:
    """Revoke every live token of a user; returns how many."""
    # (a DML statement's result is a CursorResult, which Session.execute's annotation does not say)
    result = cast(CursorResult[Any], session.execute(
        update(ApiToken).where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None), ApiToken.expires_at > at)
        .values(revoked_at=at)))
    return int(result.rowcount or 0)


def clean_name(name: str, limit: int = 60) -> str:
    """A caller-supplied name made safe to record: printable characters only, cut short."""
    text = "".join(ch if ch.isprintable() and ch not in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
                   else "?" for ch in name)
    return text[:limit] or "-"
