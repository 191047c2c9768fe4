"""The FastAPI application: :func:`create_app` over one :class:`~openlfr.governance.Governance`."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CollectorRegistry, Counter, Histogram
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from openlfr.api import defs
from openlfr.api.auth import LoginLimiter
from openlfr.api.docs_pages import ASSETS, add_docs
from openlfr.api.errorpages import error_page, html_errors, readable_validation, wants_html
from openlfr.config import ApiSettings, get_settings
from openlfr.errors import ImageTooLarge, InputError, NotFoundError, OpenLFRError, UnsupportedImage
from openlfr.governance import DuplicateError, Governance, PermissionDenied, RuleViolation
from openlfr.governance.retention import RetentionSweeper
from openlfr.pipeline.events import EventBus

WEB = Path(__file__).resolve().parents[1] / "web"

# deliberate service errors -> HTTP status (most specific first)
_STATUS: list[tuple[type[OpenLFRError], int]] = [
    (PermissionDenied, 403), (NotFoundError, 404), (DuplicateError, 409), (RuleViolation, 409),
    (ImageTooLarge, 413), (UnsupportedImage, 415), (InputError, 422),
]


class Metrics:
    """Prometheus metrics of one app (own registry, so several apps can live in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("openlfr_http_requests", "HTTP requests", ["method", "route", "status"],
                                registry=self.registry)
        self.latency = Histogram("openlfr_http_request_seconds", "HTTP request time", ["route"], registry=self.registry)
        self.logins = Counter("openlfr_logins", "Login attempts", ["outcome"], registry=self.registry)
        self.reviews = Counter("openlfr_alert_reviews", "Alert review decisions", ["decision"], registry=self.registry)


#: scripts and styles only from this server (the reports' own inline style excepted), no
#: framing, forms only to this server, images from here or made in the page
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
       "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'")


def _audit_invalid_input(request: Request, principal: object, detail: str) -> None:
    route = request.scope.get("route")
    where = f"{request.method} {getattr(route, 'path', request.url.path)}"
    with request.app.state.gov.transaction() as ctx:
        ctx.audit(principal.actor, "http.input.refused", "route", where[:80],  # type: ignore[attr-defined]
                  reason=detail[:2000])


def create_app(gov: Governance | None = None, *, settings: ApiSettings | None = None,
               bus: EventBus | None = None, retention_sweep_s: float | None = None) -> FastAPI:
    """The API and console over ``gov`` (default: the configured store, with the face
    analyser's enrolment templates); ``bus`` feeds live alerts to reviewers; with
    ``retention_sweep_s`` the app runs the retention sweep that often while it serves."""
    if gov is None:
        from openlfr.face.analyzer import enrolment_template

        gov = Governance(template_fn=enrolment_template)
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        sweeper = RetentionSweeper(gov, retention_sweep_s).start() if retention_sweep_s else None
        app.state.sweeper = sweeper
        # one LISTEN per API process wakes every open alert stream when an alert is committed
        # (on any host); the streams read the store in commit order and poll it too
        from openlfr.api.routes.alerts import StreamWaker
        from openlfr.store.notify import ALERTS, Listener

        app.state.alert_waker = waker = StreamWaker()
        url = get_settings().cluster.listen_url or gov.engine.url.render_as_string(hide_password=False)
        app.state.alert_listener = listener = Listener(url, (ALERTS,), waker.wake).start()
        try:
            yield
        finally:
            listener.stop()
            if sweeper is not None:
                sweeper.stop()

    # /docs and /redoc are added by docs_pages.add_docs, with their assets served from here
    app = FastAPI(title="openlfr", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Open, accountable live facial recognition: governance API and console.")
    app.state.gov = gov
    app.state.settings = settings = settings or get_settings().api
    app.state.bus = bus or EventBus()
    app.state.metrics = metrics = Metrics()
    # enrolment guesses per client address (logins are throttled in the database, every door alike);
    # counted in the store, so every replica shares them
    app.state.limiter = LoginLimiter(gov, settings.login_attempts, settings.login_window_seconds)
    # bounds how many refused credentials per client address are written to the audit log
    app.state.refusals = LoginLimiter(gov, settings.login_attempts, settings.login_window_seconds)

    @app.exception_handler(OpenLFRError)
    async def _service_error(request: Request, err: OpenLFRError) -> Response:
        code = next((c for t, c in _STATUS if isinstance(err, t)), 400)
        if wants_html(request):
            return error_page(request, code, str(err))
        return JSONResponse({"detail": str(err)}, status_code=code)

    @app.exception_handler(OverflowError)
    @app.exception_handler(DataError)
    async def _out_of_range(request: Request, err: Exception) -> Response:
        # a number in a body that the database column cannot hold (SQLite raises OverflowError)
        if wants_html(request):
            return error_page(request, 422, "invalid input: a number is out of range")
        return JSONResponse({"detail": "invalid input: a number is out of range"}, status_code=422)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, err: RequestValidationError) -> Response:
        parts = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()]
        detail = "invalid input: " + "; ".join(parts)
        principal = getattr(request.state, "principal", None)
        if principal is None and request.method not in ("GET", "HEAD", "OPTIONS"):
            # a body that is not even JSON is refused before the route's login check runs
            from openlfr.api.auth import authenticate

            try:
                principal = await authenticate(request)
            except StarletteHTTPException:
                principal = None  # not logged in: nobody to record it under
        if principal is not None and request.method not in ("GET", "HEAD", "OPTIONS"):
            # a logged-in caller's refused input is audited like a refusal in the services
            # (the body is validated before any service runs, so none of them sees it)
            from starlette.concurrency import run_in_threadpool

            await run_in_threadpool(_audit_invalid_input, request, principal, detail)
        if wants_html(request):
            return error_page(request, 422, readable_validation(err.errors()))
        return JSONResponse({"detail": detail}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, err: StarletteHTTPException) -> Response:
        if wants_html(request):
            if err.status_code == 401:
                return RedirectResponse("/login", status_code=303)
            # a console page or form: a page that says why (the status kept), never raw JSON
            return error_page(request, err.status_code, str(err.detail), err.headers)
        return JSONResponse({"detail": err.detail}, status_code=err.status_code, headers=err.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, err: Exception) -> Response:
        # a bug, not a refusal: Starlette still logs it and re-raises it after this answer
        if wants_html(request):
            return error_page(request, 500, "something went wrong on the server (it has been logged): "
                                            "try again, or tell your administrator if it happens again")
        return PlainTextResponse("Internal Server Error", status_code=500)

    # inside _measure (added first = innermost), so the pages it makes get the security headers
    app.middleware("http")(html_errors)

    @app.middleware("http")
    async def _measure(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        start = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        metrics.requests.labels(request.method, path, str(response.status_code)).inc()
        metrics.latency.labels(path).observe(time.perf_counter() - start)
        # the console must never be framed, run injected scripts, or be cached
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if not request.url.path.startswith(("/docs", "/redoc")):  # FastAPI's own pages use inline scripts
            response.headers.setdefault("Content-Security-Policy", CSP)
        if not request.url.path.startswith(("/static", "/metrics", ASSETS)):
            # pages and API answers name people and alerts: no browser or proxy may keep them
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    from openlfr.api.body_limit import BodyLimit

    # outermost: a body over the limit is refused before any other layer reads it
    app.add_middleware(BodyLimit, upload_limit=settings.max_upload_bytes,
                       upload_paths=("/api/images", "/console/images", "/console/requests/{id}/photo",
                                     "/api/requests/{id}/photo"))

    from openlfr.api.routes import alerts, audit, auth, governance, jobs, public, rights
    from openlfr.api import console

    for module in (auth, governance, alerts, audit, public, rights, jobs):
        app.include_router(module.router, responses=defs.ERROR_RESPONSES)
    from openlfr.api import console_alerts, console_audit, console_forms, console_reports
    from openlfr.api import console_cameras, console_rights

    # the console's pages by subject (before console.router: its deployment verbs are a catch-all)
    for page in (console_alerts, console_audit, console_forms, console_reports, console_cameras, console_rights):
        app.include_router(page.router)
    app.include_router(console.router)
    app.mount("/static", StaticFiles(directory=WEB / "static"), name="static")
    add_docs(app)
    return app
