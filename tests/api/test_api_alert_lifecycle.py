"""One alert's early deletion and legal holds through the HTTP API, the console forms and the
command line (credentials, not names); and the sweep that respects them.

The rules themselves, each checked by disabling it, are tested at the Python door in
tests/governance/test_gov_alert_lifecycle.py; here each door is shown to reach them: a hold
beats retention and is released, a dismissed alert is pseudonymised at the next sweep, one
alert is deleted with a reason, a held alert's deletion is refused (nothing changed, the
refusal audited), unknown ids and wrong roles are refused.

This module runs on a store of its own (the retention sweep acts on every alert in a store).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest
from apikit import (
    KEY,
    PASSWORD,
    Site,
    actor,
    bearer_tokens,
    build_store,
    console_login,
    make_gov,
    organisation,
    serve,
)
from sqlalchemy import select
from typer.testing import CliRunner

from openlfr import audit
from openlfr.api import ApiSettings, create_app
from openlfr.governance import OrgKind, Role, retention, users
from openlfr.governance.schemas import UserCreate
from openlfr.store.models import Alert, AuditEvent, LegalHold, MediaItem

FUTURE = (date.today() + timedelta(days=90)).isoformat()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A server over a store of its own, with DPOs of the estate and of the force, and an
    operator admin of another site operator ("quay-ops")."""
    root = tmp_path_factory.mktemp("lifecycle-store")
    gov = make_gov(root)
    dep, cam, entries, ag, snap = build_store(gov)
    estate_admin, met_admin = actor(gov, "estate-admin"), actor(gov, "met-admin")
    with gov.transaction() as ctx:
        users.create_user(ctx, estate_admin, UserCreate(name="estate-dpo", role=Role.DPO), PASSWORD)
        users.create_user(ctx, met_admin, UserCreate(name="force-dpo", role=Role.DPO), PASSWORD)
    organisation(gov, "Quayside Ltd", OrgKind.SITE_OPERATOR, "quay-admin",
                 staff={"quay-ops": (Role.OPERATOR_ADMIN, None)})
    app = create_app(gov, settings=ApiSettings(max_upload_bytes=200_000, login_attempts=1000))
    with serve(app) as url:
        s = Site(url, gov, app, dep, cam, entries, ag, snap, bearer_tokens(url))
        for name in ("estate-dpo", "force-dpo", "quay-ops"):
            s.tokens[name] = s.login(name)
        yield s
    gov.close()


def _events(site: Site, action: str, object_id: object | None = None) -> list[AuditEvent]:
    with site.gov.sessions() as s:
        q = select(AuditEvent).where(AuditEvent.action == action)
        if object_id is not None:
            q = q.where(AuditEvent.object_id == str(object_id))
        return list(s.execute(q.order_by(AuditEvent.seq)).scalars())


def _state(site: Site, alert_id: int) -> dict:
    with site.gov.transaction() as ctx:
        a = ctx.session.get(Alert, alert_id)
        crop = ctx.session.execute(select(MediaItem).where(MediaItem.alert_id == alert_id)).scalars().one()
        return {"pseudonymised": a.pseudonymised_at is not None, "reason": a.deleted_reason,
                "crop": crop.blob is not None and site.gov.blob_store.exists(crop.blob)}


def _expire(site: Site, alert_id: int) -> None:
    """Move the alert's retention deadline (and its crop's) into the past."""
    past = datetime.now(UTC) - timedelta(seconds=1)
    with site.gov.transaction() as ctx:
        ctx.session.get(Alert, alert_id).retain_until = past
        for m in ctx.session.execute(select(MediaItem).where(MediaItem.alert_id == alert_id)).scalars():
            m.retain_until = past


def _sweep(site: Site) -> retention.SweepReport:
    with site.gov.transaction() as ctx:
        return retention.sweep(ctx)


def _chain_ok(site: Site) -> bool:
    with site.gov.sessions() as s:
        return audit.verify(s).ok


# --- HTTP API ------------------------------------------------------------------------------
def test_api_hold_beats_retention_then_release(site: Site) -> None:
    alert = site.raise_alert(announce=False)
    with site.client("admin") as c:
        r = c.post(f"/api/alerts/{alert}/holds", json={"proceeding": "R v Example", "review_date": FUTURE})
        assert r.status_code == 201, r.text
        hold = r.json()
        assert hold["alert_id"] == alert and hold["placed_by"] == "admin" and not hold["due"]
        assert hold["id"] in [h["id"] for h in c.get("/api/holds").json()]
        assert c.get("/api/holds", params={"due": "true"}).json() == []
    with site.client("force-dpo") as c:  # the authorising force's DPO sees it too
        assert hold["id"] in [h["id"] for h in c.get("/api/holds").json()]
    with site.client("quay-ops") as c:  # another site operator's admin does not
        assert c.get("/api/holds").json() == []
    _expire(site, alert)
    assert alert in _sweep(site).alerts_held and _state(site, alert)["crop"]
    with site.client("estate-dpo") as c:  # a held alert cannot be deleted: 409, nothing changed, audited
        r = c.post(f"/api/alerts/{alert}/delete", json={"reason": "no longer needed"})
        assert r.status_code == 409 and "legal hold" in r.json()["detail"]
    assert _state(site, alert)["crop"] and len(_events(site, "alert.delete.refused", alert)) == 1
    with site.client("force-dpo") as c:  # the estate's hold is not the force's to lift: 403, audited
        r = c.post(f"/api/holds/{hold['id']}/release", json={"reason": "we are done"})
        assert r.status_code == 403 and "only that organisation may release it" in r.json()["detail"]
    assert _events(site, "alert.hold_release.refused", hold["id"])
    with site.client("admin") as c:
        r = c.post(f"/api/holds/{hold['id']}/release", json={"reason": "case closed"})
        assert r.status_code == 200 and r.json()["released_at"] and r.json()["release_reason"] == "case closed"
        assert c.post(f"/api/holds/{hold['id']}/release", json={"reason": "again"}).status_code == 409
    assert alert in _sweep(site).alerts_pseudonymised
    assert _state(site, alert) == {"pseudonymised": True, "reason": "retention period over", "crop": False}
    assert _chain_ok(site)


def test_api_dismissed_alert_is_pseudonymised_at_the_next_sweep(site: Site) -> None:
    dismissed, open_alert = site.raise_alert(announce=False), site.raise_alert(announce=False)
    with site.client("reviewer") as c:
        assert c.post(f"/api/alerts/{dismissed}/review", json={"decision": "dismiss", "note": "not him"}
                      ).status_code == 200
    report = _sweep(site)
    assert dismissed in report.alerts_pseudonymised and open_alert not in report.alerts_pseudonymised
    with site.client("reviewer") as c:  # gone from the queue; its crop answers 410
        assert dismissed not in [a["id"] for a in c.get("/api/alerts").json()]
        assert c.get(f"/api/alerts/{dismissed}/crop").status_code == 410
        assert c.get(f"/api/alerts/{open_alert}/crop").status_code == 200


def test_api_delete_one_alert_and_refusals(site: Site) -> None:
    alert = site.raise_alert(announce=False)
    with site.client("reviewer") as c:  # wrong role: refused at the door
        assert c.post(f"/api/alerts/{alert}/delete", json={"reason": "x"}).status_code == 403
    with site.client("quay-ops") as c:  # right role, another party: refused by the service, audited
        r = c.post(f"/api/alerts/{alert}/delete", json={"reason": "x"})
        assert r.status_code == 403 and "not a keeper" in r.json()["detail"]
    with site.client("admin") as c:
        assert c.post(f"/api/alerts/{alert}/delete", json={"reason": ""}).status_code == 422
        assert c.post(f"/api/alerts/{alert}/holds", json={"proceeding": "R v X", "review_date": "2020-01-01"}
                      ).status_code == 409
        r = c.post("/api/alerts/999999/delete", json={"reason": "x"})
        assert r.status_code == 404 and "alert 999999 does not exist" in r.json()["detail"]
        assert c.post("/api/holds/999999/release", json={"reason": "x"}).status_code == 404
        assert not _state(site, alert)["pseudonymised"]
        r = c.post(f"/api/alerts/{alert}/delete", json={"reason": "raised in error during a test"})
        assert r.status_code == 200 and r.json()["key_destroyed"] and len(r.json()["media_deleted"]) == 1
    assert _state(site, alert) == {"pseudonymised": True, "reason": "raised in error during a test", "crop": False}
    (event,) = _events(site, "alert.delete", alert)
    assert event.actor == "admin" and json.loads(event.details)["reason"] == "raised in error during a test"
    assert len(_events(site, "alert.delete.refused", alert)) == 1  # quay-ops's
    assert _events(site, "alert.delete.refused", 999999) and _events(site, "alert.hold.refused", alert)


# --- console -------------------------------------------------------------------------------
@contextmanager
def browser(site: Site, name: str) -> Iterator[tuple[httpx.Client, str]]:
    with httpx.Client(base_url=site.url, timeout=10) as c:
        assert console_login(c, name, PASSWORD).status_code == 303
        yield c, c.get("/api/auth/me").json()["csrf_token"]


def test_console_hold_release_and_delete(site: Site) -> None:
    alert = site.raise_alert(announce=False)
    with browser(site, "estate-dpo") as (c, csrf):
        page = c.get(f"/console/alerts/{alert}").text
        assert 'id="hold-form"' in page and 'id="delete-form"' in page and "Kept until" in page
        r = c.post(f"/console/alerts/{alert}/holds", data={"proceeding": "R v Console", "review_date": FUTURE},
                   follow_redirects=True)  # no CSRF token: refused
        assert r.status_code == 403 and "CSRF" in r.text
        r = c.post(f"/console/alerts/{alert}/holds", data={"proceeding": "R v Console", "review_date": "2001-01-01",
                                                         "csrf_token": csrf}, follow_redirects=True)
        assert "must be in the future" in r.text and 'role="alert"' in r.text
        r = c.post(f"/console/alerts/{alert}/holds", data={"proceeding": "R v Console", "review_date": FUTURE,
                                                         "csrf_token": csrf}, follow_redirects=True)
        assert f"alert {alert} held" in r.text and "R v Console" in r.text and "under legal hold" in r.text
        r = c.post(f"/console/alerts/{alert}/delete", data={"reason": "not needed", "csrf_token": csrf},
                   follow_redirects=True)
        assert "cannot be deleted until the hold is released" in r.text and 'role="alert"' in r.text
        assert not _state(site, alert)["pseudonymised"]
        with site.gov.sessions() as s:
            hold_id = s.execute(select(LegalHold.id).where(LegalHold.alert_id == alert)).scalar_one()
        holds_page = c.get("/console/holds").text
        assert f'data-hold="{hold_id}"' in holds_page and "R v Console" in holds_page
        assert c.get("/console/holds", params={"alert": alert}).headers["location"] == f"/console/alerts/{alert}"
        with browser(site, "force-dpo") as (fc, fcsrf):  # only the estate, which placed it, may release it
            r = fc.post(f"/console/holds/{hold_id}/release", data={"reason": "done", "alert_id": str(alert),
                                                                    "csrf_token": fcsrf}, follow_redirects=True)
            assert "only that organisation may release it" in r.text and 'role="alert"' in r.text
        r = c.post(f"/console/holds/{hold_id}/release", data={"reason": "", "alert_id": str(alert), "csrf_token": csrf},
                   follow_redirects=True)
        assert "invalid input: reason" in r.text and 'role="alert"' in r.text  # refused: a reason is needed
        r = c.post(f"/console/holds/{hold_id}/release", data={"reason": "case closed", "alert_id": str(alert),
                                                              "csrf_token": csrf}, follow_redirects=True)
        assert f"hold {hold_id} released" in r.text
        r = c.post(f"/console/alerts/{alert}/delete", data={"reason": "", "csrf_token": csrf}, follow_redirects=True)
        assert "invalid input: reason" in r.text and not _state(site, alert)["pseudonymised"]
        r = c.post(f"/console/alerts/{alert}/delete", data={"reason": "asked by the subject", "csrf_token": csrf},
                   follow_redirects=True)
        assert f"alert {alert} deleted" in r.text and 'id="deleted"' in r.text and "asked by the subject" in r.text
        assert 'id="delete-form"' not in r.text
    assert _state(site, alert)["pseudonymised"]
    assert len(_events(site, "alert.delete.refused", alert)) == 2
    assert len(_events(site, "alert.hold.refused", alert)) == 1
    with browser(site, "reviewer") as (c, csrf):  # a reviewer's alert page has no keeper forms; the form is refused
        assert 'id="delete-form"' not in c.get(f"/console/alerts/{site.raise_alert(announce=False)}").text
        r = c.post(f"/console/alerts/{alert}/delete", data={"reason": "x", "csrf_token": csrf})
        assert r.status_code == 403
    with browser(site, "quay-ops") as (c, csrf):  # another party's admin: refused in the page
        r = c.get(f"/console/alerts/{alert}")
        assert r.status_code == 403 and "not a keeper" in r.text


# --- command line --------------------------------------------------------------------------
@pytest.fixture
def cli(site: Site, monkeypatch: pytest.MonkeyPatch) -> Iterator:
    """Runs ``openlfr alert ...`` on the site's store with a user's credential (OPENLFR_TOKEN)."""
    from openlfr.cli import app
    from openlfr.config import get_settings

    monkeypatch.setenv("OPENLFR_DATABASE_URL", site.gov.engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("OPENLFR_DATA_DIR", str(site.gov.blob_store.root.parent))
    monkeypatch.setenv("OPENLFR_KEY", base64.b64encode(KEY).decode())
    get_settings.cache_clear()
    runner = CliRunner()

    def run(user: str | None, *args: str) -> tuple[int, str]:
        env = {"OPENLFR_TOKEN": site.tokens[user]} if user else {"OPENLFR_TOKEN": ""}
        r = runner.invoke(app, ["alert", *args], env=env)
        return r.exit_code, r.output

    yield run
    get_settings.cache_clear()


def test_cli_hold_holds_release_and_delete(site: Site, cli) -> None:
    alert = site.raise_alert(announce=False)
    code, out = cli("force-dpo", "hold", str(alert), "--proceeding", "R v Cli", "--review-date", FUTURE)
    assert code == 0 and f"alert {alert}: held" in out, out
    code, out = cli("admin", "holds", "--json")
    (row,) = [h for h in json.loads(out) if h["alert"] == alert]
    assert row["proceeding"] == "R v Cli" and row["placed_by"] == "force-dpo" and row["due"] == ""
    code, out = cli("admin", "holds", "--due")
    assert code == 0 and f"alert={alert}" not in out
    code, out = cli("admin", "delete", str(alert), "--reason", "not needed")
    assert code == 2 and out.strip().startswith("error:") and "cannot be deleted until the hold is released" in out
    assert len(out.strip().splitlines()) == 1 and not _state(site, alert)["pseudonymised"]
    code, out = cli("admin", "release", str(row["id"]), "--reason", "case closed")
    assert code == 2 and "only that organisation may release it" in out  # the force's hold, not the estate's
    code, out = cli("force-dpo", "release", str(row["id"]))
    assert code == 2 and "invalid input: reason" in out  # a reason is required
    code, out = cli("reviewer", "release", str(row["id"]), "--reason", "done")
    assert code == 2 and "needs role" in out
    code, out = cli("force-dpo", "release", str(row["id"]), "--reason", "case closed")
    assert code == 0 and f"hold {row['id']} released" in out
    code, out = cli("admin", "hold", str(alert), "--proceeding", "R v Cli", "--review-date", "yesterday")
    assert code == 2 and "review_date" in out
    code, out = cli("admin", "delete", "999999", "--reason", "x")
    assert code == 2 and "alert 999999 does not exist" in out
    code, out = cli("admin", "delete", str(alert), "--reason", "asked by the subject")
    assert code == 0 and f"alert {alert}: deleted" in out
    assert _state(site, alert) == {"pseudonymised": True, "reason": "asked by the subject", "crop": False}
    code, out = cli(None, "holds")  # no credential: refused
    assert code == 2 and "log in" in out
    assert [e.actor for e in _events(site, "alert.delete.refused", alert)] == ["admin"]
    assert _chain_ok(site)


def test_every_new_option_has_help() -> None:
    from openlfr.cli.alerts import alert_app

    runner = CliRunner()
    for command in ("delete", "hold", "release", "holds"):
        out = runner.invoke(alert_app, [command, "--help"], terminal_width=200).output
        for option in {"delete": ["--reason"], "hold": ["--proceeding", "--review-date"], "release": ["--reason"],
                       "holds": ["--due", "--json"]}[command]:
            line = next(ln for ln in out.splitlines() if option in ln)
            assert len(line.split(option, 1)[1].strip()) > 10, f"{command} {option} has no help: {line!r}"
