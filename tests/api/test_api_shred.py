"""Sealed personal data at the HTTP, console and command-line doors: notes, the outcome's
officer and the audit events' personal parts read in clear while the alert's erasure key
lives, "[erased]" (or blank) once the alert is wiped; the export keeps the ciphertext as hashed
and the chain still verifies. The rules and the data-directory scan are tested at the Python
door in tests/governance/test_gov_shred.py.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Iterator

import httpx
import pytest
from apikit import KEY, Site, console_login
from typer.testing import CliRunner

from openlfr.rights.erasure import wipe_alert
from openlfr.store.models import Alert

NOTE = "young male in grey hoodie, red trainers"
RESOLVE = "it is him: same hoodie"
CONFIRM = "tattoo on the left wrist"
OFFICER = "PC 7312 Amara Lindqvist"
OUTCOME = "spoken to by the bus stop"


@pytest.fixture
def cli(site: Site, monkeypatch: pytest.MonkeyPatch) -> Iterator:
    """Runs ``openlfr alert ...`` on the site's store as a user (their credential in OPENLFR_TOKEN)."""
    from openlfr.cli import app
    from openlfr.config import get_settings

    monkeypatch.setenv("OPENLFR_DATABASE_URL", site.gov.engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("OPENLFR_DATA_DIR", str(site.gov.blob_store.root.parent))
    monkeypatch.setenv("OPENLFR_KEY", base64.b64encode(KEY).decode())
    get_settings.cache_clear()

    def run(user: str, *args: str) -> tuple[int, str]:
        r = CliRunner().invoke(app, ["alert", *args], env={"OPENLFR_TOKEN": site.tokens[user]})
        return r.exit_code, r.output

    yield run
    get_settings.cache_clear()


def _audit(c: httpx.Client, alert: int) -> dict[str, dict]:
    """action -> event (as ``GET /api/audit/events`` gives it) of the alert's events with a personal part."""
    events = c.get("/api/audit/events", params={"limit": 1000, "after": 0}).json()
    while len(events) % 1000 == 0 and events:  # page on, to the newest
        more = c.get("/api/audit/events", params={"limit": 1000, "after": events[-1]["seq"]}).json()
        if not more:
            break
        events += more
    return {e["action"]: e for e in events if e["personal"] is not None
            and ((e["object_type"], e["object_id"]) == ("alert", str(alert))
                 or json.loads(e["details"]).get("alert") == alert)}


def test_sealed_notes_at_every_door_then_erased(site: Site, cli) -> None:
    alert = site.raise_alert(announce=False)
    with site.client("reviewer") as c:
        assert c.post(f"/api/alerts/{alert}/review", json={"decision": "escalate", "note": NOTE}).status_code == 200
    code, out = cli("officer", "escalations", "--json")
    esc = next(e for e in json.loads(out) if e["alert"] == alert)
    assert code == 0 and esc["reason"] == NOTE  # the command line opens it
    with site.client("officer") as c:
        assert next(e for e in c.get("/api/escalations").json() if e["alert_id"] == alert)["reason"] == NOTE
        r = c.post(f"/api/escalations/{esc['id']}/resolve", json={"decision": "confirm", "note": RESOLVE})
        assert r.status_code == 200 and r.json()["resolution_note"] == RESOLVE
    with site.client("reviewer2") as c:
        r = c.post(f"/api/alerts/{alert}/review", json={"decision": "confirm", "note": CONFIRM})
        assert r.json()["status"] == "verified"
    code, out = cli("officer", "outcome", str(alert), "--result", "spoken_to", "--officer", OFFICER, "--note", OUTCOME)
    assert code == 0 and f"officer {OFFICER})" in out
    with site.client("officer") as c:
        a = c.get(f"/api/alerts/{alert}").json()
    assert [r["note"] for r in a["reviews"]] == [NOTE, RESOLVE, CONFIRM]
    assert (a["outcome"]["note"], a["outcome"]["officer"]) == (OUTCOME, OFFICER)
    with httpx.Client(base_url=site.url, timeout=10) as browser:
        assert console_login(browser, "officer").status_code == 303
        page = browser.get(f"/console/alerts/{alert}").text
        assert html.escape(NOTE) in page and html.escape(OFFICER) in page
    with site.client("dpo") as c:
        events = _audit(c, alert)
        assert events["alert.escalate"]["personal"] == {"note": NOTE}
        assert events["alert.outcome"]["personal"] == {"officer": OFFICER, "note": OUTCOME}
        assert not [e for e in events.values() if NOTE in e["details"] or OFFICER in e["details"]]
        stored = {a: e["details"] for a, e in events.items()}
    with httpx.Client(base_url=site.url, timeout=10) as browser:
        assert console_login(browser, "dpo").status_code == 303
        page = browser.get("/console/auditor", params={"action": "alert.escalate"}).text
        assert html.escape(NOTE) in page and "sealed:" not in page

    with site.gov.transaction() as ctx:
        wipe_alert(ctx, ctx.session.get(Alert, alert), actor="system:test", action="alert.erase",
                   reason="erased under request 3")

    with site.client("officer") as c:
        a = c.get(f"/api/alerts/{alert}").json()
        assert [r["note"] for r in a["reviews"]] == ["", "", ""] and a["outcome"]["officer"] == ""
        assert c.get(f"/api/alerts/{alert}/crop").status_code == 410
        gone = next(e for e in c.get("/api/escalations").json() if e["alert_id"] == alert)
        assert (gone["reason"], gone["resolution_note"]) == ("", "")
    with site.client("dpo") as c:
        events = _audit(c, alert)
        assert {a: e["details"] for a, e in events.items()} == stored  # as hashed: never rewritten
        assert all(e["personal"].startswith("[erased] alert:") and "(alert.erase)" in e["personal"]
                   for e in events.values())
        export = c.get("/api/audit/export").text
        assert NOTE not in export and all(json.dumps(d)[1:-1] in export for d in stored.values())
        verified = c.post("/api/audit/verify").json()
        assert verified["ok"], verified["detail"]
    with httpx.Client(base_url=site.url, timeout=10) as browser:
        assert console_login(browser, "dpo").status_code == 303
        page = browser.get("/console/auditor", params={"action": "alert.escalate"}).text
        assert "[erased] alert:" in page and html.escape(NOTE) not in page
