"""Who is calling, over HTTP: the session cookie or bearer token, the CSRF check, role checks at
the route, and the HTTP side of logging in (the limits themselves are the governance login
throttle's, :mod:`openlfr.governance.throttle`; enrolment guesses are counted here).

Everything about credentials themselves (passwords, tokens, who may act) lives in
:mod:`openlfr.governance.credentials` and :mod:`openlfr.governance.login`: this module only
reads the credential from the request, resolves it with :func:`credentials.live_token` and
hands the services a :class:`~openlfr.governance.credentials.Actor` (``Principal.actor``) that
they check again on every call. A user name alone never reaches a service.

A cookie is sent by the browser on its own, so every state-changing request authenticated
by the cookie must also carry the session's CSRF secret (``X-CSRF-Token`` header or a
``csrf_token`` form field). Bearer tokens are never sent implicitly and need no CSRF check.
"""

from __future__ import annotations

import hmac
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from fastapi import HTTPException, Request
from sqlalchemy import select

from openlfr.config import ApiSettings
from openlfr.governance import Governance, OrgKind, Role
from openlfr.governance import login as gov_login
from openlfr.governance import rate_limits
from openlfr.governance.context import Ctx
from openlfr.governance.credentials import Actor, clean_name, live_token, token_digest
from openlfr.governance.errors import Throttled
from openlfr.governance.throttle import wait_text
from openlfr.store.models import ApiToken, User

SESSION_COOKIE = "openlfr_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# how a credential may arrive: the console's cookie holds a session token; the Authorization
# header an API token or a command-line login's token
KINDS_BY_VIA = {"session": frozenset({"session"}), "bearer": frozenset({"bearer", "cli"})}


@dataclass(frozen=True)
class Principal:
    """The authenticated caller. ``token`` is the raw credential, kept in memory for this
    request only, so every service call can check it again (:attr:`actor`)."""

    user_id: int
    name: str
    role: Role
    organisation: str
    organisation_id: int | None
    org_kind: OrgKind | None
    rank: str | None
    via: str  # "session" (cookie) or "bearer"
    csrf: str
    token_id: int
    token: str = field(repr=False, default="")

    @property
    def actor(self) -> Actor:
        """The credential the services act on."""
        return Actor(self.token, self.name)


def resolve(gov: Governance, token: str, via: str) -> Principal | None:
    """The caller behind ``token`` if it is live, its user active and it came the way its kind
    allows (a session token only in the cookie, an API or command-line token only as bearer)."""
    with gov.transaction() as ctx:
        found = live_token(ctx.session, token, ctx.now())
        if found is None or found[0].kind not in KINDS_BY_VIA[via]:
            return None
        row, user = found
        kind = OrgKind(user.org.kind) if user.org is not None else None
        return Principal(user.id, user.name, Role(user.role), user.organisation, user.organisation_id, kind,
                         user.rank, via, row.csrf, row.id, token)


def _credentials(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise HTTPException(401, "use 'Authorization: Bearer <token>'", headers={"WWW-Authenticate": "Bearer"})
        return token.strip(), "bearer"
    cookie = request.cookies.get(SESSION_COOKIE)
    return (cookie, "session") if cookie else None


def _client(request: Request) -> str:
    return f"ip:{request.client.host if request.client else '-'}"


def _audit_bad_credential(request: Request, token: str, via: str) -> None:
    """Record a refused credential: as ``unverified:<the user it was issued to>`` where the
    token is known (expired, revoked, deactivated user, sent the wrong way), else
    ``unverified:-``. At most ``login_attempts`` records per client address and window, so a
    stale browser tab or a flood of made-up tokens cannot fill the audit log."""
    app = request.app
    key = f"refused:{_client(request)}"
    if not app.state.refusals.allow(key):
        return
    gov: Governance = app.state.gov
    with gov.transaction() as ctx:
        row = ctx.session.execute(select(ApiToken).where(ApiToken.token_sha256 == token_digest(token))) \
            .scalar_one_or_none()
        user = ctx.session.get(User, row.user_id) if row is not None else None
        if row is None:
            reason = "unknown token"
        elif row.revoked_at is not None:
            reason = "revoked"
        elif row.expires_at <= ctx.now():
            reason = "expired"
        elif user is None or not user.active:
            reason = "user deactivated"
        else:
            reason = f"a {row.kind} token sent as {via}"
        who = clean_name(user.name) if user is not None else "-"
        ctx.audit(f"unverified:{who}", "auth.refused", "api_token", row.id if row is not None else "-",
                  reason=reason, via=via, method=request.method, path=clean_name(request.url.path, 200))


async def authenticate(request: Request) -> Principal:
    """The caller, or 401; for cookie sessions, state-changing requests need the CSRF secret (403)."""
    cached = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    creds = _credentials(request)
    if creds is None:
        raise HTTPException(401, "log in first", headers={"WWW-Authenticate": "Bearer"})
    from starlette.concurrency import run_in_threadpool

    gov = request.app.state.gov
    principal = await run_in_threadpool(resolve, gov, *creds)
    if principal is None:
        await run_in_threadpool(_audit_bad_credential, request, *creds)
        raise HTTPException(401, "session expired or not valid: log in again", headers={"WWW-Authenticate": "Bearer"})
    if principal.via == "session" and request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER)
        if sent is None and request.headers.get("content-type", "").startswith(
                ("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()
            value = form.get(CSRF_FIELD)
            sent = value if isinstance(value, str) else None
        if not sent or not hmac.compare_digest(sent, principal.csrf):
            raise HTTPException(403, "missing or wrong CSRF token: the form has expired or came from another "
                                     "site; reload the page and try again")
    request.state.principal = principal
    return principal


def _audit_role_refusal(request: Request, principal: Principal, allowed: frozenset[Role]) -> None:
    route = request.scope.get("route")
    where = f"{request.method} {getattr(route, 'path', request.url.path)}"
    with request.app.state.gov.transaction() as ctx:
        ctx.audit(principal.actor, "http.refused", "route", where,
                  reason=f"needs role {', '.join(sorted(r.value for r in allowed))}; is {principal.role.value}")


def require(*roles: Role) -> Callable[..., object]:
    """A dependency: the caller, who must hold one of ``roles`` (none given: any logged-in user).
    A refusal at the route is audited under the caller's verified name (``http.refused``); the
    services check the role again, with the finer rules (own organisation, rank, ...)."""
    allowed = frozenset(roles)

    async def dependency(request: Request) -> Principal:
        principal = await authenticate(request)
        if allowed and principal.role not in allowed:
            from starlette.concurrency import run_in_threadpool

            await run_in_threadpool(_audit_role_refusal, request, principal, allowed)
            names = ", ".join(sorted(r.value for r in allowed))
            raise HTTPException(403, f"this needs role {names}; you are {principal.role.value}")
        return principal

    dependency.allowed_roles = allowed  # type: ignore[attr-defined]  # read by the docs/tests
    return dependency


class LoginLimiter:
    """Failures per key in a window, counted in the database (:mod:`openlfr.governance.rate_limits`),
    so every API replica shares them: enrolment guesses per client address, and how many refused
    credentials are audited. (Logins are throttled in the database too, with lockouts,
    :mod:`openlfr.governance.throttle`, the same for every door and process.)"""

    def __init__(self, gov: Governance, attempts: int, window_s: float) -> None:
        self.gov, self.attempts, self.window_s = gov, attempts, window_s

    def retry_after(self, *keys: str) -> float:
        """Seconds until another attempt is allowed (0: allowed now)."""
        with self.gov.reading() as ctx:
            return max((rate_limits.retry_after(ctx, k, limit=self.attempts, window=self.window_s) for k in keys),
                       default=0.0)

    def failed(self, *keys: str) -> None:
        """Count a failed attempt against every key."""
        def count(ctx: Ctx) -> None:
            for k in sorted(keys):  # (one order for every caller: two keys never lock each other out)
                rate_limits.failed(ctx, k, window=self.window_s)
        self.gov.run(count)

    def allow(self, key: str) -> bool:
        """Count one against ``key`` if it is under the limit (True), else False: checked and
        counted in one step, so concurrent callers never exceed the limit together."""
        return self.gov.run(lambda ctx: rate_limits.take(ctx, key, limit=self.attempts, window=self.window_s))

    def succeeded(self, *keys: str) -> None:
        """Forget the failures of ``keys`` after a good attempt."""
        def forget(ctx: Ctx) -> None:
            for k in keys:
                rate_limits.clear(ctx, k)
        self.gov.run(forget)


def throttle(request: Request, *keys: str) -> None:
    """429 with ``Retry-After`` while ``keys`` have too many recent failures."""
    wait = request.app.state.limiter.retry_after(*keys)
    if wait > 0:
        request.app.state.metrics.logins.labels("throttled").inc()
        raise HTTPException(429, f"too many failed attempts: try again in {wait_text(wait)}",
                            headers={"Retry-After": str(int(wait) + 1)})


def address_attempts(settings: ApiSettings) -> int:
    """Failed logins allowed per client address whatever the names (default 20 per name's)."""
    return settings.login_address_attempts or 20 * settings.login_attempts


def login(request: Request, name: str, password: str, kind: str) -> tuple[Actor, ApiToken, User]:
    """Log in through :func:`openlfr.governance.login.log_in` (throttled per user name and
    client address, and per address whatever the names, in the database); 401 for a wrong
    password, 429 with ``Retry-After`` and how long to wait while throttled. Runs in the
    caller's worker thread (the password hash is slow)."""
    app = request.app
    settings = app.state.settings
    lifetime = timedelta(minutes=settings.session_minutes) if kind == "session" else timedelta(days=settings.token_days)
    try:
        result = gov_login.log_in(app.state.gov, name, password, kind, lifetime, _client(request),
                                  limit=settings.login_attempts, window=settings.login_window_seconds,
                                  place_limit=address_attempts(settings))
    except Throttled as err:
        app.state.metrics.logins.labels("throttled").inc()
        raise HTTPException(429, str(err), headers={"Retry-After": str(max(1, math.ceil(err.retry_after)))}) from None
    if result is None:
        app.state.metrics.logins.labels("failed").inc()
        raise HTTPException(401, "wrong user name or password")
    app.state.metrics.logins.labels("ok").inc()
    return result


def logout(request: Request, principal: Principal) -> None:
    """Revoke the session or token the caller used."""
    with request.app.state.gov.transaction() as ctx:
        gov_login.logout(ctx, principal.actor)


def enrolment_keys(request: Request) -> tuple[str, ...]:
    """What failed enrolments count against: the client address (tokens are guessed from there)."""
    return ("enrol:" + _client(request),)
