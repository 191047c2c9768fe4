"""Cameras at the HTTP doors: edit (PATCH), the address masked and the settings shown, the
status of each camera's worker; and the console's camera pages and forms."""

from __future__ import annotations

import json
from html import unescape
from pathlib import Path

from sqlalchemy import select

from apikit import Site
from test_api_console import browser
from openlfr.pipeline.status import record_failure, write_status
from openlfr.store.models import AuditEvent, Camera


def _events(site: Site, action: str) -> list[dict]:
    with site.gov.transaction() as ctx:
        return [json.loads(d) for d in ctx.session.execute(
            select(AuditEvent.details).where(AuditEvent.action == action).order_by(AuditEvent.seq)).scalars()]


def _settings(site: Site, cam: int) -> dict:
    with site.gov.transaction() as ctx:
        return dict(ctx.get(Camera, cam, "camera").settings or {})


def test_patch_camera_masks_the_address_and_validates_settings(site: Site) -> None:
    with site.client("admin") as c:
        c.put("/api/camera-networks", json={"networks": ["10.40.0.0/16"]})
        cam = c.post("/api/cameras", json={"name": "api-edit-cam", "location": "gate"}).json()["id"]
        r = c.patch(f"/api/cameras/{cam}", json={"stream_url": "rtsp://viewer:hunter22@10.40.0.7/live",
                                                  "settings": {"analyse_fps": 3, "roi": [0, 0, 639, 479]}})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["stream_url"] == "rtsp://viewer:***@10.40.0.7/live"
        assert body["settings"] == {"analyse_fps": 3.0, "roi": [0, 0, 639, 479]}
        listed = next(x for x in c.get("/api/cameras").json() if x["id"] == cam)
        assert listed["stream_url"] == body["stream_url"] and "hunter22" not in c.get("/api/cameras").text
        refused_before = len(_events(site, "camera.update.refused"))
        for bad, why in [({"settings": {"analyse_fps": 0}}, "analyse_fps"), ({"settings": {"fps": 3}}, "fps"),
                         ({"stream_url": "rtsp://192.0.2.1/x"}, "outside the networks")]:
            r = c.patch(f"/api/cameras/{cam}", json=bad)
            assert r.status_code == 422 and why in r.json()["detail"], r.text
        assert _settings(site, cam) == {"analyse_fps": 3.0, "roi": [0, 0, 639, 479]}  # nothing stored
        assert len(_events(site, "camera.update.refused")) == refused_before + 3
        assert "hunter22" not in json.dumps(_events(site, "camera.update"))
    with site.client("reviewer") as c:
        assert c.patch(f"/api/cameras/{cam}", json={"zone": "x"}).status_code == 403
    with site.client("met") as c:
        assert c.patch(f"/api/cameras/{cam}", json={"zone": "x"}).status_code == 403


def test_camera_status_over_http(site: Site) -> None:
    with site.gov.transaction() as ctx:
        write_status(ctx, site.camera_id, site.deployment_id, "pipeline:north-gate", "starting")
        write_status(ctx, site.camera_id, site.deployment_id, "pipeline:north-gate", "running", fps=4.9,
                     frames_analysed=50, last_frame_at=ctx.now())
    for user in ("admin", "reviewer", "dpo"):
        with site.client(user) as c:
            r = c.get("/api/cameras/status")
            assert r.status_code == 200, r.text
            row = next(x for x in r.json() if x["camera_id"] == site.camera_id)
            assert (row["state"], row["fps"], row["frames_analysed"]) == ("running", 4.9, 50)
    with site.client("met") as c:
        assert c.get("/api/cameras/status").status_code == 403


def test_console_camera_pages(site: Site, data_dir: Path) -> None:
    clip = str(data_dir / "video" / "short_hamilton_clip.mp4")
    with browser(site, "admin") as (c, csrf):
        assert "/console/cameras" in c.get("/console/admin").text  # linked from the admin's page
        r = c.post("/console/cameras/add", follow_redirects=True, data={
            "csrf_token": csrf, "name": "console-cam", "location": "stage door", "stream_url": clip})
        assert r.status_code == 200 and "console-cam added" in r.text and clip in r.text
        cam = next(x["id"] for x in c.get("/api/cameras").json() if x["name"] == "console-cam")
        # a refused form comes back as a message on the page, never raw JSON, and stores nothing
        r = c.post("/console/cameras/add", follow_redirects=True, data={
            "csrf_token": csrf, "name": "console-cam-2", "location": "x", "stream_url": "tcp://10.1.1.1:9"})
        assert r.status_code == 200 and "scheme 'tcp'" in unescape(r.text) and "<html" in r.text.lower()
        page = c.get(f"/console/cameras/{cam}").text
        assert 'name="s_analyse_fps"' in page and 'name="s_roi"' in page and 'name="s_loop"' in page
        r = c.post(f"/console/cameras/{cam}/edit", follow_redirects=True, data={
            "csrf_token": csrf, "location": "stage door", "zone": "", "stream_url": "", "s_analyse_fps": "4",
            "s_roi": "0,0,639,479", "s_loop": "true", "s_paced": "false", "s_min_face_size": "80"})
        assert "console-cam saved" in r.text, r.text
        assert _settings(site, cam) == {"analyse_fps": 4.0, "roi": [0, 0, 639, 479], "loop": True}
        for bad, why in [({"s_analyse_fps": "-3"}, "analyse_fps"), ({"s_roi": "1,2"}, "LEFT,TOP,RIGHT,BOTTOM"),
                         ({"stream_url": "/etc/passwd"}, "outside the folders")]:
            r = c.post(f"/console/cameras/{cam}/edit", follow_redirects=True, data={"csrf_token": csrf, **bad})
            assert r.status_code == 200 and why in unescape(r.text) and '"detail"' not in r.text, r.text
        assert _settings(site, cam) == {"analyse_fps": 4.0, "roi": [0, 0, 639, 479], "loop": True}
        r = c.post(f"/console/cameras/{cam}/edit", data={"s_analyse_fps": "2"})  # no CSRF token
        assert r.status_code == 403 and _settings(site, cam)["analyse_fps"] == 4.0
    with site.gov.transaction() as ctx:
        record_failure(ctx, cam, None, "pipeline:console-cam", "console-cam: the recording cannot be read")
    with browser(site, "reviewer") as (c, _):
        page = c.get("/console/cameras/status").text
        assert "console-cam" in page and "the recording cannot be read" in page and "failed" in page
        assert "<img" not in page  # no imagery of anyone on the status page
        assert c.get("/console/cameras").status_code == 403  # editing is the operator admin's
