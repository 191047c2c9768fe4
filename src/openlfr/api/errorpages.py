"""Errors as pages: a person using the console never gets raw JSON.

The app's exception handlers (:func:`openlfr.api.app.create_app`) ask :func:`wants_html`
whether a refusal goes to a browser page; if so they answer with :func:`error_page` (the
status is kept: 403, 404, 409, 422, 429, ...), else with the API's ``{"detail": ...}``. A
console route that itself returns a refusal as JSON or plain text is turned into the same page
by :func:`html_errors` (a middleware). Every route of a console module
(``openlfr.api.console*``) counts as a page, so console modules added later are covered
without a change here.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates

WEB = Path(__file__).resolve().parents[1] / "web"
templates = Jinja2Templates(directory=WEB / "templates")
#: paths of the console's pages and public forms (their routes live in console modules too;
#: the paths also cover a request that matched no route, such as an unknown id's page)
PAGE_PATHS = ("/console", "/login", "/enrol", "/logout", "/transparency")
TITLES = {400: "The request could not be read", 401: "Please log in", 403: "Not allowed", 404: "Not found",
          405: "Not available here", 409: "Not possible now", 413: "Too large", 415: "Not a supported file",
          422: "Please check what you entered", 429: "Too many attempts"}


def is_console(request: Request) -> bool:
    """Whether the request is for a console page or form (matched by a console module's route,
    or under one of :data:`PAGE_PATHS`)."""
    path = request.url.path
    if path == "/api" or path.startswith(("/api/", "/static/")):
        return False
    route = request.scope.get("route")
    module = getattr(getattr(route, "endpoint", None), "__module__", "") or ""
    return module.startswith("openlfr.api.console") or path == "/" or path.startswith(PAGE_PATHS)


def wants_html(request: Request) -> bool:
    """Whether a refusal should be a page: console requests (unless a script there asks for
    JSON alone), and any other non-API request from a browser."""
    if request.url.path == "/api" or request.url.path.startswith("/api/"):
        return False
    accept = request.headers.get("accept", "")
    if is_console(request):
        return "text/html" in accept or "application/json" not in accept
    return "text/html" in accept


def readable_validation(errors: Sequence[Mapping[str, Any]]) -> str:
    """FastAPI's validation errors as one line a person can act on (``name: too long``)."""
    parts = []
    for e in errors:
        loc = [str(p) for p in e.get("loc", ()) if p not in ("body", "query", "path", "form")]
        field = ".".join(loc) or "the form"
        msg = str(e.get("msg", "not valid")).removeprefix("Value error, ")
        parts.append(f"{field.replace('_', ' ')}: {msg[:1].lower()}{msg[1:]}")
    return "invalid input: " + "; ".join(parts)


def error_page(request: Request, status: int, message: str, headers: Mapping[str, str] | None = None) -> HTMLResponse:
    """A console page that says what went wrong and where to go next (status kept)."""
    # the router's own terse refusals, said for people
    if status == 404 and message == "Not Found":
        message = f"there is no page at {request.url.path[:200]}"
    elif status == 405 and message == "Method Not Allowed":
        message = f"{request.url.path[:200]} does not take {request.method} requests"
    me = getattr(request.state, "principal", None)
    return templates.TemplateResponse(
        request, "error.html", {"me": me, "msg": "", "error": message, "status": status,
                                "title": TITLES.get(status, "Something went wrong")},
        status_code=status, headers=dict(headers or {}))


async def html_errors(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    """Middleware: a console route's own refusal in JSON or plain text becomes :func:`error_page`
    (its message and status kept); HTML answers and everything outside the console pass as
    they are."""
    response = await call_next(request)
    ctype = response.headers.get("content-type", "")
    if response.status_code < 400 or ctype.startswith("text/html") or not wants_html(request):
        return response
    body = b"".join([chunk async for chunk in response.body_iterator])  # type: ignore[attr-defined]
    text = body.decode("utf-8", "replace").strip()
    if "json" in ctype:
        try:
            detail = json.loads(text).get("detail", text)
        except (ValueError, AttributeError):
            detail = text
        text = detail if isinstance(detail, str) else readable_validation(detail) if isinstance(detail, list) else text
    keep = {k: v for k, v in response.headers.items() if k.lower() in ("retry-after", "www-authenticate")}
    return error_page(request, response.status_code, text[:2000] or TITLES.get(response.status_code, "refused"), keep)
