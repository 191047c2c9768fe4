"""No console page answers a person with raw JSON.

Every route of every console module (``openlfr.api.console*``, found from the app's router, so
pages added later are walked too) is called as a browser would, with what people get wrong: no
session, the wrong role, no CSRF token, unknown and malformed ids, empty and oversized form
fields, junk query parameters. Each answer must be HTML (or a redirect): a refusal (4xx) is a
page with a readable message, never ``application/json``, and nothing is a server error."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi.routing import APIRoute

from apikit import ROLE_USER, build_store, console_login, make_gov, serve
from openlfr.api import ApiSettings, create_app
from openlfr.governance import Governance, OrgKind, Role, RuleViolation, organisations

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
JUNK_QUERY = {"page": "not-a-number", "per_page": "-5", "limit": "zzz", "offset": "-1", "since": "not-a-date",
              "until": "31/31/31", "state": "no-such-state", "camera": "no-such-camera", "action": "x" * 300,
              "actor": "\x00", "force": "no-such-force", "q": "x" * 3000}
# a page's message (role="alert"), or a fragment's (class="error", as the live queue's row)
MESSAGE = re.compile(r"""(?:role="alert"|class=["']error["'])[^>]*>\s*([^<]{6,})""")


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    roles: frozenset[Role] | None  # None: public; empty: any logged-in user
    fields: tuple[str, ...]


def _walk(routes: list) -> Iterator[APIRoute]:
    """Every endpoint, looking inside included routers."""
    for r in routes:
        if isinstance(r, APIRoute):
            yield r
        inner = getattr(r, "original_router", None) or getattr(r, "router", None)
        if inner is not None and hasattr(inner, "routes"):
            yield from _walk(inner.routes)


def _roles(route: APIRoute) -> frozenset[Role] | None:
    """The roles the route's ``require(...)`` dependency allows (None: no login needed)."""
    def find(dependant) -> frozenset[Role] | None:  # type: ignore[no-untyped-def]
        for d in dependant.dependencies:
            allowed = getattr(d.call, "allowed_roles", None)
            if allowed is not None:
                return allowed
            found = find(d)
            if found is not None:
                return found
        return None
    return find(route.dependant)


def console_routes(app: object) -> list[Route]:
    out = []
    for r in _walk(app.routes):  # type: ignore[attr-defined]
        if not r.endpoint.__module__.startswith("openlfr.api.console"):
            continue
        fields = tuple(p.alias for p in r.dependant.body_params)
        out += [Route(m, r.path, _roles(r), fields) for m in sorted(r.methods) if m != "HEAD"]
    return out


def _fill(path: str, malformed: bool = False) -> str:
    """``path`` with unknown ids (or malformed ones) for its parameters."""
    def value(m: re.Match[str]) -> str:
        name = m[1]
        if name.endswith("_id"):
            return "not-a-number" if malformed else "987654"
        return "start" if name == "verb" else "no-such-thing"
    return re.sub(r"\{(\w+)(?::\w+)?\}", value, path)


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, list[Route], Governance]]:
    """A private server (the probes post forms: nothing they do may reach other tests' store)."""
    gov = make_gov(tmp_path_factory.mktemp("console-errors"))
    build_store(gov)
    app = create_app(gov, settings=ApiSettings(max_upload_bytes=200_000, login_attempts=1000))
    with serve(app) as url:
        yield url, console_routes(app), gov
    gov.close()


def _session(url: str, name: str) -> tuple[httpx.Client, str]:
    c = httpx.Client(base_url=url, timeout=30, headers=BROWSER)
    assert console_login(c, name).status_code == 303
    csrf = httpx.get(f"{url}/api/auth/me", cookies=c.cookies, timeout=30).json()["csrf_token"]
    return c, csrf


def _problem(r: httpx.Response) -> str | None:
    """What is wrong with a console answer, or None."""
    ctype = r.headers.get("content-type", "")
    if "json" in ctype:
        return f"raw JSON ({r.status_code}): {r.text[:160]}"
    if r.status_code >= 500:
        return f"server error {r.status_code}: {r.text[:160]}"
    if r.status_code >= 400:
        if not ctype.startswith("text/html"):
            return f"{r.status_code} as {ctype or 'no content type'}: {r.text[:160]}"
        if not MESSAGE.search(r.text):
            return f"{r.status_code} page without a readable message"
    return None


def _calls(route: Route, client: httpx.Client, csrf: str | None,
           thorough: bool) -> Iterator[tuple[str, httpx.Response]]:
    """The bad requests a person can make at ``route``: every kind when ``thorough`` (a caller
    the route serves), else one (a caller it refuses before it reads anything)."""
    junk = {f: "x" * 6000 for f in route.fields} | {"name": "x" * 6000, "reason": ""}
    if not thorough:
        path = _fill(route.path)
        if route.method == "GET":
            yield f"GET {path}", client.get(path)
        else:
            yield f"POST {path}", client.post(path, data=junk | ({"csrf_token": csrf} if csrf else {}))
        return
    paths = [_fill(route.path)] + ([_fill(route.path, malformed=True)] if "{" in route.path else [])
    for path in paths:
        if route.method == "GET":
            yield f"GET {path}", client.get(path)
            yield f"GET {path} junk query", client.get(path, params=JUNK_QUERY)
            continue
        yield f"POST {path} no CSRF", client.post(path, data=junk)
        if csrf is None or route.path == "/logout":  # a good logout would end the probing session
            continue
        yield f"POST {path} empty form", client.post(path, data={"csrf_token": csrf})
        yield f"POST {path} oversized fields", client.post(path, data=junk | {"csrf_token": csrf})
        yield f"POST {path} multipart junk", client.post(path, data={"csrf_token": csrf},
                                                         files={"file": ("x.txt", b"not an image", "text/plain")})


def test_console_routes_are_found(console: tuple[str, list[Route], Governance]) -> None:
    """The walk sees the console's pages and forms of every console module, not a short list."""
    routes = console[1]
    paths = {r.path for r in routes}
    assert {"/login", "/enrol", "/console/users", "/console/admin", "/transparency"} <= paths
    assert len(routes) >= 30 and any(r.method == "POST" for r in routes)


def test_no_console_page_answers_a_user_error_with_raw_json(console: tuple[str, list[Route], Governance]) -> None:
    url, routes = console[0], console[1]
    sessions = {role: _session(url, name) for role, name in ROLE_USER.items()}
    problems: list[str] = []
    calls = 0
    try:
        with httpx.Client(base_url=url, timeout=30, headers=BROWSER) as anon:
            for route in routes:
                # (who, client, CSRF token, whether the route serves them)
                probes: list[tuple[str, httpx.Client, str | None, bool]] = [
                    ("no session", anon, None, route.roles is None)]
                if route.roles:  # one role the route refuses, one it serves
                    wrong = next((r for r in ROLE_USER if r not in route.roles), None)
                    right = next((r for r in ROLE_USER if r in route.roles), None)
                    probes += [(f"as {r.value}", *sessions[r], r is right) for r in (wrong, right) if r is not None]
                elif route.roles is not None:  # any logged-in user
                    probes.append(("logged in", *sessions[Role.REVIEWER], True))
                for who, client, csrf, thorough in probes:
                    for what, r in _calls(route, client, csrf, thorough):
                        calls += 1
                        problem = _problem(r)
                        if problem:
                            problems.append(f"{what} ({who}): {problem}")
    finally:
        for client, _ in sessions.values():
            client.close()
    assert calls > 100
    assert not problems, "\n".join(problems)


def test_the_error_page_names_the_refusal(console: tuple[str, list[Route], Governance]) -> None:
    """Concrete cases of the walk: the wrong role, a missing CSRF token, an unknown id, a field
    too long, an unknown page: each a page that says why, with the status kept."""
    url = console[0]
    client, csrf = _session(url, ROLE_USER[Role.REVIEWER])
    try:
        cases = {
            "this needs role": client.get("/console/users"),
            "CSRF token": client.post("/console/alerts/1/review", data={"decision": "confirm"}),
            "987654": client.get("/console/alerts/987654"),  # the unknown id is named
            "at most 2000 characters": client.post("/console/alerts/1/review",
                                                   data={"decision": "confirm", "note": "x" * 2001,
                                                         "csrf_token": csrf}),
        }
        cases["no page at /console/no-such-page"] = client.get("/console/no-such-page")
        # a script's fetch() (Accept: */*) from a console page gets the page too
        cases["this needs role operator_admin"] = client.get("/console/admin", headers={"Accept": "*/*"})
        # an image over the upload limit (refused before the body is read)
        cases["too large"] = client.post("/console/images", data={"csrf_token": csrf},
                                         files={"file": ("big.jpg", b"\xff" * 400_000, "image/jpeg")})
    finally:
        client.close()
    for expected, r in cases.items():
        assert r.status_code in (403, 404, 413, 422) and r.headers["content-type"].startswith("text/html"), r.text
        message = MESSAGE.search(r.text)
        assert message and expected.lower() in message[1].lower(), (expected, r.status_code, r.text[-600:])
    # the JSON API keeps answering in JSON
    r = httpx.get(f"{url}/api/alerts/987654", headers={"Accept": "text/html"}, timeout=30)
    assert r.status_code == 401 and r.headers["content-type"] == "application/json"


def test_the_way_to_add_users_that_a_refusal_names_exists(console: tuple[str, list[Route], Governance]) -> None:
    """A second first-admin is refused with the ways to add users instead: each one is real."""
    url, routes, gov = console
    with pytest.raises(RuleViolation) as refused, gov.transaction() as ctx:
        organisations.create_host_admin(ctx, "Another Ltd", OrgKind.SITE_OPERATOR, "boss2", "a long password", "t")
    message = str(refused.value)
    assert "/console/users" in message and "openlfr user add" in message and "POST /api/users" in message
    client, _ = _session(url, "estate-admin")  # an admin of the estate
    try:
        page = client.get("/console/users")
    finally:
        client.close()
    assert page.status_code == 200 and 'action="/console/users"' in page.text
    assert any(r.method == "POST" and r.path == "/console/users" and r.roles == {Role.ADMIN} for r in routes)
    from typer.testing import CliRunner

    from openlfr.cli import app
    r = CliRunner().invoke(app, ["user", "add", "--help"])
    assert r.exit_code == 0 and "--role" in r.output, r.output
