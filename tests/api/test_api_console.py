"""Console forms with a cookie session: CSRF, the admin's and supplier's forms, page contents."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import func, select

from apikit import PASSWORD, SUBJECT_REFS, Site, console_login, grounds_json, png
from openlfr.store.models import AuditEvent, Camera, LedgerEntry


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
        assert "fill in the fresh form below" in forged.text and 'name="csrf_token"' in forged.text
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


def _events(site: Site, action: str) -> list[str]:
    """The details (JSON text) of the audit events of ``action``, oldest first."""
    with site.gov.transaction() as ctx:
        return list(ctx.session.execute(select(AuditEvent.details).where(AuditEvent.action == action)
                                        .order_by(AuditEvent.seq)).scalars())


def test_admin_requests_deployment_from_console(site: Site) -> None:
    start = datetime.now(UTC) + timedelta(days=3)
    refused_before = len(_events(site, "deployment.request.refused"))
    with browser(site, "admin") as (c, csrf):
        cam = c.post("/console/cameras", data={"name": "east-gate", "location": "East gate", "csrf_token": csrf})
        assert cam.status_code == 303
        cam_id = next(x["id"] for x in c.get("/api/cameras").json() if x["name"] == "east-gate")
        r = c.post("/console/deployments", follow_redirects=True, data={
            "csrf_token": csrf, "purpose": "find wanted people", "watchlist_id": "1", "camera_ids": str(cam_id),
            "start": start.strftime("%Y-%m-%dT%H:%M"), "end": (start + timedelta(hours=4)).strftime("%Y-%m-%dT%H:%M"),
            "threshold": "0.6", **grounds_json(necessity="short")})
        assert "necessity statement must say why" in r.text  # too short: refused with the field named
        r = c.post("/console/deployments", follow_redirects=True, data={
            "csrf_token": csrf, "purpose": "find wanted people", "watchlist_id": "1", "camera_ids": str(cam_id),
            "start": start.strftime("%Y-%m-%dT%H:%M"), "end": (start + timedelta(hours=4)).strftime("%Y-%m-%dT%H:%M"),
            "threshold": "0.6", **grounds_json(legal_basis="dpa2018_s35_sch8_para1")})
        assert "only a police force may use it" in r.text  # a police basis for a site operator
        refusals = _events(site, "deployment.request.refused")
        assert len(refusals) == refused_before + 2 and "only a police force" in refusals[-1]
        r = c.post("/console/deployments", follow_redirects=True, data={
            "csrf_token": csrf, "purpose": "find wanted people", "watchlist_id": "1", "camera_ids": str(cam_id),
            "start": start.strftime("%Y-%m-%dT%H:%M"), "end": (start + timedelta(hours=4)).strftime("%Y-%m-%dT%H:%M"),
            "threshold": "0.6", **grounds_json()})
        assert "requested" in r.text
        assert 'name="legal_basis"' in c.get("/console/admin").text
    with browser(site, "officer") as (c, csrf):
        page = c.get("/console/officer").text
        assert "find wanted people" in page and "authorise" in page and "refuse" in page
        assert "Watchlist composition" in page and "2 entries, 0 under 18" in page  # before authorising
        mine = max(d["id"] for d in c.get("/api/deployments").json())
        r = c.post(f"/console/deployments/{mine}/refuse", data={"csrf_token": csrf, "note": "too broad"},
                   follow_redirects=True)
        assert f"deployment {mine}: refuse done" in r.text
    assert "too broad" in _events(site, "deployment.refuse")[-1]


def test_supplier_shares_from_console(site: Site) -> None:
    def ledger_rows() -> int:
        with site.gov.transaction() as ctx:
            return ctx.session.execute(select(func.count()).select_from(LedgerEntry)).scalar_one()

    fields = {"agreement_id": str(site.agreement_id), "category": "wanted_by_court", "warrant_ref": "WA-2029-00123",
              "reason": "warrant 5", "subject_ref": "S-CONSOLE-1", "image_date": "2026-02-01"}
    before = ledger_rows()
    with browser(site, "met") as (c, csrf):
        r = c.post("/console/images", data=fields | {"csrf_token": csrf}, follow_redirects=True,
                   files={"file": ("x.txt", b"plain text", "text/plain")})
        assert "only JPEG or PNG" in r.text and ledger_rows() == before
        r = c.post("/console/images", data=fields, files={"file": ("a.png", png(901), "image/png")})
        assert r.status_code == 403 and ledger_rows() == before  # no CSRF token
        r = c.post("/console/images", data=fields | {"csrf_token": csrf}, follow_redirects=True,
                   files={"file": ("a.png", png(901), "image/png")})
        assert "shared" in r.text and "S-CONSOLE-1" in r.text
    assert ledger_rows() == before + 1


def test_officer_reviews_an_urgent_deployment_from_console(site: Site) -> None:
    from apikit import FORCE, ORG_ADMIN, actor
    from openlfr.governance import Role, deployments, users
    from openlfr.governance.schemas import UserCreate

    with site.gov.transaction() as ctx:
        users.create_user(ctx, actor(site.gov, ORG_ADMIN[FORCE]),
                          UserCreate(name="console-insp", role=Role.AUTHORISING_OFFICER, rank="inspector"), PASSWORD)
    start = datetime.now(UTC) + timedelta(hours=40)
    with site.client("admin") as c:
        dep = c.post("/api/deployments", json={
            "purpose": "urgent search at the gate", "watchlist_id": 1, "camera_ids": [site.camera_id],
            "start": start.isoformat(), "end": (start + timedelta(hours=4)).isoformat(), "threshold": 0.6,
            **grounds_json(urgent=True, urgency_reason="A violent suspect was seen at the gate an hour ago.")})
        assert dep.status_code == 201, dep.text
    with site.gov.transaction() as ctx:
        deployments.authorise(ctx, actor(site.gov, "console-insp"), dep.json()["id"])
    with browser(site, "officer") as (c, csrf):
        page = c.get("/console/officer").text
        assert "urgent search at the gate" in page and "retrospective review due by" in page
        assert f'/console/deployments/{dep.json()["id"]}/review' in page
        r = c.post(f"/console/deployments/{dep.json()['id']}/review", follow_redirects=True,
                   data={"csrf_token": csrf, "outcome": "ended", "note": "no longer necessary"})
        assert f"deployment {dep.json()['id']}: review done" in r.text
    assert '"outcome":"ended"' in _events(site, "deployment.retro_review")[-1]
