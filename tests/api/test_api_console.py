"""Console forms with a cookie session: CSRF, the admin's and supplier's forms, page contents."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import func, select

from apikit import PASSWORD, SUBJECT_REFS, Site, console_login, png
from openlfr.store.models import Camera, LedgerEntry


@contextmanager
def browser(site: Site, name: str) -> Iterator[tuple[httpx.Client, str]]:
    """A cookie session like a browser's, and its CSRF token."""
    with httpx.Client(base_url=site.url, timeout=10) as c:
        assert console_login(c, name).status_code == 303
        yield c, c.get("/api/auth/me").json()["csrf_token"]


def _cameras(site: Site) -> int:
    with site.gov.transaction() as ctx:
        return ctx.session.execute(select(func.count()).select_from(Camera)).scalar_one()


def test_wrong_password_and_console_login(site: Site) -> None:
    with httpx.Client(base_url=site.url) as c:
        assert console_login(c, "admin", "nope").status_code == 401
        assert c.get("/console/admin").status_code == 303


def test_login_form_needs_its_csrf_token(site: Site) -> None:
    with httpx.Client(base_url=site.url) as c:
        # a form posted from elsewhere (no token, or a made-up one) cannot log the browser in
        no_token = c.post("/login", data={"name": "admin", "password": PASSWORD})
        c.get("/login")
        forged = c.post("/login", data={"name": "admin", "password": PASSWORD, "csrf_token": "made-up"})
        assert no_token.status_code == 403 and forged.status_code == 403
        assert "reload the page" in forged.text
        assert "openlfr_session" not in str(no_token.headers) + str(forged.headers)
        assert console_login(c, "admin").status_code == 303


def test_admin_forms_need_csrf(site: Site) -> None:
    before = _cameras(site)
    with browser(site, "admin") as (c, csrf):
        r = c.post("/console/cameras", data={"name": "south-gate", "location": "South gate"})
        assert r.status_code == 403 and _cameras(site) == before
        r = c.post("/console/cameras", data={"name": "south-gate", "location": "South gate", "csrf_token": "forged"})
        assert r.status_code == 403 and _cameras(site) == before
        r = c.post("/console/cameras", data={"name": "south-gate", "location": "South gate", "csrf_token": csrf})
        assert r.status_code == 303 and "msg=" in r.headers["location"]
        assert _cameras(site) == before + 1
        # a refused action comes back as a one-line error, nothing stored
        r = c.post("/console/cameras", data={"name": "south-gate", "location": "again", "csrf_token": csrf},
                   follow_redirects=True)
        assert "already exists" in r.text and _cameras(site) == before + 1
        page = c.get("/console/admin").text
        assert "south-gate" in page and SUBJECT_REFS[0] in page  # admins pick entries by pseudonymous reference


def test_admin_requests_deployment_from_console(site: Site) -> None:
    start = datetime.now(UTC) + timedelta(days=3)
    with browser(site, "admin") as (c, csrf):
        cam = c.post("/console/cameras", data={"name": "east-gate", "location": "East gate", "csrf_token": csrf})
        assert cam.status_code == 303
        cam_id = next(x["id"] for x in c.get("/api/cameras").json() if x["name"] == "east-gate")
        r = c.post("/console/deployments", follow_redirects=True, data={
            "csrf_token": csrf, "purpose": "find wanted people", "watchlist_id": "1", "camera_ids": str(cam_id),
            "start": start.strftime("%Y-%m-%dT%H:%M"), "end": (start + timedelta(hours=4)).strftime("%Y-%m-%dT%H:%M"),
            "threshold": "0.6", "dpia_ref": "DPIA-9", "necessity": "short"})
        assert "necessity" in r.text  # too short: refused with the field named
        r = c.post("/console/deployments", follow_redirects=True, data={
            "csrf_token": csrf, "purpose": "find wanted people", "watchlist_id": "1", "camera_ids": str(cam_id),
            "start": start.strftime("%Y-%m-%dT%H:%M"), "end": (start + timedelta(hours=4)).strftime("%Y-%m-%dT%H:%M"),
            "threshold": "0.6", "dpia_ref": "DPIA-9", "necessity": "Serious offences; less intrusive means failed."})
        assert "requested" in r.text
    with browser(site, "officer") as (c, csrf):
        page = c.get("/console/officer").text
        assert "find wanted people" in page and "authorise" in page


def test_supplier_shares_from_console(site: Site) -> None:
    def ledger_rows() -> int:
        with site.gov.transaction() as ctx:
            return ctx.session.execute(select(func.count()).select_from(LedgerEntry)).scalar_one()

    fields = {"agreement_id": str(site.agreement_id), "category": "wanted", "reason": "warrant 5",
              "subject_ref": "S-CONSOLE", "image_date": "2026-02-01"}
    before = ledger_rows()
    with browser(site, "met") as (c, csrf):
        r = c.post("/console/images", data=fields | {"csrf_token": csrf}, follow_redirects=True,
                   files={"file": ("x.txt", b"plain text", "text/plain")})
        assert "only JPEG or PNG" in r.text and ledger_rows() == before
        r = c.post("/console/images", data=fields, files={"file": ("a.png", png(901), "image/png")})
        assert r.status_code == 403 and ledger_rows() == before  # no CSRF token
        r = c.post("/console/images", data=fields | {"csrf_token": csrf}, follow_redirects=True,
                   files={"file": ("a.png", png(901), "image/png")})
        assert "shared" in r.text and "S-CONSOLE" in r.text
    assert ledger_rows() == before + 1
