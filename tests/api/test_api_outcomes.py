"""Alert outcomes and escalations through the HTTP API, the console and the command line.

The rules themselves (and each one disabled) are tested at the Python door in
tests/governance/test_gov_outcomes.py; here the main paths and a refusal go through each door.
On the shared site the force's officer ("officer") authorised the estate's deployment, so the
force's authorising officers own its escalations; "reviewer" and "reviewer2" are the estate's.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from apikit import KEY, Site, console_login
from sqlalchemy import select
from typer.testing import CliRunner

from openlfr.store.models import AuditEvent


def _events(site: Site, action: str, object_id: int) -> list[AuditEvent]:
    with site.gov.sessions() as session:
        return list(session.execute(select(AuditEvent).where(AuditEvent.action == action,
                                                             AuditEvent.object_id == str(object_id))).scalars())


def _review(site: Site, user: str, alert: int, decision: str, note: str = "n") -> httpx.Response:
    with site.client(user) as c:
        return c.post(f"/api/alerts/{alert}/review", json={"decision": decision, "note": note})


def _verified(site: Site) -> int:
    alert = site.raise_alert(announce=False)
    assert _review(site, "reviewer", alert, "confirm").status_code == 200
    assert _review(site, "reviewer2", alert, "confirm").json()["status"] == "verified"
    return alert


def _escalation_of(site: Site, alert: int, user: str = "officer") -> dict:
    with site.client(user) as c:
        r = c.get("/api/escalations")
    assert r.status_code == 200, r.text
    return next(e for e in r.json() if e["alert_id"] == alert)


# --- HTTP API ------------------------------------------------------------------------------
def test_api_outcome_is_due_then_recorded_once(site: Site) -> None:
    alert = _verified(site)
    with site.client("reviewer") as c:
        a = c.get(f"/api/alerts/{alert}").json()
        assert a["status"] == "verified" and a["outcome_due"] and a["outcome"] is None
        assert alert in [d["alert_id"] for d in c.get("/api/outcomes/due").json()]
    with site.client("officer") as c:  # an officer of the authorising force
        assert alert in [d["alert_id"] for d in c.get("/api/outcomes/due").json()]
        r = c.post(f"/api/alerts/{alert}/outcome", json={"result": "spoken_to", "officer": "PC 4411", "note": "ok"})
        assert r.status_code == 200, r.text
        assert not r.json()["outcome_due"]
        assert r.json()["outcome"] | {"recorded_at": None} == {
            "result": "spoken_to", "officer": "PC 4411", "note": "ok", "recorded_by": "officer", "recorded_at": None}
        assert alert not in [d["alert_id"] for d in c.get("/api/outcomes/due").json()]
    with site.client("reviewer") as c:
        again = c.post(f"/api/alerts/{alert}/outcome", json={"result": "arrested", "officer": "PC 1"})
        assert again.status_code == 409 and "already recorded" in again.json()["detail"]
        assert c.get(f"/api/alerts/{alert}").json()["outcome"]["result"] == "spoken_to"
        unknown = c.post(f"/api/alerts/{alert}/outcome", json={"result": "released", "officer": "PC 1"})
        assert unknown.status_code == 422 and "result" in unknown.json()["detail"]
        no_officer = c.post(f"/api/alerts/{alert}/outcome", json={"result": "arrested"})
        assert no_officer.status_code == 422
    assert len(_events(site, "alert.outcome", alert)) == 1
    assert len(_events(site, "alert.outcome.refused", alert)) == 1


def test_api_outcome_refused_on_an_unverified_alert_and_to_other_roles(site: Site) -> None:
    alert = site.raise_alert(announce=False)
    with site.client("reviewer") as c:
        r = c.post(f"/api/alerts/{alert}/outcome", json={"result": "arrested", "officer": "PC 1"})
        assert r.status_code == 409 and "not yet verified" in r.json()["detail"]
        assert not c.get(f"/api/alerts/{alert}").json()["outcome_due"]
    with site.client("dpo") as c:
        assert c.post(f"/api/alerts/{alert}/outcome", json={"result": "arrested", "officer": "PC 1"}).status_code == 403
    assert len(_events(site, "alert.outcome.refused", alert)) == 1


def test_api_escalation_is_the_forces_officers_to_resolve(site: Site) -> None:
    alert = site.raise_alert(announce=False)
    assert _review(site, "reviewer", alert, "escalate", "hat and glasses").json()["status"] == "escalated"
    esc = _escalation_of(site, alert)
    assert esc["owner_role"] == "authorising_officer" and esc["owner"] == "Met Police"
    assert esc["status"] == "open" and esc["opened_by"] == "reviewer" and esc["reason"] == "hat and glasses"
    with site.client("reviewer") as c:
        assert c.get("/api/escalations").status_code == 403  # the queue is the officers'
        assert c.post(f"/api/escalations/{esc['id']}/resolve", json={"decision": "dismiss"}).status_code == 403
    blocked = _review(site, "reviewer2", alert, "confirm")
    assert blocked.status_code == 409 and "escalated" in blocked.json()["detail"]
    with site.client("officer") as c:
        assert c.post(f"/api/escalations/{esc['id']}/resolve", json={"decision": "escalate"}).status_code == 422
        r = c.post(f"/api/escalations/{esc['id']}/resolve", json={"decision": "confirm", "note": "it is him"})
        assert r.status_code == 200 and r.json()["status"] == "confirmed" and r.json()["resolved_by"] == "officer"
        a = c.get(f"/api/alerts/{alert}").json()  # the officer may open the alert
        assert a["status"] == "confirmed_once" and a["confirmations"] == 1  # one confirmation is not enough
        again = c.post(f"/api/escalations/{esc['id']}/resolve", json={"decision": "dismiss"})
        assert again.status_code == 409 and "already resolved" in again.json()["detail"]
    assert _review(site, "reviewer2", alert, "confirm").json()["status"] == "verified"
    assert len(_events(site, "escalation.resolve", esc["id"])) == 1


def test_api_officers_dismissal_settles_false(site: Site) -> None:
    alert = site.raise_alert(announce=False)
    _review(site, "reviewer", alert, "escalate")
    esc = _escalation_of(site, alert)
    with site.client("officer") as c:
        r = c.post(f"/api/escalations/{esc['id']}/resolve", json={"decision": "dismiss", "note": "someone else"})
        assert r.status_code == 200 and r.json()["status"] == "dismissed"
    with site.client("reviewer") as c:
        assert c.get(f"/api/alerts/{alert}").json()["status"] == "dismissed"


# --- console -----------------------------------------------------------------------------
@contextmanager
def _browser(site: Site, name: str) -> Iterator[tuple[httpx.Client, str]]:
    with httpx.Client(base_url=site.url, timeout=10) as c:
        assert console_login(c, name).status_code == 303
        yield c, c.get("/api/auth/me").json()["csrf_token"]


def test_console_escalation_queue_and_outcome_form(site: Site) -> None:
    alert = site.raise_alert(announce=False)
    _review(site, "reviewer", alert, "escalate", "unsure")
    esc = _escalation_of(site, alert)
    with _browser(site, "officer") as (c, csrf):
        page = c.get("/console/officer").text
        assert f'data-escalation="{esc["id"]}"' in page and "unsure" in page
        path = f"/console/escalations/{esc['id']}/resolve"
        assert c.post(path, data={"decision": "confirm", "note": "x"}).status_code == 403  # no CSRF token
        assert _escalation_of(site, alert)["status"] == "open"
        r = c.post(path, data={"decision": "confirm", "note": "him", "csrf_token": csrf}, follow_redirects=True)
        assert "confirm recorded" in r.text
    _review(site, "reviewer2", alert, "confirm")
    with _browser(site, "reviewer") as (c, csrf):
        assert "outcome due" in c.get("/console/reviewer").text
    with _browser(site, "officer") as (c, csrf):
        page = c.get(f"/console/alerts/{alert}").text
        assert "outcome due" in page and 'id="outcome-form"' in page and 'value="mistaken_identity"' in page
        form = {"result": "mistaken_identity", "officer": "PS 12", "note": "not him", "csrf_token": csrf}
        r = c.post(f"/console/alerts/{alert}/outcome", data=form, follow_redirects=True)
        assert "outcome recorded" in r.text and 'id="outcome"' in r.text and "PS 12" in r.text
        r = c.post(f"/console/alerts/{alert}/outcome", data=form | {"result": "arrested"}, follow_redirects=True)
        assert "already recorded" in r.text
        assert 'id="outcome-form"' not in c.get(f"/console/alerts/{alert}").text
    assert len(_events(site, "alert.outcome", alert)) == 1


# --- command line ------------------------------------------------------------------------
@pytest.fixture
def cli(site: Site, monkeypatch: pytest.MonkeyPatch) -> Iterator:
    """Runs ``openlfr alert ...`` on the site's store as a user (their credential in OPENLFR_TOKEN)."""
    from openlfr.cli import app
    from openlfr.config import get_settings

    monkeypatch.setenv("OPENLFR_DATABASE_URL", site.gov.engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("OPENLFR_DATA_DIR", str(site.gov.blob_store.root.parent))
    monkeypatch.setenv("OPENLFR_KEY", base64.b64encode(KEY).decode())
    get_settings.cache_clear()
    runner = CliRunner()

    def run(user: str, *args: str) -> tuple[int, str]:
        r = runner.invoke(app, ["alert", *args], env={"OPENLFR_TOKEN": site.tokens[user]})
        return r.exit_code, r.output

    yield run
    get_settings.cache_clear()


def test_cli_review_escalate_resolve_and_outcome(site: Site, cli) -> None:
    alert = site.raise_alert(announce=False)
    code, out = cli("reviewer", "list", "--json")
    assert code == 0 and alert in [a["id"] for a in json.loads(out)]
    code, out = cli("reviewer", "review", str(alert), "--decision", "escalate", "--note", "unsure")
    assert code == 0 and "now escalated" in out
    code, out = cli("reviewer", "resolve", "1", "--decision", "dismiss")
    assert code == 2 and out.strip().startswith("error:") and "needs role" in out
    code, out = cli("officer", "escalations", "--json")
    esc = next(e for e in json.loads(out) if e["alert"] == alert)
    assert esc["status"] == "open" and esc["opened_by"] == "reviewer"
    code, out = cli("officer", "resolve", str(esc["id"]), "--decision", "confirm", "--note", "him")
    assert code == 0 and "now confirmed once" in out
    code, out = cli("reviewer2", "review", str(alert), "--decision", "confirm")
    assert code == 0 and "now verified" in out
    code, out = cli("reviewer", "due", "--json")
    assert alert in [d["alert"] for d in json.loads(out)]
    code, out = cli("reviewer", "outcome", str(alert), "--result", "released", "--officer", "PC 1")
    assert code == 2 and len(out.strip().splitlines()) == 1 and "result" in out
    code, out = cli("reviewer", "outcome", str(alert), "--result", "not_found", "--officer", "PC 1")
    assert code == 0 and "outcome recorded (not found" in out
    code, out = cli("reviewer", "outcome", str(alert), "--result", "arrested", "--officer", "PC 1")
    assert code == 2 and "already recorded" in out
    code, out = cli("reviewer", "list", "--json")
    assert next(a for a in json.loads(out) if a["id"] == alert)["outcome"] == "not_found"
    assert len(_events(site, "alert.outcome.refused", alert)) == 2
