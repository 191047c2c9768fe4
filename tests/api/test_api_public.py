"""The public transparency page and JSON: counts and places, never biometric data or names."""

from __future__ import annotations

import base64

from apikit import ENTRY_REASON, LABELS, SUBJECT_REFS, USERS, Site, watchlist_image

PUBLIC_PATHS = ["/api/public/transparency", "/transparency", "/health", "/metrics", "/", "/login", "/enrol",
                "/api/organisations", "/transparency/deployments/1/report", "/api/public/deployments/1/report",
                "/api/public/checkpoints"]


def test_public_routes_leak_nothing_biometric(site: Site) -> None:
    site.raise_alert()
    with site.gov.transaction() as ctx:
        from openlfr.store.models import SharedImage
        hashes = [i.sha256 for i in ctx.session.query(SharedImage).all()]
    secrets = [*LABELS, *SUBJECT_REFS, ENTRY_REASON, *hashes, site.snapshot_hash,
               base64.b64encode(watchlist_image(0)[:30]).decode()[:20],
               # nor the names of staff (those that are not plain words the pages use anyway)
               *[n for n in USERS if n not in ("admin", "officer", "reviewer", "met")]]
    with site.client() as c:
        for path in PUBLIC_PATHS:
            r = c.get(path, follow_redirects=True)
            assert r.status_code == 200, path
            assert r.headers["content-type"].split(";")[0] in ("application/json", "text/html", "text/plain")
            for s in secrets:
                assert s not in r.text, f"{path} leaks {s!r}"
            assert b"\x89PNG" not in r.content and b"\xff\xd8\xff" not in r.content
            assert "<img" not in r.text


def test_transparency_shows_where_when_why_and_counts(site: Site) -> None:
    site.raise_alert()
    with site.client() as c:
        record = c.get("/api/public/transparency").json()
        page = c.get("/transparency").text
    dep = next(d for d in record["deployments"] if d["id"] == site.deployment_id)
    assert dep["status"] == "live" and dep["cameras"] == ["north-gate"]
    assert dep["locations"] == ["North gate, Estate Road"] and dep["watchlist_size"] == 2
    assert dep["threshold"] == 0.6 and dep["signage"] and all("facial recognition" in s.lower() for s in dep["signage"])
    # the threshold's scale is the frozen templates' face model (the tests' fake one here)
    assert dep["face_model"] == "fake-test-model:00000000" and "fake-test-model:00000000" in page
    assert dep["alerts"] >= 1 and {"verified_alerts", "false_alerts", "people_passes", "faces_searched"} <= dep.keys()
    assert "faces_seen" not in dep and "detections" not in dep  # detections are a diagnostic, not public counts
    assert "complain" in record["how_to_complain"].lower() or "ico" in record["how_to_complain"].lower()
    assert "North gate, Estate Road" in page and "How to complain" in page


def test_each_public_deployment_links_its_effectiveness_report(site: Site) -> None:
    site.raise_alert()
    with site.client() as c:
        record = c.get("/api/public/transparency").json()
        dep = next(d for d in record["deployments"] if d["id"] == site.deployment_id)
        page = c.get("/transparency").text
        assert f'href="{dep["report_url"]}"' in page
        html = c.get(dep["report_url"])
        report = c.get(f"/api/public/deployments/{site.deployment_id}/report").json()
        missing = c.get("/api/public/deployments/999999/report")
    assert html.status_code == 200 and "effectiveness" in html.text.lower()
    # the report and the transparency record count the same things
    assert report["deployment_id"] == site.deployment_id
    assert report["alerts"] == dep["alerts"] >= 1
    assert (report["faces_searched"], report["people_passes"]) == (dep["faces_searched"], dep["people_passes"])
    assert report["verified_true"] == dep["verified_alerts"] and report["verified_false"] == dep["false_alerts"]
    assert {"false_alerts_per_1000_faces_searched", "precision", "observed_false_alert_rate",
            "predicted_vs_observed"} <= report.keys()
    assert missing.status_code == 404
    for s in [*LABELS, *SUBJECT_REFS, ENTRY_REASON, site.snapshot_hash]:
        assert s not in html.text and s not in str(report)


def test_signed_checkpoints_are_published_and_match_the_chain(site: Site) -> None:
    """GET /api/public/checkpoints (no login): the installation's key and every checkpoint, each
    signed by that key and naming an event still in the chain with that hash."""
    from openlfr.audit import chain
    from openlfr.audit import checkpoints as cps

    with site.gov.transaction() as ctx:  # something written now: a deployment's start, say
        ctx.audit("system:test", "test.event", "thing", 1)
        ctx.checkpoint("deployment 99 start")
    with site.client() as c:
        r = c.get("/api/public/checkpoints")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    doc = r.json()
    assert doc["format"] == "openlfr-checkpoints/1" and doc["public_key"] == site.gov.signer.public_key()
    signed = [cps.Checkpoint(**c) for c in doc["checkpoints"]]
    assert signed and signed[-1].reason == "deployment 99 start"
    assert any(c.reason == f"deployment {site.deployment_id} start" for c in signed)  # made by the service
    with site.gov.reading() as ctx:
        records = chain.load_records(ctx.session)
        assert cps.latest(ctx.session) == signed[-1]
    assert cps.verify(signed, records, public_key=doc["public_key"]) == []
