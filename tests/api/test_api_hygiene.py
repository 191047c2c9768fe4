"""Watchlist hygiene at the HTTP doors (API and console): categories from the fixed list, the
warrant reference, pseudonymous subject references, the watchlist's categories and signage
per deployment with an optional photo. Each refusal is a 4xx, stores nothing and is audited."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from apikit import WARRANT_REF, Site, png
from openlfr.store.models import AuditEvent, LedgerEntry, SharedImage, SignageRecord, Watchlist, WatchlistEntry
from test_api_console import browser


def _count(site: Site, model: type) -> int:
    with site.gov.transaction() as ctx:
        return ctx.session.execute(select(func.count()).select_from(model)).scalar_one()


def _refusals(site: Site, action: str) -> list[str]:
    with site.gov.transaction() as ctx:
        return list(ctx.session.execute(select(AuditEvent.details).where(AuditEvent.action == f"{action}.refused")
                                        .order_by(AuditEvent.seq)).scalars())


def _meta(site: Site, **over: str) -> dict[str, str]:
    return {"agreement_id": str(site.agreement_id), "category": "wanted_by_court", "warrant_ref": WARRANT_REF,
            "reason": "warrant 12", "subject_ref": "MPS-2026-000777", "image_date": "2026-01-01"} | over


def test_api_share_refusals_are_audited_and_store_nothing(site: Site) -> None:
    cases = [({"category": "wanted"}, "category"),
             ({"warrant_ref": ""}, "warrant or court reference refused"),
             ({"subject_ref": "Tom Ridge, dob 1945-08-26"}, "subject reference refused"),
             ({"subject_ref": "RIDGE 26/08/1945"}, "subject reference refused")]
    for i, (over, match) in enumerate(cases):
        before, audited = (_count(site, SharedImage), _count(site, LedgerEntry)), len(_refusals(site, "image.share"))
        with site.client("met") as c:
            r = c.post("/api/images", data=_meta(site, **over), files={"file": ("a.png", png(3100 + i), "image/png")})
        assert r.status_code == 422 and match in r.json()["detail"], r.text
        assert (_count(site, SharedImage), _count(site, LedgerEntry)) == before
        refusals = _refusals(site, "image.share")
        assert len(refusals) == audited + 1 and match in refusals[-1]
    with site.client("met") as c:  # the protective category needs no warrant reference
        r = c.post("/api/images", data=_meta(site, category="missing_at_risk", warrant_ref=""),
                   files={"file": ("a.png", png(3199), "image/png")})
        assert r.status_code == 201 and r.json()["warrant_ref"] == "", r.text


def test_api_watchlist_categories(site: Site) -> None:
    before = _count(site, Watchlist)
    with site.client("admin") as c:
        for bad in (["wanted"], []):
            r = c.post("/api/watchlists", json={"name": "hyg-bad", "criteria": "c", "categories": bad, "size_cap": 5})
            assert r.status_code == 422 and "categories" in r.json()["detail"], r.text
        assert _count(site, Watchlist) == before
        r = c.post("/api/watchlists", json={"name": "hyg-missing", "criteria": "missing people at risk",
                                            "categories": ["missing_at_risk"], "size_cap": 5})
        assert r.status_code == 201 and r.json()["categories"] == ["missing_at_risk"], r.text
        wl = r.json()["id"]
        assert any(w["id"] == wl and w["categories"] == ["missing_at_risk"] for w in c.get("/api/watchlists").json())
        with site.gov.transaction() as ctx:  # an image of the site, shared as wanted_by_court
            image = ctx.session.execute(select(SharedImage.id).where(SharedImage.category == "wanted_by_court",
                                                                     SharedImage.deleted_at.is_(None))).scalars().first()
        entries, audited = _count(site, WatchlistEntry), len(_refusals(site, "watchlist.add"))
        r = c.post(f"/api/watchlists/{wl}/entries", json={
            "shared_image_id": image, "label": "x", "reason": "r",
            "review_date": (datetime.now(UTC) + timedelta(days=3)).date().isoformat()})
        assert r.status_code == 409 and "not among the categories" in r.json()["detail"], r.text
        assert _count(site, WatchlistEntry) == entries and len(_refusals(site, "watchlist.add")) == audited + 1


def test_api_signage_per_deployment_with_a_photo(site: Site) -> None:
    today = datetime.now(UTC).date()
    base = {"text": "Live facial recognition in use", "checked_on": today.isoformat(),
            "deployment_id": site.deployment_id}
    path = f"/api/cameras/{site.camera_id}/signage"
    before, audited = _count(site, SignageRecord), len(_refusals(site, "signage.record"))
    with site.client("admin") as c:
        for over, match in [({"checked_on": (today - timedelta(days=30)).isoformat()}, "before it is recorded"),
                            ({"checked_on": (today + timedelta(days=1)).isoformat()}, "in the future"),
                            ({"text": "CCTV in operation"}, "facial recognition")]:
            r = c.post(path, json=base | over)
            assert r.status_code == 422 and match in r.json()["detail"], r.text
        assert _count(site, SignageRecord) == before and len(_refusals(site, "signage.record")) == audited + 3
        r = c.post(path, json=base)
        assert r.status_code == 201 and r.json()["deployment_id"] == site.deployment_id, r.text
        photo = png(3300)
        r = c.post(f"{path}/photo", data={k: str(v) for k, v in base.items()},
                   files={"file": ("sign.png", photo, "image/png")})
        assert r.status_code == 201, r.text
        record = r.json()
        assert record["deployment_id"] == site.deployment_id and len(record["photo_sha256"]) == 64
        r = c.post(f"{path}/photo", data={k: str(v) for k, v in base.items()},
                   files={"file": ("sign.gif", b"GIF89a" + bytes(50), "image/gif")})
        assert r.status_code == 415
    with site.gov.transaction() as ctx:
        row = ctx.get(SignageRecord, record["id"], "signage record")
        clean = ctx.blobs.get(row.photo_blob)
    assert hashlib.sha256(clean).hexdigest() == record["photo_sha256"]
    assert clean not in site.gov.blob_store.sealed(row.photo_blob)  # encrypted at rest (file or database row)


def test_openapi_describes_the_new_fields(site: Site) -> None:
    with site.client() as c:
        spec = c.get("/openapi.json").json()
    share = spec["paths"]["/api/images"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert "warrant_ref" in share["properties"] and "missing_at_risk" in share["properties"]["category"]["enum"]
    assert "/api/cameras/{camera_id}/signage/photo" in spec["paths"]
    schemas = spec["components"]["schemas"]
    assert "deployment_id" in schemas["SignageIn"]["properties"]
    assert "categories" in schemas["WatchlistCreate"]["properties"]


def test_console_refusals_show_and_are_audited(site: Site) -> None:
    ledger, audited = _count(site, LedgerEntry), len(_refusals(site, "image.share"))
    with browser(site, "met") as (c, csrf):
        page = c.get("/console/supplier").text
        assert 'name="warrant_ref"' in page and 'value="wanted_by_court"' in page
        r = c.post("/console/images", data=_meta(site, subject_ref="Tom Ridge") | {"csrf_token": csrf},
                   files={"file": ("a.png", png(3400), "image/png")}, follow_redirects=True)
        assert "subject reference refused" in r.text
        r = c.post("/console/images", data=_meta(site, warrant_ref="") | {"csrf_token": csrf},
                   files={"file": ("a.png", png(3401), "image/png")}, follow_redirects=True)
        assert "warrant or court reference refused" in r.text
    assert _count(site, LedgerEntry) == ledger and len(_refusals(site, "image.share")) == audited + 2
    today = datetime.now(UTC).date()
    signs, audited = _count(site, SignageRecord), len(_refusals(site, "signage.record"))
    with browser(site, "admin") as (c, csrf):
        page = c.get("/console/admin").text
        assert 'name="categories"' in page and 'name="deployment_id"' in page and 'type="file" name="file"' in page
        form = {"csrf_token": csrf, "text": "Facial recognition in use", "deployment_id": str(site.deployment_id)}
        r = c.post(f"/console/cameras/{site.camera_id}/signage", follow_redirects=True,
                   data=form | {"checked_on": (today - timedelta(days=10)).isoformat()})
        assert "before it is recorded" in r.text
        r = c.post(f"/console/cameras/{site.camera_id}/signage", follow_redirects=True,
                   data=form | {"checked_on": today.isoformat(), "text": "Smile, CCTV"})
        assert "facial recognition" in r.text
        assert _count(site, SignageRecord) == signs and len(_refusals(site, "signage.record")) == audited + 2
        r = c.post(f"/console/cameras/{site.camera_id}/signage", follow_redirects=True,
                   data=form | {"checked_on": today.isoformat()},
                   files={"file": ("sign.png", png(3402), "image/png")})
        assert "signage check recorded" in r.text
        with site.gov.transaction() as ctx:
            newest = ctx.session.execute(select(SignageRecord).order_by(SignageRecord.id.desc())).scalars().first()
            assert newest.deployment_id == site.deployment_id and newest.photo_sha256
        wls = _count(site, Watchlist)
        r = c.post("/console/watchlists", follow_redirects=True, data={
            "csrf_token": csrf, "name": "hyg-console", "criteria": "c", "size_cap": "5"})
        assert "categories" in r.text and _count(site, Watchlist) == wls  # none ticked: refused
        r = c.post("/console/watchlists", follow_redirects=True, data={
            "csrf_token": csrf, "name": "hyg-console", "criteria": "c", "size_cap": "5",
            "categories": ["wanted_by_court", "court_order"]})
        assert "watchlist hyg-console created" in r.text
    with site.gov.transaction() as ctx:
        row = ctx.session.execute(select(Watchlist).where(Watchlist.name == "hyg-console")).scalar_one()
        assert row.categories == ["wanted_by_court", "court_order"]
