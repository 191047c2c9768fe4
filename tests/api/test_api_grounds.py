"""Structured deployment records through the HTTP API: refused grounds (audited, nothing
stored), the composition shown before authorising, refusal by the officer, and the urgency
route's retrospective review."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import func, select

from apikit import FORCE, ORG_ADMIN, PASSWORD, Site, actor, grounds_json
from openlfr.governance import Role, users
from openlfr.governance.schemas import UserCreate
from openlfr.store.models import AuditEvent, Deployment


def _body(site: Site, hours_from_now: float = 10, **over: object) -> dict:
    start = datetime.now(UTC) + timedelta(hours=hours_from_now)
    return {"purpose": "locate wanted people at the estate", "watchlist_id": 1, "camera_ids": [site.camera_id],
            "start": start.isoformat(), "end": (start + timedelta(hours=4)).isoformat(), "threshold": 0.6,
            **grounds_json(**over)}


def _count(site: Site, model: type) -> int:
    with site.gov.transaction() as ctx:
        return ctx.session.execute(select(func.count()).select_from(model)).scalar_one()


def _details(site: Site, action: str) -> list[dict]:
    with site.gov.transaction() as ctx:
        return [json.loads(d) for d in ctx.session.execute(
            select(AuditEvent.details).where(AuditEvent.action == action).order_by(AuditEvent.seq)).scalars()]


def test_api_refuses_bad_grounds_and_audits_it(site: Site) -> None:
    before = _count(site, Deployment)
    with site.client("admin") as c:
        r = c.post("/api/deployments", json=_body(site, dpia_ref="n/a"))
        assert r.status_code == 422 and "DPIA reference" in r.json()["detail"]
        r = c.post("/api/deployments", json=_body(site, legal_basis="DPA 2018 s.35"))
        assert r.status_code == 422 and "legal_basis" in r.json()["detail"]
        r = c.post("/api/deployments", json=_body(site, legal_basis="dpa2018_s35_sch8_para1"))
        assert r.status_code == 409 and "only a police force" in r.json()["detail"]
        future = (datetime.now(UTC) + timedelta(days=3)).date().isoformat()
        r = c.post("/api/deployments", json=_body(site, eia_date=future))
        assert r.status_code == 422 and "after today" in r.json()["detail"]
    assert _count(site, Deployment) == before
    assert len(_details(site, "http.input.refused")) >= 2
    assert [d["reason"][:40] for d in _details(site, "deployment.request.refused")][-2:] == [
        "legal basis dpa2018_s35_sch8_para1 is a ", "the equality impact assessment is dated "]


def test_api_composition_refuse_and_retro_review(site: Site) -> None:
    with site.client("admin") as c:
        requested = c.post("/api/deployments", json=_body(site))
        assert requested.status_code == 201, requested.text
        dep = requested.json()
        assert dep["composition"]["entries"] == 2 and dep["composition"]["categories"]  # shown before authorising
        assert c.post(f"/api/deployments/{dep['id']}/refuse", json={"reason": "mine"}).status_code == 403
    with site.client("officer") as c:
        r = c.post(f"/api/deployments/{dep['id']}/refuse", json={"reason": ""})
        assert r.status_code == 422
        r = c.post(f"/api/deployments/{dep['id']}/refuse", json={"reason": "the watchlist is too broad"})
        assert r.status_code == 200 and r.json()["status"] == "refused", r.text
    assert _details(site, "deployment.refuse")[-1]["reason"] == "the watchlist is too broad"

    # the urgency route: an inspector authorises, a superintendent reviews
    with site.gov.transaction() as ctx:
        users.create_user(ctx, actor(site.gov, ORG_ADMIN[FORCE]),
                          UserCreate(name="insp", role=Role.AUTHORISING_OFFICER, rank="inspector"), PASSWORD)
    with site.client("admin") as c:
        urgent = c.post("/api/deployments", json=_body(
            site, hours_from_now=20, urgent=True, urgency_reason="A violent suspect was seen at the gate an hour ago."))
        assert urgent.status_code == 201 and urgent.json()["urgent"], urgent.text
    insp = httpx.Client(base_url=site.url, headers={"Authorization": f"Bearer {site.login('insp')}"}, timeout=10)
    with insp:
        r = insp.post(f"/api/deployments/{urgent.json()['id']}/authorise", json={})
        assert r.status_code == 200 and r.json()["retro_review_due"], r.text
        r = insp.post(f"/api/deployments/{urgent.json()['id']}/retro-review", json={"outcome": "upheld", "note": "x"})
        assert r.status_code == 403 and "cannot review" in r.json()["detail"]
    with site.client("officer") as c:
        r = c.post(f"/api/deployments/{urgent.json()['id']}/retro-review", json={"outcome": "maybe", "note": "x"})
        assert r.status_code == 422
        r = c.post(f"/api/deployments/{urgent.json()['id']}/retro-review",
                   json={"outcome": "ended", "note": "the suspect was found elsewhere"})
        assert r.status_code == 200 and r.json()["retro_review_outcome"] == "ended", r.text
        assert r.json()["status"] == "cancelled"
    with site.client("admin") as c:
        r = c.post(f"/api/deployments/{urgent.json()['id']}/retro-review", json={"outcome": "ended", "note": "x"})
        assert r.status_code == 403


def test_openapi_documents_the_new_routes(site: Site) -> None:
    paths = httpx.get(f"{site.url}/openapi.json", timeout=10).json()["paths"]
    for route in ("/api/deployments/{deployment_id}/refuse", "/api/deployments/{deployment_id}/retro-review"):
        assert {"403", "409", "422"} <= set(paths[route]["post"]["responses"]), route
    props = httpx.get(f"{site.url}/openapi.json", timeout=10).json()["components"]["schemas"]["DeploymentRequest"]
    assert {"legal_basis", "dpia_date", "eia_ref", "eia_date", "proportionality", "urgent"} <= set(props["properties"])
