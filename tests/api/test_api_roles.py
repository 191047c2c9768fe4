"""Every route x every role through real HTTP: who is allowed, who gets 401 or 403.

An allowed caller may still get 404/409/422 (the ids and bodies here are deliberately
unknown or empty, so nothing changes), but never 401/403; everyone else gets 403; a
caller without credentials gets 401 (the console sends browsers to the login page).
"""

from __future__ import annotations

import httpx
import pytest
from fastapi.routing import APIRoute

from apikit import ROLE_USER, Site
from openlfr.governance import Role

SUP, ADMIN, OFFICER, REVIEWER, AUDITOR = (Role.SUPPLIER, Role.OPERATOR_ADMIN, Role.AUTHORISING_OFFICER,
                                          Role.REVIEWER, Role.AUDITOR)
USER_ADMIN = Role.ADMIN  # an organisation's own user administrator
FORCE_VIEW = frozenset({SUP, OFFICER, AUDITOR})
ALL = frozenset(Role)
PUBLIC = None
X = 999999  # an id that does not exist

# (method, route path, concrete path, allowed roles or PUBLIC)
TABLE: list[tuple[str, str, str, frozenset[Role] | None]] = [
    ("GET", "/health", "/health", PUBLIC),
    ("GET", "/metrics", "/metrics", PUBLIC),
    ("GET", "/api/public/transparency", "/api/public/transparency", PUBLIC),
    ("GET", "/api/public/deployments/{deployment_id}/report", "/api/public/deployments/1/report", PUBLIC),
    ("GET", "/api/public/checkpoints", "/api/public/checkpoints", PUBLIC),
    ("POST", "/api/auth/token", "/api/auth/token", PUBLIC),
    ("GET", "/api/auth/me", "/api/auth/me", ALL),
    ("POST", "/api/auth/logout", "/api/auth/logout", ALL),
    ("POST", "/api/auth/password", "/api/auth/password", ALL),
    ("POST", "/api/enrol", "/api/enrol", PUBLIC),
    ("GET", "/api/organisations", "/api/organisations", PUBLIC),
    ("GET", "/api/users", "/api/users", frozenset({USER_ADMIN, AUDITOR})),
    ("POST", "/api/users", "/api/users", frozenset({USER_ADMIN})),
    ("POST", "/api/users/{name:path}/deactivate", f"/api/users/nobody-{X}/deactivate", frozenset({USER_ADMIN})),
    ("POST", "/api/users/{name:path}/role", f"/api/users/nobody-{X}/role", frozenset({USER_ADMIN})),
    ("POST", "/api/users/{name:path}/password", f"/api/users/nobody-{X}/password", frozenset({USER_ADMIN})),
    ("GET", "/api/agreements", "/api/agreements", frozenset({SUP, ADMIN, OFFICER, AUDITOR})),
    ("POST", "/api/agreements", "/api/agreements", frozenset({SUP})),
    ("POST", "/api/agreements/{agreement_id}/approve", f"/api/agreements/{X}/approve", frozenset({OFFICER})),
    ("POST", "/api/agreements/{agreement_id}/suspend", f"/api/agreements/{X}/suspend", frozenset({SUP, OFFICER})),
    ("POST", "/api/agreements/{agreement_id}/resume", f"/api/agreements/{X}/resume", frozenset({SUP, OFFICER})),
    ("POST", "/api/agreements/{agreement_id}/end", f"/api/agreements/{X}/end", frozenset({SUP, OFFICER, ADMIN})),
    ("POST", "/api/images", "/api/images", frozenset({SUP})),
    ("POST", "/api/images/{image_id}/revoke", f"/api/images/{X}/revoke", frozenset({SUP})),
    ("GET", "/api/ledger", "/api/ledger", FORCE_VIEW),
    ("GET", "/api/force", "/api/force", FORCE_VIEW),
    ("GET", "/api/watchlists", "/api/watchlists", frozenset({ADMIN, OFFICER, AUDITOR})),
    ("POST", "/api/watchlists", "/api/watchlists", frozenset({ADMIN})),
    ("POST", "/api/watchlists/{watchlist_id}/entries", f"/api/watchlists/{X}/entries", frozenset({ADMIN})),
    ("POST", "/api/watchlists/{watchlist_id}/retemplate", f"/api/watchlists/{X}/retemplate", frozenset({ADMIN})),
    ("POST", "/api/watchlists/{watchlist_id}/retemplate-job", f"/api/watchlists/{X}/retemplate-job",
     frozenset({ADMIN})),
    ("POST", "/api/watchlist-entries/{entry_id}/remove", f"/api/watchlist-entries/{X}/remove", frozenset({ADMIN})),
    ("GET", "/api/cameras", "/api/cameras", frozenset({ADMIN, OFFICER, REVIEWER, AUDITOR})),
    ("POST", "/api/cameras", "/api/cameras", frozenset({ADMIN})),
    ("PATCH", "/api/cameras/{camera_id}", f"/api/cameras/{X}", frozenset({ADMIN})),
    ("GET", "/api/cameras/status", "/api/cameras/status", frozenset({ADMIN, REVIEWER, AUDITOR})),
    ("POST", "/api/cameras/{camera_id}/signage", f"/api/cameras/{X}/signage", frozenset({ADMIN})),
    ("POST", "/api/cameras/{camera_id}/signage/photo", f"/api/cameras/{X}/signage/photo", frozenset({ADMIN})),
    ("PUT", "/api/camera-networks", "/api/camera-networks", frozenset({ADMIN})),
    ("GET", "/api/deployments", "/api/deployments", frozenset({ADMIN, OFFICER, REVIEWER, AUDITOR})),
    ("POST", "/api/deployments", "/api/deployments", frozenset({ADMIN, OFFICER})),
    ("POST", "/api/deployments/{deployment_id}/authorise", f"/api/deployments/{X}/authorise", frozenset({OFFICER})),
    ("POST", "/api/deployments/{deployment_id}/start", f"/api/deployments/{X}/start", frozenset({ADMIN, OFFICER})),
    ("POST", "/api/deployments/{deployment_id}/end", f"/api/deployments/{X}/end", frozenset({ADMIN, OFFICER})),
    ("POST", "/api/deployments/{deployment_id}/refuse", f"/api/deployments/{X}/refuse", frozenset({OFFICER})),
    ("POST", "/api/deployments/{deployment_id}/retro-review", f"/api/deployments/{X}/retro-review",
     frozenset({OFFICER})),
    ("POST", "/api/deployments/{deployment_id}/threshold", f"/api/deployments/{X}/threshold", frozenset({ADMIN})),
    ("GET", "/api/alerts", "/api/alerts", frozenset({REVIEWER})),
    ("GET", "/api/alerts/stream", "/api/alerts/stream", frozenset({REVIEWER})),
    ("GET", "/api/alerts/{alert_id}", f"/api/alerts/{X}", frozenset({REVIEWER, OFFICER})),
    ("POST", "/api/alerts/{alert_id}/review", f"/api/alerts/{X}/review", frozenset({REVIEWER})),
    ("GET", "/api/alerts/{alert_id}/crop", f"/api/alerts/{X}/crop", frozenset({REVIEWER, OFFICER})),
    ("GET", "/api/alerts/{alert_id}/watchlist-image", f"/api/alerts/{X}/watchlist-image",
     frozenset({REVIEWER, OFFICER})),
    ("POST", "/api/alerts/{alert_id}/outcome", f"/api/alerts/{X}/outcome", frozenset({REVIEWER, OFFICER})),
    ("GET", "/api/outcomes/due", "/api/outcomes/due", frozenset({REVIEWER, OFFICER})),
    ("GET", "/api/escalations", "/api/escalations", frozenset({OFFICER})),
    ("POST", "/api/escalations/{escalation_id}/resolve", f"/api/escalations/{X}/resolve", frozenset({OFFICER})),
    ("POST", "/api/alerts/{alert_id}/delete", f"/api/alerts/{X}/delete", frozenset({ADMIN, Role.DPO})),
    ("POST", "/api/alerts/{alert_id}/holds", f"/api/alerts/{X}/holds", frozenset({ADMIN, Role.DPO})),
    ("POST", "/api/holds/{hold_id}/release", f"/api/holds/{X}/release", frozenset({ADMIN, Role.DPO})),
    ("GET", "/api/holds", "/api/holds", frozenset({ADMIN, Role.DPO})),
    # people's requests: the DPO of the organisation addressed; an oversight auditor reads
    ("POST", "/api/requests", "/api/requests", frozenset({Role.DPO})),
    ("GET", "/api/requests", "/api/requests", frozenset({Role.DPO, AUDITOR})),
    ("GET", "/api/requests/{request_id}", f"/api/requests/{X}", frozenset({Role.DPO, AUDITOR})),
    ("POST", "/api/requests/{request_id}/verify", f"/api/requests/{X}/verify", frozenset({Role.DPO})),
    ("POST", "/api/requests/{request_id}/photo", f"/api/requests/{X}/photo", frozenset({Role.DPO})),
    ("POST", "/api/requests/{request_id}/search", f"/api/requests/{X}/search", frozenset({Role.DPO})),
    ("POST", "/api/requests/{request_id}/extend", f"/api/requests/{X}/extend", frozenset({Role.DPO})),
    ("POST", "/api/requests/{request_id}/decide", f"/api/requests/{X}/decide", frozenset({Role.DPO})),
    ("GET", "/api/requests/{request_id}/letter", f"/api/requests/{X}/letter", frozenset({Role.DPO})),
    ("POST", "/api/findings/{finding_id}", f"/api/findings/{X}", frozenset({Role.DPO})),
    ("GET", "/api/findings/{finding_id}/image", f"/api/findings/{X}/image", frozenset({Role.DPO})),
    ("GET", "/api/audit/events", "/api/audit/events", frozenset({AUDITOR})),
    ("POST", "/api/audit/verify", "/api/audit/verify", frozenset({AUDITOR})),
    ("GET", "/api/audit/export", "/api/audit/export", frozenset({AUDITOR})),
    ("POST", "/api/audit/export-job", "/api/audit/export-job", frozenset({AUDITOR})),
    ("GET", "/api/jobs/{job_id}", f"/api/jobs/{X}", ALL),
    # console pages and forms
    ("GET", "/", "/", PUBLIC),
    ("GET", "/login", "/login", PUBLIC),
    ("POST", "/login", "/login", PUBLIC),
    ("GET", "/enrol", "/enrol", PUBLIC),
    ("POST", "/enrol", "/enrol", PUBLIC),
    ("GET", "/transparency", "/transparency", PUBLIC),
    ("GET", "/transparency/deployments/{deployment_id}/report", "/transparency/deployments/1/report", PUBLIC),
    ("POST", "/logout", "/logout", ALL),
    ("GET", "/console", "/console", ALL),
    ("GET", "/console/users", "/console/users", frozenset({USER_ADMIN})),
    ("POST", "/console/users", "/console/users", frozenset({USER_ADMIN})),
    ("POST", "/console/users/deactivate", "/console/users/deactivate", frozenset({USER_ADMIN})),
    ("POST", "/console/users/role", "/console/users/role", frozenset({USER_ADMIN})),
    ("POST", "/console/users/password", "/console/users/password", frozenset({USER_ADMIN})),
    ("GET", "/console/force", "/console/force", FORCE_VIEW),
    ("GET", "/console/reviewer", "/console/reviewer", frozenset({REVIEWER})),
    ("GET", "/console/alerts/{alert_id}", f"/console/alerts/{X}", frozenset({REVIEWER, OFFICER, ADMIN, Role.DPO})),
    ("POST", "/console/alerts/{alert_id}/delete", f"/console/alerts/{X}/delete", frozenset({ADMIN, Role.DPO})),
    ("POST", "/console/alerts/{alert_id}/holds", f"/console/alerts/{X}/holds", frozenset({ADMIN, Role.DPO})),
    ("POST", "/console/holds/{hold_id}/release", f"/console/holds/{X}/release", frozenset({ADMIN, Role.DPO})),
    ("GET", "/console/holds", "/console/holds", frozenset({ADMIN, Role.DPO})),
    ("POST", "/console/alerts/{alert_id}/review", f"/console/alerts/{X}/review", frozenset({REVIEWER})),
    ("POST", "/console/alerts/{alert_id}/outcome", f"/console/alerts/{X}/outcome", frozenset({REVIEWER, OFFICER})),
    ("POST", "/console/escalations/{escalation_id}/resolve", f"/console/escalations/{X}/resolve",
     frozenset({OFFICER})),
    ("GET", "/console/admin", "/console/admin", frozenset({ADMIN})),
    ("POST", "/console/deployments/{deployment_id}/{verb}", f"/console/deployments/{X}/start",
     frozenset({ADMIN, OFFICER})),
    ("POST", "/console/cameras", "/console/cameras", frozenset({ADMIN})),
    ("GET", "/console/cameras", "/console/cameras", frozenset({ADMIN})),
    ("POST", "/console/cameras/add", "/console/cameras/add", frozenset({ADMIN})),
    ("GET", "/console/cameras/status", "/console/cameras/status", frozenset({ADMIN, REVIEWER, AUDITOR})),
    ("GET", "/console/cameras/{camera_id}", f"/console/cameras/{X}", frozenset({ADMIN})),
    ("POST", "/console/cameras/{camera_id}/edit", f"/console/cameras/{X}/edit", frozenset({ADMIN})),
    ("POST", "/console/cameras/{camera_id}/signage", f"/console/cameras/{X}/signage", frozenset({ADMIN})),
    ("POST", "/console/watchlists", "/console/watchlists", frozenset({ADMIN})),
    ("POST", "/console/watchlists/{watchlist_id}/entries", f"/console/watchlists/{X}/entries", frozenset({ADMIN})),
    ("POST", "/console/deployments", "/console/deployments", frozenset({ADMIN, OFFICER})),
    ("POST", "/console/images", "/console/images", frozenset({SUP})),
    ("GET", "/console/officer", "/console/officer", frozenset({OFFICER})),
    ("POST", "/console/agreements/{agreement_id}/approve", f"/console/agreements/{X}/approve", frozenset({OFFICER})),
    ("GET", "/console/supplier", "/console/supplier", frozenset({SUP})),
    ("GET", "/console/auditor", "/console/auditor", frozenset({AUDITOR})),
    # the alert queue, audit log, reports and forms (console_alerts, console_audit, console_reports, console_forms)
    ("GET", "/console/alerts/{alert_id}/row", f"/console/alerts/{X}/row", frozenset({REVIEWER})),
    ("GET", "/console/alerts/{alert_id}/thumb", f"/console/alerts/{X}/thumb", frozenset({REVIEWER, OFFICER})),
    ("GET", "/console/reports", "/console/reports", ALL),
    ("GET", "/console/deployments/{deployment_id}/report", f"/console/deployments/{X}/report", ALL),
    ("GET", "/console/evaluation/{name}", "/console/evaluation/none", ALL),
    ("GET", "/console/evaluation/{name}/plots/{plot}", "/console/evaluation/none/plots/det", ALL),
    ("GET", "/console/agreements", "/console/agreements", frozenset({SUP, ADMIN, OFFICER, AUDITOR})),
    ("POST", "/console/agreements", "/console/agreements", frozenset({SUP})),
    ("POST", "/console/agreements/{agreement_id}/suspend", f"/console/agreements/{X}/suspend",
     frozenset({SUP, OFFICER})),
    ("POST", "/console/agreements/{agreement_id}/resume", f"/console/agreements/{X}/resume", frozenset({SUP, OFFICER})),
    ("POST", "/console/agreements/{agreement_id}/end", f"/console/agreements/{X}/end",
     frozenset({SUP, OFFICER, ADMIN})),
    ("POST", "/console/images/{image_id}/revoke", f"/console/images/{X}/revoke", frozenset({SUP})),
    ("POST", "/console/deployments/{deployment_id}/threshold", f"/console/deployments/{X}/threshold",
     frozenset({ADMIN})),
    ("GET", "/console/watchlists/{watchlist_id}", f"/console/watchlists/{X}", frozenset({ADMIN})),
    ("POST", "/console/watchlist-entries/{entry_id}/remove", f"/console/watchlist-entries/{X}/remove",
     frozenset({ADMIN})),
    ("GET", "/console/password", "/console/password", ALL),
    ("POST", "/console/password", "/console/password", ALL),
    ("POST", "/console/audit/verify", "/console/audit/verify", frozenset({AUDITOR})),
    # people's requests: the public page; the DPO's console pages (an oversight auditor reads)
    ("GET", "/transparency/requests", "/transparency/requests", PUBLIC),
    ("GET", "/console/requests", "/console/requests", frozenset({Role.DPO, AUDITOR})),
    ("POST", "/console/requests", "/console/requests", frozenset({Role.DPO})),
    ("GET", "/console/requests/{request_id}", f"/console/requests/{X}", frozenset({Role.DPO, AUDITOR})),
    ("POST", "/console/requests/{request_id}/verify", f"/console/requests/{X}/verify", frozenset({Role.DPO})),
    ("POST", "/console/requests/{request_id}/photo", f"/console/requests/{X}/photo", frozenset({Role.DPO})),
    ("POST", "/console/requests/{request_id}/search", f"/console/requests/{X}/search", frozenset({Role.DPO})),
    ("POST", "/console/requests/{request_id}/extend", f"/console/requests/{X}/extend", frozenset({Role.DPO})),
    ("POST", "/console/requests/{request_id}/decide", f"/console/requests/{X}/decide", frozenset({Role.DPO})),
    ("POST", "/console/findings/{finding_id}/verdict", f"/console/findings/{X}/verdict", frozenset({Role.DPO})),
    ("GET", "/console/requests/{request_id}/photo.jpg", f"/console/requests/{X}/photo.jpg", frozenset({Role.DPO})),
    ("GET", "/console/findings/{finding_id}/image.jpg", f"/console/findings/{X}/image.jpg", frozenset({Role.DPO})),
]
# routes that end the caller's own session: checked with a throwaway token
LOGOUTS = {"/api/auth/logout", "/logout"}


def _api_routes(routes: list) -> list[APIRoute]:
    """Every endpoint, looking inside included routers (how FastAPI keeps them varies by version)."""
    out: list[APIRoute] = []
    for r in routes:
        if isinstance(r, APIRoute):
            out.append(r)
        inner = getattr(r, "original_router", None) or getattr(r, "router", None)
        if inner is not None and hasattr(inner, "routes"):
            out += _api_routes(inner.routes)
    return out


def test_table_covers_every_route(site: Site) -> None:
    """A new route without a row here fails this test, so none escapes the role checks."""
    served = {(m, r.path) for r in _api_routes(site.app.routes) for m in r.methods if m != "HEAD"}
    assert served == {(m, p) for m, p, _, _ in TABLE}


def _call(client: httpx.Client, method: str, path: str) -> httpx.Response:
    if path == "/api/alerts/stream":
        with client.stream(method, path) as r:  # do not wait for events
            return r
    if method == "GET":
        return client.get(path)
    if method == "PUT":
        return client.put(path, json={})
    if method == "PATCH":
        return client.patch(path, json={})
    if path in ("/api/images",) or path.startswith("/console") or path in ("/login", "/logout", "/enrol"):
        return client.post(path, data={"x": "1"})
    return client.post(path, json={})


def _throwaway_token(site: Site, name: str) -> str:
    from apikit import PASSWORD
    with site.client() as c:
        return c.post("/api/auth/token", json={"name": name, "password": PASSWORD}).json()["token"]


@pytest.mark.parametrize("method,route,path,allowed", TABLE, ids=[f"{m} {r}" for m, r, _, _ in TABLE])
def test_route_roles(site: Site, method: str, route: str, path: str, allowed: frozenset[Role] | None) -> None:
    with site.client() as anon:
        r = _call(anon, method, path)
        if allowed is PUBLIC:
            assert r.status_code not in (401, 403), r.text
        elif path.startswith("/console") or path == "/logout":  # console pages and forms: to the log-in page
            assert r.status_code == 303 and r.headers["location"] == "/login"
        else:
            assert r.status_code == 401, r.text
    if allowed is PUBLIC:
        return
    for role, name in ROLE_USER.items():
        token = _throwaway_token(site, name) if route in LOGOUTS else site.tokens[name]
        with httpx.Client(base_url=site.url, headers={"Authorization": f"Bearer {token}"}, timeout=10) as c:
            r = _call(c, method, path)
        if role in allowed:
            assert r.status_code not in (401, 403), f"{role.value}: {r.status_code} {r.text}"
            assert r.status_code < 500
        else:
            assert r.status_code == 403, f"{role.value} should be refused: {r.status_code} {r.text}"


def test_bad_bearer_token_is_401(site: Site) -> None:
    with httpx.Client(base_url=site.url, headers={"Authorization": "Bearer not-a-token"}) as c:
        assert c.get("/api/auth/me").status_code == 401
    with httpx.Client(base_url=site.url, headers={"Authorization": "Basic abc"}) as c:
        assert c.get("/api/auth/me").status_code == 401
