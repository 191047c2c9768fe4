"""Live alerts to reviewers, two-person confirmation, and the public counts, over real HTTP."""

from __future__ import annotations

import json
import threading
import time

import httpx

from apikit import ENTRY_REASON, LABELS, Site, watchlist_image
from openlfr.face.image_gate import gate_image
from openlfr.store.models import Alert


def _public(site: Site) -> dict:
    with site.client() as c:
        deps = c.get("/api/public/transparency").json()["deployments"]
    return next(d for d in deps if d["id"] == site.deployment_id)


def test_live_alert_arrives_by_sse(site: Site) -> None:
    got: list[dict] = []
    subscribers = len(site.app.state.bus._subs)
    with site.client("reviewer") as c, c.stream("GET", "/api/alerts/stream") as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = r.iter_lines()
        assert next(lines) == ": connected"  # subscribed: publishing now cannot be missed
        timer = threading.Timer(0.2, lambda: got.append({"id": site.raise_alert()}))
        timer.start()
        event = None
        for line in lines:
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: ") and event == "alert":
                data = json.loads(line.removeprefix("data: "))
                break
    timer.join()
    assert data["alert_id"] == got[0]["id"]
    assert data["camera_id"] == site.camera_id and data["camera"] == "north-gate" and 0 < data["score"] <= 1
    assert "label" not in data  # names go only to the alert page, never down the stream
    # a closed stream unsubscribes, so the bus does not fill queues nobody reads
    deadline = time.monotonic() + 5
    while len(site.app.state.bus._subs) > subscribers and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(site.app.state.bus._subs) == subscribers


def _stream_alert_ids(site: Site, action, count: int) -> list[int]:  # noqa: ANN001
    """Open the stream, run ``action`` in a moment, collect ``count`` alert ids (or time out)."""
    ids: list[int] = []
    with site.client("reviewer") as c, c.stream("GET", "/api/alerts/stream", timeout=15) as r:
        lines = r.iter_lines()
        assert next(lines) == ": connected"
        timer = threading.Timer(0.2, action)
        timer.start()
        event = None
        deadline = time.monotonic() + 10
        for line in lines:
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: ") and event == "alert":
                ids.append(json.loads(line.removeprefix("data: "))["alert_id"])
                if len(ids) >= count:
                    break
            if time.monotonic() > deadline:
                break
        timer.join()
    return ids


def test_alert_committed_by_another_process_reaches_the_stream_once(site: Site) -> None:
    made: list[int] = []
    # a camera worker in another process only commits to the store: the stream finds it there
    ids = _stream_alert_ids(site, lambda: made.append(site.raise_alert(announce=False)), 1)
    assert ids == made
    # announced on the bus and found in the store: sent once, then the next alert follows
    ids = _stream_alert_ids(site, lambda: made.extend([site.raise_alert(), site.raise_alert(entry=1)]), 2)
    assert ids == made[1:]


def test_two_different_reviewers_must_confirm(site: Site) -> None:
    before = _public(site)
    alert_id = site.raise_alert(entry=0, score=0.77)
    with site.client("reviewer") as r1, site.client("reviewer2") as r2:
        a = r1.get(f"/api/alerts/{alert_id}").json()
        assert a["status"] == "pending" and a["label"] == LABELS[0] and a["reason"] == ENTRY_REASON
        assert a["camera"] == "north-gate" and abs(a["score"] - 0.77) < 1e-6
        assert r1.get(f"/api/alerts/{alert_id}/crop").headers["content-type"] in ("image/png", "image/jpeg")
        # the listed image as stored: re-encoded clean by the image gate
        assert r1.get(f"/api/alerts/{alert_id}/watchlist-image").content == gate_image(watchlist_image(0)).data

        a = r1.post(f"/api/alerts/{alert_id}/review", json={"decision": "confirm", "note": "same face"}).json()
        assert a["status"] == "confirmed_once" and a["confirmations"] == 1
        assert _public(site)["verified_alerts"] == before["verified_alerts"]  # one confirmation is not enough

        again = r1.post(f"/api/alerts/{alert_id}/review", json={"decision": "confirm"})
        assert again.status_code == 409 and "different reviewer" in again.json()["detail"]

        # the second reviewer decides blind: the first decision (and its note) is not shown,
        # in the list nor in the alert, until their own decision is recorded
        blind = r2.get(f"/api/alerts/{alert_id}").json()
        assert blind["status"] == "pending" and blind["confirmations"] == 0 and blind["reviews"] == []
        listed = next(x for x in r2.get("/api/alerts").json() if x["id"] == alert_id)
        assert listed["status"] == "pending" and listed["reviews"] == []
        assert r1.get(f"/api/alerts/{alert_id}").json()["status"] == "confirmed_once"  # the first sees their own

        a = r2.post(f"/api/alerts/{alert_id}/review", json={"decision": "confirm", "note": "agree"}).json()
        assert a["status"] == "verified" and a["confirmations"] == 2
        assert [x["reviewer"] for x in a["reviews"]] == ["reviewer", "reviewer2"]
        late = r2.post(f"/api/alerts/{alert_id}/review", json={"decision": "dismiss"})
        assert late.status_code == 409

    after = _public(site)
    assert after["alerts"] == before["alerts"] + 1
    assert after["verified_alerts"] == before["verified_alerts"] + 1
    assert after["false_alerts"] == before["false_alerts"]


def test_a_deployment_requiring_one_confirmation_is_verified_by_one_reviewer(site: Site) -> None:
    from openlfr.store.models import Deployment

    with site.gov.transaction() as ctx:
        assert ctx.session.get(Deployment, site.deployment_id).confirmations_required == 2  # the default
        ctx.session.get(Deployment, site.deployment_id).confirmations_required = 1
    try:
        alert_id = site.raise_alert()
        with site.client("reviewer") as c:
            r = c.post(f"/api/alerts/{alert_id}/review", json={"decision": "confirm", "note": "same person"})
    finally:  # the site is shared by the module's tests
        with site.gov.transaction() as ctx:
            ctx.session.get(Deployment, site.deployment_id).confirmations_required = 2
    assert r.status_code == 200 and r.json()["status"] == "verified"


def test_dismiss_counts_as_false_alert_and_escalate_keeps_it_open(site: Site) -> None:
    before = _public(site)
    a1, a2 = site.raise_alert(entry=1), site.raise_alert(entry=1)
    with site.client("reviewer") as r:
        assert r.post(f"/api/alerts/{a1}/review", json={"decision": "dismiss", "note": "different person"}).json()[
            "status"] == "dismissed"
        assert r.post(f"/api/alerts/{a2}/review", json={"decision": "escalate", "note": "unsure"}).json()[
            "status"] == "escalated"
        bad = r.post(f"/api/alerts/{a2}/review", json={"decision": "approve"})
        assert bad.status_code == 422
    after = _public(site)
    assert after["false_alerts"] == before["false_alerts"] + 1
    assert after["verified_alerts"] == before["verified_alerts"]
    # each decision is in the audit log
    with site.client("dpo") as c:
        actions = [e["action"] for e in c.get("/api/audit/events", params={"action": "alert.", "limit": 1000}).json()]
    assert "alert.dismiss" in actions and "alert.escalate" in actions and "alert.view_crop" in actions


def test_console_review_with_cookie_and_csrf(site: Site) -> None:
    from apikit import console_login
    alert_id = site.raise_alert()
    with httpx.Client(base_url=site.url, timeout=10) as c:
        r = console_login(c, "reviewer")
        assert r.status_code == 303 and r.headers["location"] == "/console/reviewer"
        assert "httponly" in r.headers["set-cookie"].lower()
        page = c.get("/console/reviewer")
        assert page.status_code == 200 and f"#{alert_id}" in page.text
        # without the CSRF token a cookie-authenticated POST is refused and nothing is recorded
        r = c.post(f"/console/alerts/{alert_id}/review", data={"decision": "confirm"})
        assert r.status_code == 403
        r = c.post(f"/api/alerts/{alert_id}/review", json={"decision": "confirm"})
        assert r.status_code == 403
        csrf = c.get("/api/auth/me").json()["csrf_token"]
        r = c.post(f"/console/alerts/{alert_id}/review", data={"decision": "confirm", "note": "ok", "csrf_token": csrf})
        assert r.status_code == 303 and "msg=" in r.headers["location"]
        page = c.get(f"/console/alerts/{alert_id}")
        assert "confirmed once" in page.text and LABELS[0] in page.text


def _ids_from(site: Site, count: int, params: dict | None = None, headers: dict | None = None) -> list[tuple[str, int]]:
    """(the event's ``id:``, its alert id) of the first ``count`` alerts a new stream sends."""
    got: list[tuple[str, int]] = []
    ident = ""
    with site.client("reviewer") as c, c.stream("GET", "/api/alerts/stream", params=params, headers=headers,
                                                 timeout=15) as r:
        deadline = time.monotonic() + 8
        for line in r.iter_lines():
            if line.startswith("id: "):
                ident = line.removeprefix("id: ")
            elif line.startswith("data: ") and ident:
                got.append((ident, json.loads(line.removeprefix("data: "))["alert_id"]))
                ident = ""
            if len(got) >= count or time.monotonic() > deadline:
                break
    return got


def test_a_stream_resumes_from_the_page_or_the_last_event_it_sent(site: Site) -> None:
    """Alerts committed while a page's stream connects, or while a browser reconnects, are not
    lost: the page gives the newest alert it shows (``after``), a reconnecting EventSource the
    last event id it received (``Last-Event-ID``); each alert event carries its id."""
    shown = site.raise_alert(announce=False)  # the newest alert the page shows
    missed = [site.raise_alert(announce=False), site.raise_alert(announce=False, entry=1)]
    with site.gov.transaction() as ctx:  # each event's id is the alert's cursor: its place in commit order
        cursor = {i: ctx.session.get(Alert, i).cursor for i in missed}
    assert _ids_from(site, 2, params={"after": shown}) == [(str(cursor[i]), i) for i in missed]
    resumed = _ids_from(site, 1, headers={"Last-Event-ID": str(cursor[missed[0]])})
    assert resumed == [(str(cursor[missed[1]]), missed[1])]
    # without either, the stream starts from now (older alerts are in the queue page)
    made: list[int] = []
    assert _stream_alert_ids(site, lambda: made.append(site.raise_alert()), 1) == made
    with site.client("reviewer") as c:
        assert c.get("/api/alerts/stream", params={"after": -1}).status_code == 422
