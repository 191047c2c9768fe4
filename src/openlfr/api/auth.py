"""Who is calling: passwords (argon2id), login sessions (cookie + CSRF secret) and bearer
tokens, role checks, and the login rate limiter.

A cookie is sent by the browser on its own, so every state-changing request authenticated
by the cookie must also carry the session's CSRF secret (``X-CSRF-Token`` header or a
``csrf_token`` form field). Bearer tokens are never sent implicitly and need no CSRF check.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from fastapi import HTTPException, Request
from sqlalchemy import select

from openlfr.errors import InputError
from openlfr.governance import Ctx, Role
from openlfr.store.api_models import ApiToken, Credential
from openlfr.store.models import User

SESSION_COOKIE = "openlfr_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MIN_PASSWORD = 10

_hasher = PasswordHasher()
# verified against when the user does not exist, so a wrong name costs as long as a wrong password
_DUMMY_HASH = _hasher.hash("openlfr-no-such-user")


@dataclass(frozen=True)
class Principal:
    """The authenticated caller."""

    user_id: int
    name: str
    role: Role
    organisation: str
    via: str  # "session" (cookie) or "bearer"
    csrf: str
    token_id: int


def token_digest(token: str) -> str:
    """What the database keeps of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


def set_password(ctx: Ctx, actor: str, user: User, password: str) -> None:
    """Store an argon2id hash of ``password`` for ``user`` (``actor`` is who set it)."""
    if len(password) < MIN_PASSWORD:
        raise InputError(f"a password needs at least {MIN_PASSWORD} characters")
    row = ctx.session.get(Credential, user.id)
    digest = _hasher.hash(password)
    if row is None:
        ctx.session.add(Credential(user_id=user.id, password_hash=digest, updated_at=ctx.now()))
    else:
        row.password_hash, row.updated_at = digest, ctx.now()
    ctx.audit(actor, "user.password", "user", user.id)


def check_password(ctx: Ctx, name: str, password: str) -> User | None:
    """The active user ``name`` if ``password`` is theirs, else ``None`` (same cost either way)."""
    user = ctx.session.execute(select(User).where(User.name == name)).scalar_one_or_none()
    cred = ctx.session.get(Credential, user.id) if user is not None else None
    try:
        _hasher.verify(cred.password_hash if cred else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None or cred is None or not user.active:
        return None
    return user


def issue_token(ctx: Ctx, user: User, kind: str, lifetime: timedelta) -> tuple[str, ApiToken]:
    """A new random token (returned once, stored only as its SHA-256)."""
    token = secrets.token_urlsafe(32)
    row = ApiToken(token_sha256=token_digest(token), user_id=user.id, kind=kind, csrf=secrets.token_urlsafe(24),
                   created_at=ctx.now(), expires_at=ctx.now() + lifetime)
    ctx.session.add(row)
    ctx.session.flush()
    ctx.audit(user.name, f"auth.{kind}", "user", user.id, expires_at=row.expires_at)
    return token, row


def resolve_token(ctx: Ctx, token: str, via: str) -> Principal | None:
    """The caller behind ``token`` if it is live and matches how it was sent, else ``None``."""
    row = ctx.session.execute(select(ApiToken).where(ApiToken.token_sha256 == token_digest(token))).scalar_one_or_none()
    if row is None or row.revoked_at is not None or row.expires_at <= ctx.now() or row.kind != via:
        return None
    user = ctx.session.get(User, row.user_id)
    if user is None or not user.active:
        return None
    return Principal(user.id, user.name, Role(user.role), user.organisation, via, row.csrf, row.id)


def revoke(ctx: Ctx, principal: Principal) -> None:
    """End the session or token the caller used."""
    row = ctx.session.get(ApiToken, principal.token_id)
    if row is not None and row.revoked_at is None:
        row.revoked_at = ctx.now()
        ctx.audit(principal.name, "auth.logout", "user", principal.user_id, kind=row.kind)


def _credentials(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise HTTPException(401, "use 'Authorization: Bearer <token>'", headers={"WWW-Authenticate": "Bearer"})
        return token.strip(), "bearer"
    cookie = request.cookies.get(SESSION_COOKIE)
    return (cookie, "session") if cookie else None


async def authenticate(request: Request) -> Principal:
    """The caller, or 401; for cookie sessions, state-changing requests need the CSRF secret (403)."""
    cached = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    creds = _credentials(request)
    if creds is None:
        raise HTTPException(401, "log in first", headers={"WWW-Authenticate": "Bearer"})
    gov = request.app.state.gov
    with gov.transaction() as ctx:
        principal = resolve_token(ctx, *creds)
    if principal is None:
        raise HTTPException(401, "session expired or not valid: log in again", headers={"WWW-Authenticate": "Bearer"})
    if principal.via == "session" and request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER)
        if sent is None and request.headers.get("content-type", "").startswith(
                ("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()
            value = form.get(CSRF_FIELD)
            sent = value if isinstance(value, str) else None
        if not sent or not hmac.compare_digest(sent, principal.csrf):
            raise HTTPException(403, "missing or wrong CSRF token")
    request.state.principal = principal
    return principal


def require(*roles: Role) -> Callable[..., object]:
    """A dependency: the caller, who must hold one of ``roles`` (none given: any logged-in user)."""
    allowed = frozenset(roles)

    async def dependency(request: Request) -> Principal:
        principal = await authenticate(request)
        if allowed and principal.role not in allowed:
            names = ", ".join(sorted(r.value for r in allowed))
            raise HTTPException(403, f"this needs role {names}; you are {principal.role.value}")
        return principal

    dependency.allowed_roles = allowed  # type: ignore[attr-defined]  # read by the docs/tests
    return dependency


class LoginLimiter:
    """Refuses logins after too many failures per client address or per user name in a window."""

    def __init__(self, attempts: int, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.attempts, self.window_s, self.clock = attempts, window_s, clock
        self._failures: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        q = self._failures[key]
        while q and q[0] <= now - self.window_s:
            q.popleft()
        return q

    def retry_after(self, *keys: str) -> float:
        """Seconds until another attempt is allowed (0: allowed now)."""
        now = self.clock()
        with self._lock:
            waits = [q[0] + self.window_s - now for k in keys if len(q := self._recent(k, now)) >= self.attempts]
        return max(waits, default=0.0)

    def failed(self, *keys: str) -> None:
        """Count a failed attempt against every key."""
        now = self.clock()
        with self._lock:
            for k in keys:
                self._recent(k, now).append(now)

    def succeeded(self, *keys: str) -> None:
        """Forget the failures of a user name after a good login."""
        with self._lock:
            for k in keys:
                self._failures.pop(k, None)


def login_user(ctx: Ctx, name: str, password: str) -> User | None:
    """Check a login and audit the outcome (failures included)."""
    user = check_password(ctx, name, password)
    if user is None:
        ctx.audit(name[:120] or "-", "auth.login.failed", "user", "-")
    return user



def login(request: Request, name: str, password: str, kind: str) -> tuple[str, ApiToken, User]:
    """Check a login under the rate limit and issue a session or bearer token (401/429 otherwise)."""
    app = request.app
    client = f"ip:{request.client.host if request.client else '-'}"
    keys = (client, f"user:{name.lower()}")
    wait = app.state.limiter.retry_after(*keys)
    if wait > 0:
        app.state.metrics.logins.labels("throttled").inc()
        raise HTTPException(429, "too many failed logins: try again later",
                            headers={"Retry-After": str(int(wait) + 1)})
    settings = app.state.settings
    lifetime = timedelta(minutes=settings.session_minutes) if kind == "session" else timedelta(days=settings.token_days)
    with app.state.gov.transaction() as ctx:
        user = login_user(ctx, name, password)
        if user is not None:
            token, row = issue_token(ctx, user, kind, lifetime)
    if user is None:
        app.state.limiter.failed(*keys)
        app.state.metrics.logins.labels("failed").inc()
        raise HTTPException(401, "wrong user name or password")
    app.state.limiter.succeeded(keys[1])
    app.state.metrics.logins.labels("ok").inc()
    return token, row, user
