"""People's requests through the doors: the HTTP API (real HTTP) and the command line, on a store
whose watchlist holds real LFW faces: an access request finds the requester's alert by face, an
erasure request that follows it erases the alert (crop unreadable, 'erased under request R'
audited, the chain verifies), a non-match is answered 'nothing held', and bad input and the wrong
people are refused. The rules themselves are pinned in tests/governance/test_gov_rights.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
import typer
from apikit import ESTATE, FORCE, PASSWORD, Site, actor, build_store, serve
from sqlalchemy import select
from typer.testing import CliRunner

from openlfr.cli import auth as cli_auth, rights as cli_rights
from openlfr.api import ApiSettings, create_app
from openlfr.audit import chain
from openlfr.errors import NotFoundError
from openlfr.governance import Governance, Role, users
from openlfr.governance.retention import record_alert, record_media
from openlfr.governance.schemas import UserCreate
from openlfr.rights.keys import media_bytes
from openlfr.store.models import AuditEvent, MediaItem

LFW = {"requester": "Tony_Blair/Tony_Blair_0003.jpg", "crop": "Tony_Blair/Tony_Blair_0004.jpg",
       "other_crop": "Colin_Powell/Colin_Powell_0002.jpg", "passer_by": "Adam_Sandler/Adam_Sandler_0001.jpg",
       "listed": "Tony_Blair/Tony_Blair_0002.jpg", "other": "Colin_Powell/Colin_Powell_0001.jpg"}


@pytest.fixture(scope="module")
def photos(data_dir: Path) -> dict[str, bytes]:
    out = {}
    for key, rel in LFW.items():
        path = data_dir / "lfw" / rel
        if not path.is_file():
            pytest.skip(f"LFW photo {rel} not found under {data_dir / 'lfw'}")
        data = path.read_bytes()
        if key.endswith("crop"):  # the centre of a photo, as a camera crops a face
            img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
            data = cv2.imencode(".png", img[70:180, 70:180])[1].tobytes()
        out[key] = data
    group = cv2.imread(str(data_dir / "misc" / "two_people.jpg"))  # made smaller than the upload limit
    scale = 800 / max(group.shape[:2])
    group = cv2.resize(group, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    out["two_people"] = cv2.imencode(".jpg", group, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes()
    return out


@dataclass
class Store:
    gov: Governance
    url: str  # the database URL
    alerts: dict[str, int]

    def crop_readable(self, alert_id: int) -> bool:
        with self.gov.reading() as ctx:
            media = ctx.session.execute(select(MediaItem).where(MediaItem.alert_id == alert_id)).scalar_one()
            try:
                media_bytes(ctx, media)
            except NotFoundError:
                return False
            return True

    def events(self, action: str) -> list[AuditEvent]:
        with self.gov.reading() as ctx:
            return list(ctx.session.execute(select(AuditEvent).where(AuditEvent.action == action)).scalars())

    def verifies(self) -> bool:
        with self.gov.reading() as ctx:
            return chain.verify(ctx.session).ok


@pytest.fixture
def store(tmp_path: Path, photos: dict[str, bytes]) -> Iterator[Store]:
    """The usual parties and live deployment (apikit.build_store) with real face templates (the
    listed people: Tony Blair and Colin Powell), a DPO at the estate and at the force, and an
    alert with a crop of each listed person. In the test's private data folder, so the command
    line opens the same store."""
    from openlfr.face.analyzer import enrolment_template

    url = f"sqlite:///{tmp_path / 'openlfr.db'}"
    gov = Governance(url, template_fn=enrolment_template)
    dep, cam, entries, _, _ = build_store(gov)
    admins = {name: actor(gov, name) for name in ("estate-admin", "met-admin")}
    with gov.transaction() as ctx:
        for name, admin in (("estate-dpo", "estate-admin"), ("met-dpo", "met-admin")):
            users.create_user(ctx, admins[admin], UserCreate(name=name, role=Role.DPO), PASSWORD)
    alerts = {}
    with gov.transaction() as ctx:
        for i, key in enumerate(("crop", "other_crop")):
            alert = record_alert(ctx, dep, cam, 0.7, datetime.now(UTC), entry_id=entries[i])
            record_media(ctx, "crop", dep, cam, photos[key], datetime.now(UTC), alert_id=alert.id)
            alerts[key] = alert.id
    yield Store(gov, url, alerts)
    gov.close()


@pytest.fixture
def site(store: Store) -> Iterator[Site]:
    app = create_app(store.gov, settings=ApiSettings(max_upload_bytes=200_000, login_attempts=1000))
    with serve(app) as url:
        tokens = {}
        for name in ("estate-dpo", "met-dpo", "admin", "dpo"):  # "dpo" is the oversight body's auditor
            r = httpx.post(f"{url}/api/auth/token", json={"name": name, "password": PASSWORD}, timeout=10)
            tokens[name] = r.json()["token"]
        yield Site(url, store.gov, app, 0, 0, [], 0, "", tokens)


def _photo(c: httpx.Client, rid: int, data: bytes) -> httpx.Response:
    return c.post(f"/api/requests/{rid}/photo", files={"file": ("photo.jpg", data, "image/jpeg")})


def test_access_then_erasure_through_the_api(site: Site, store: Store, photos: dict[str, bytes]) -> None:
    dpo = site.client("estate-dpo")
    r = dpo.post("/api/requests", json={"kind": "access", "name": "Tony Blair", "contact": "tony@example.org",
                                        "details": "I walked past the north gate"})
    assert r.status_code == 201, r.text
    req = r.json()
    rid = req["id"]
    assert req["regime"] == "uk_gdpr" and req["status"] == "received" and req["days_left"] >= 28
    r = dpo.post(f"/api/requests/{rid}/search")
    assert r.status_code == 409 and "verify the requester's identity" in r.json()["detail"]
    assert dpo.post(f"/api/requests/{rid}/verify", json={"evidence_ref": "passport seen, ref V-1"}).status_code == 200
    r = _photo(dpo, rid, photos["two_people"])
    assert r.status_code == 422 and "2 faces found" in r.json()["detail"]
    assert store.events("request.photo.refused")
    r = _photo(dpo, rid, photos["requester"])
    assert r.status_code == 200 and r.json()["has_photo"], r.text
    r = dpo.post(f"/api/requests/{rid}/search")
    assert r.status_code == 200, r.text
    findings = r.json()["findings"]
    alerts = {f["object_id"] for f in findings if f["kind"] == "alert"}
    assert alerts == {store.alerts["crop"]} and {f["kind"] for f in findings} == {"alert", "watchlist_entry",
                                                                                  "shared_image"}
    assert all("Subject" not in (f["summary"] or "") for f in findings)  # no watchlist label
    r = dpo.post(f"/api/requests/{rid}/decide", json={"decision": "granted"})
    assert r.status_code == 409 and "not reviewed" in r.json()["detail"]
    for f in findings:  # a person looks at each record's face before the verdict
        shown = dpo.get(f"/api/findings/{f['id']}/image")
        assert shown.status_code == 200 and shown.headers["content-type"] in ("image/jpeg", "image/png")
        assert site.client("admin").get(f"/api/findings/{f['id']}/image").status_code == 403
        r = dpo.post(f"/api/findings/{f['id']}", json={"verdict": "requester"})
        assert r.status_code == 200 and r.json()["verdict"] == "requester"
    assert len(store.events("request.view_finding")) == len(findings)
    r = dpo.post(f"/api/requests/{rid}/decide", json={"decision": "granted"})
    assert r.status_code == 200 and r.json()["decision"] == "granted" and not r.json()["has_photo"]
    assert dpo.get(f"/api/findings/{findings[0]['id']}/image").status_code == 409  # decided: no more looks
    r = dpo.get(f"/api/requests/{rid}/letter")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    assert f"alert {store.alerts['crop']}" in r.text and f"alert {store.alerts['other_crop']}" not in r.text
    # erasure following the access request: the estate erases its alert, not the force's images
    r = dpo.post("/api/requests", json={"kind": "erasure", "name": "Tony Blair", "contact": "tony@example.org",
                                        "follows_id": rid})
    eid = r.json()["id"]
    assert r.status_code == 201 and len(r.json()["findings"]) == 3
    dpo.post(f"/api/requests/{eid}/verify", json={"evidence_ref": "passport seen, ref V-1"})
    r = dpo.post(f"/api/requests/{eid}/decide", json={"decision": "granted"})
    assert r.status_code == 409 and "not_held_by_us" in r.json()["detail"] and store.crop_readable(store.alerts["crop"])
    r = dpo.post(f"/api/requests/{eid}/decide", json={"decision": "partly", "reasons": ["not_held_by_us"]})
    assert r.status_code == 200, r.text
    assert not store.crop_readable(store.alerts["crop"]) and store.crop_readable(store.alerts["other_crop"])
    [erased] = store.events("request.erased")
    assert json.loads(erased.details)["request"] == eid and store.verifies()
    # the oversight auditor reads without the requester; others are refused; unknown ids are 404
    seen = site.client("dpo").get(f"/api/requests/{eid}").json()
    assert seen["requester_name"] == "[withheld]" and seen["decision"] == "partly"
    assert site.client("dpo").get(f"/api/requests/{eid}/letter").status_code == 403
    assert site.client("met-dpo").get(f"/api/requests/{eid}").status_code == 403
    assert site.client("admin").post("/api/requests", json={"kind": "access", "name": "x", "contact": "y"}
                                     ).status_code == 403
    assert dpo.get("/api/requests/9999").status_code == 404
    assert dpo.post("/api/findings/9999", json={"verdict": "requester"}).status_code == 404
    r = dpo.post("/api/requests", json={"kind": "gossip", "name": "x", "contact": "y"})
    assert r.status_code == 422
    assert [v["id"] for v in dpo.get("/api/requests").json()] == [eid, rid]  # latest decided first


def test_a_non_match_through_the_api(site: Site, photos: dict[str, bytes]) -> None:
    dpo = site.client("met-dpo")
    rid = dpo.post("/api/requests", json={"kind": "access", "name": "A. Passer-by", "contact": "ap@example.org"}
                   ).json()["id"]
    dpo.post(f"/api/requests/{rid}/verify", json={"evidence_ref": "driving licence seen, ref V-9"})
    assert _photo(dpo, rid, photos["passer_by"]).status_code == 200
    r = dpo.post(f"/api/requests/{rid}/search")
    assert r.status_code == 200 and r.json()["findings"] == [] and r.json()["regime"] == "dpa_part3"
    r = dpo.post(f"/api/requests/{rid}/extend", json={"reason": "complex"})
    assert r.status_code == 409 and "Part 3" in r.json()["detail"]
    assert dpo.post(f"/api/requests/{rid}/decide", json={"decision": "nothing_held"}).status_code == 200
    letter = dpo.get(f"/api/requests/{rid}/letter").text
    assert "We found nothing of you" in letter and "no image of it and no face template" in letter
    assert "section 51" in letter  # Part 3: the Commissioner may check a restriction


runner = CliRunner()


def test_access_then_erasure_through_the_cli(store: Store, photos: dict[str, bytes], tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENLFR_DATABASE_URL", store.url)
    monkeypatch.setenv("OPENLFR_CREDENTIALS_FILE", str(tmp_path / "credentials.json"))
    monkeypatch.setenv("OPENLFR_PASSWORD", PASSWORD)
    monkeypatch.delenv("OPENLFR_TOKEN", raising=False)
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """openlfr (test)"""

    cli_auth.register(app)
    cli_rights.register(app)

    def ok(*args: str) -> str:
        r = runner.invoke(app, list(args))
        assert r.exit_code == 0, f"{args}: {r.output}"
        return r.output

    def refused(*args: str, match: str) -> None:
        r = runner.invoke(app, list(args))
        lines = r.output.strip().splitlines()
        assert r.exit_code == 2 and len(lines) == 1 and lines[0].startswith("error:") and match in lines[0], r.output

    photo = tmp_path / "me.jpg"
    photo.write_bytes(photos["requester"])
    ok("login", "admin")
    refused("request", "open", "access", "--name", "T", "--contact", "t@x", match="needs role dpo")
    ok("login", "estate-dpo")
    out = ok("request", "open", "access", "--name", "Tony Blair", "--contact", "tony@example.org",
             "--received", "2026-01-31")
    rid = int(out.split()[1])
    assert "(access, uk_gdpr), due 2026-02-28 00:00 UTC" in out
    refused("request", "open", "gossip", "--name", "T", "--contact", "t@x", match="unknown request kind")
    refused("request", "decide", "9999", "--decision", "granted", match="request 9999 does not exist")
    refused("request", "extend", str(rid), "--reason", "complex", match="within the first month")
    ok("request", "verify", str(rid), "--evidence", "passport seen by J. Smith, ref V-123")
    two = tmp_path / "two.jpg"
    two.write_bytes(photos["two_people"])
    refused("request", "photo", str(rid), str(two), match="2 faces found")
    ok("request", "photo", str(rid), str(photo))
    rows = json.loads(ok("request", "search", str(rid), "--json"))
    assert {r["record"] for r in rows if r["kind"] == "alert"} == {store.alerts["crop"]}
    face = tmp_path / "face.img"
    assert "the record's face written" in ok("request", "finding-image", str(rows[0]["finding"]), "--out", str(face))
    assert face.read_bytes()[:2] in (b"\xff\xd8", b"\x89P") and (face.stat().st_mode & 0o777) == 0o600
    refused("request", "finding-image", str(rows[0]["finding"]), "--out", str(face), match="exists")
    for row in rows:
        assert "requester" in ok("request", "finding", str(row["finding"]), "--verdict", "requester")
    assert "granted; LATE; letter ready" in ok("request", "decide", str(rid), "--decision", "granted")
    letter = ok("request", "letter", str(rid))
    assert "Tony Blair" in letter and f"alert {store.alerts['crop']}" in letter
    out = ok("request", "open", "erasure", "--name", "Tony Blair", "--contact", "tony@example.org",
             "--follows", str(rid))
    eid = int(out.split()[1])
    ok("request", "verify", str(eid), "--evidence", "passport seen by J. Smith, ref V-123")
    refused("request", "decide", str(eid), "--decision", "granted", match="not_held_by_us")
    ok("request", "decide", str(eid), "--decision", "partly", "--reason", "not_held_by_us")
    assert not store.crop_readable(store.alerts["crop"]) and store.verifies()
    shown = json.loads(ok("request", "show", str(eid), "--json"))
    assert shown["decision"] == "partly" and shown["reasons"] == ["not_held_by_us"]
    assert shown["requester_name"] == "Tony Blair"
    listed = json.loads(ok("request", "list", "--json"))
    assert [r["id"] for r in listed] == [eid, rid]
    assert ESTATE in listed[0]["organisation"] and FORCE not in listed[0]["organisation"]
