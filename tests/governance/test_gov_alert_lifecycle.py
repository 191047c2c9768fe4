"""One alert's life after review (openlfr.governance.alert_lifecycle and the retention sweep):
a legal hold beats retention; a dismissed alert is kept only until the next sweep; at the end
of retention an alert is pseudonymised (crop, key, details, notes gone; the counts stay);
one alert may be deleted early with a reason; refusals change nothing and are audited.

Alerts are made as the pipeline stores them (alert, sealed crop, details), with no video."""

from __future__ import annotations

import json
from datetime import date, timedelta

import cv2
import numpy as np
import pytest
from govkit import Estate
from sqlalchemy import func, select

from openlfr import audit
from openlfr.errors import InputError, NotFoundError
from openlfr.evaluation import deployment_report
from openlfr.governance import (
    PermissionDenied,
    Role,
    RuleViolation,
    alert_lifecycle,
    outcomes,
    retention,
    reviews,
)
from openlfr.pipeline.records import AlertRecord, store_alert
from openlfr.rights.keys import (
    ERASED,
    alert_ref,
    is_destroyed,
    media_bytes,
    open_fields,
    open_text,
)
from openlfr.store.models import (
    Alert,
    AlertDetail,
    AlertReview,
    AuditEvent,
    Deployment,
    LegalHold,
    MediaItem,
    WatchlistEntry,
)

CROP = cv2.imencode(".jpg", np.random.default_rng(5).integers(0, 255, (24, 24, 3), dtype=np.uint8))[1].tobytes()
DAYS = 31  # the default alert retention


@pytest.fixture
def site(estate: Estate) -> tuple[Estate, int]:
    """The estate with a live deployment (authorised by the force's officer), a second
    reviewer, and DPOs of the estate and the force; returns (estate, deployment id)."""
    dep, _, _ = estate.live_deployment()
    estate.reviewer2 = estate.user("reviewer-2", Role.REVIEWER)
    estate.estate_dpo = estate.user("estate-dpo", Role.DPO)
    estate.force_dpo = estate.user("force-dpo", Role.DPO, org="force")
    return estate, dep


def raise_alert(estate: Estate, dep: int, decision: str | None = None) -> int:
    """An alert of ``dep`` stored as the pipeline does (sealed crop, details), then dismissed
    (``"dismiss"``) or verified by two reviewers (``"confirm"``) with notes."""
    with estate.gov.transaction() as ctx:
        d = ctx.session.get(Deployment, dep)
        entry = ctx.session.execute(select(WatchlistEntry.id).where(WatchlistEntry.watchlist_id == d.watchlist_id)
                                    ).scalars().first()
        stored = store_alert(ctx, AlertRecord(
            deployment_id=dep, camera_id=d.cameras[0].id, entry_id=entry, label="Subject A", score=0.82,
            at=ctx.now(), track_id="t1", frame_index=3, video_time=0.1, box=[1, 2, 20, 20], quality=0.9, crop=CROP,
            snapshot_hash=d.snapshot_hash or "", pass_window_s=0), "test-worker")  # each its own pass
        assert stored is not None
        alert_id = stored.alert_id
    if decision == "dismiss":
        with estate.gov.transaction() as ctx:
            reviews.review(ctx, estate.reviewer, alert_id, "dismiss", "young male, not him")
    elif decision == "confirm":
        for who in (estate.reviewer, estate.reviewer2):
            with estate.gov.transaction() as ctx:
                reviews.review(ctx, who, alert_id, "confirm", "him")
    return alert_id


def sweep(estate: Estate) -> retention.SweepReport:
    with estate.gov.transaction() as ctx:
        return retention.sweep(ctx)


def state(estate: Estate, alert_id: int) -> dict:
    """What is left of an alert: its row's fields, crop (readable or not), key, details, notes."""
    with estate.gov.transaction() as ctx:
        a = ctx.session.get(Alert, alert_id)
        crop = ctx.session.execute(select(MediaItem).where(MediaItem.alert_id == alert_id)).scalars().one()
        return {"deleted": a.deleted_at is not None, "pseudonymised": a.pseudonymised_at is not None,
                "reason": a.deleted_reason, "entry": a.entry_id, "outcome": a.review_outcome,
                "crop": media_bytes(ctx, crop) if crop.blob else None, "crop_blob": crop.blob,
                "key_destroyed": is_destroyed(ctx, alert_ref(alert_id)),
                "details": ctx.session.get(AlertDetail, alert_id) is not None,
                "notes": [open_text(ctx, r.note) for r in ctx.session.execute(
                    select(AlertReview).where(AlertReview.alert_id == alert_id)).scalars()]}


def events(estate: Estate, action: str, object_id: object | None = None) -> list[AuditEvent]:
    with estate.gov.sessions() as s:
        q = select(AuditEvent).where(AuditEvent.action == action)
        if object_id is not None:
            q = q.where(AuditEvent.object_id == str(object_id))
        return list(s.execute(q.order_by(AuditEvent.seq)).scalars())


def hold(estate: Estate, actor, alert_id: int, days: int = 60, proceeding: str = "R v Example (Crown Court)") -> int:
    with estate.gov.transaction() as ctx:
        return alert_lifecycle.place_hold(ctx, actor, alert_id, proceeding, ctx.now().date() + timedelta(days=days)).id


def report(estate: Estate, dep: int) -> dict:
    with estate.gov.sessions() as s:
        r = deployment_report.for_deployment(s, dep)
        return {"alerts": r.alerts, "true": r.verified_true, "false": r.verified_false, "unsure": r.unsure,
                "unreviewed": r.unreviewed, "outcomes": r.outcomes}


def chain_ok(estate: Estate) -> bool:
    with estate.gov.sessions() as s:
        return audit.verify(s).ok


# --- rule: a legal hold beats retention -------------------------------------------------------
def test_a_legal_hold_beats_retention_until_released(site: tuple[Estate, int]) -> None:
    estate, dep = site
    held, free = raise_alert(estate, dep, "confirm"), raise_alert(estate, dep, "confirm")
    hold_id = hold(estate, estate.admin, held, days=DAYS + 30)
    estate.clock.advance(days=DAYS, hours=1)  # both alerts' retention is over
    rep = sweep(estate)
    assert rep.alerts_pseudonymised == [free] and rep.alerts_held == [held]
    kept = state(estate, held)
    assert kept["crop"] == CROP and not kept["pseudonymised"] and kept["details"] and not kept["key_destroyed"]
    assert state(estate, free)["pseudonymised"]
    with estate.gov.transaction() as ctx:
        assert alert_lifecycle.alert_retain_until(ctx, ctx.session.get(Alert, held)) is None  # held: no end
    with estate.gov.transaction() as ctx:
        alert_lifecycle.release_hold(ctx, estate.admin, hold_id, "the case is closed")
    assert sweep(estate).alerts_pseudonymised == [held]
    gone = state(estate, held)
    assert gone["pseudonymised"] and gone["crop_blob"] is None and gone["key_destroyed"]
    (event,) = events(estate, "alert.hold_release", hold_id)
    assert json.loads(event.details)["reason"] == "the case is closed" and chain_ok(estate)


def test_a_hold_past_its_review_date_is_listed_as_due(site: tuple[Estate, int]) -> None:
    estate, dep = site
    alert_id = raise_alert(estate, dep)
    hold_id = hold(estate, estate.force_dpo, alert_id, days=10)  # the authorising force's DPO
    with estate.gov.transaction() as ctx:
        (view,) = alert_lifecycle.holds(ctx, estate.admin)
        assert view.id == hold_id and not view.due and alert_lifecycle.holds(ctx, estate.admin, due_only=True) == []
    estate.clock.advance(days=10)
    assert sweep(estate).holds_due_review == [hold_id]
    with estate.gov.transaction() as ctx:
        assert [h.id for h in alert_lifecycle.holds(ctx, estate.estate_dpo, due_only=True)] == [hold_id]
    # the proceeding may name a person: sealed under the alert's key in the audit log
    (event,) = events(estate, "alert.hold", alert_id)
    details = json.loads(event.details)
    assert "proceeding" not in details and "Example" not in event.details
    with estate.gov.transaction() as ctx:
        assert open_fields(ctx, details["personal"]) == {"proceeding": "R v Example (Crown Court)"}


def test_only_the_organisation_that_placed_a_hold_may_release_it(site: tuple[Estate, int]) -> None:
    """Rule: the force's hold for its proceeding cannot be lifted by the estate (which could then
    delete what the force wanted kept), nor the estate's by the force."""
    estate, dep = site
    alert_id = raise_alert(estate, dep, "confirm")
    forces = hold(estate, estate.force_dpo, alert_id)
    estates = hold(estate, estate.admin, alert_id, days=30, proceeding="civil claim 2026-77")
    for who, hold_id in ((estate.admin, forces), (estate.estate_dpo, forces), (estate.force_dpo, estates)):
        with pytest.raises(PermissionDenied, match="only that organisation may release it"):
            with estate.gov.transaction() as ctx:
                alert_lifecycle.release_hold(ctx, who, hold_id, "we want it gone")
    assert len(events(estate, "alert.hold_release.refused")) == 3
    with pytest.raises(RuleViolation, match="legal hold"):
        with estate.gov.transaction() as ctx:
            alert_lifecycle.delete_alert(ctx, estate.admin, alert_id, "tidying up")
    with estate.gov.transaction() as ctx:
        alert_lifecycle.release_hold(ctx, estate.estate_dpo, estates, "our proceeding is over")
        alert_lifecycle.release_hold(ctx, estate.force_dpo, forces, "the force's case is closed")
    assert not state(estate, alert_id)["pseudonymised"] and chain_ok(estate)


# --- rule: dismissed alerts get a shorter retention -------------------------------------------
def test_a_dismissed_alert_is_pseudonymised_at_the_next_sweep(site: tuple[Estate, int]) -> None:
    estate, dep = site
    dismissed, confirmed = raise_alert(estate, dep, "dismiss"), raise_alert(estate, dep, "confirm")
    with estate.gov.transaction() as ctx:
        until = alert_lifecycle.alert_retain_until(ctx, ctx.session.get(Alert, dismissed))
        assert until == ctx.now()  # default 0 h after the review
    estate.clock.advance(minutes=5)
    rep = sweep(estate)
    assert rep.alerts_pseudonymised == [dismissed]
    assert state(estate, dismissed)["pseudonymised"] and state(estate, dismissed)["crop_blob"] is None
    assert not state(estate, confirmed)["pseudonymised"] and state(estate, confirmed)["crop"] == CROP
    (event,) = events(estate, "alert.pseudonymise", dismissed)
    assert "dismissed" in json.loads(event.details)["reason"]
    estate.clock.advance(days=DAYS - 1)
    assert sweep(estate).alerts_pseudonymised == []  # a confirmed one keeps its 31 days
    estate.clock.advance(days=1)
    assert sweep(estate).alerts_pseudonymised == [confirmed]


def test_the_dismissed_retention_is_configurable(site: tuple[Estate, int]) -> None:
    estate, dep = site
    estate.gov.policy = estate.gov.policy.model_copy(update={"dismissed_alert_retention_hours": 48})
    dismissed = raise_alert(estate, dep, "dismiss")
    estate.clock.advance(hours=47)
    assert sweep(estate).alerts_pseudonymised == []
    estate.clock.advance(hours=1)
    assert sweep(estate).alerts_pseudonymised == [dismissed]


# --- rule: pseudonymisation at the end of retention -------------------------------------------
def test_retention_end_pseudonymises_and_keeps_the_counts(site: tuple[Estate, int]) -> None:
    estate, dep = site
    alert_id = raise_alert(estate, dep, "confirm")
    with estate.gov.transaction() as ctx:
        outcomes.record_outcome(ctx, estate.officer, alert_id, "arrested", "arrested on the warrant", "PC 4411")
    before = report(estate, dep)
    kept = state(estate, alert_id)
    assert kept["crop"] == CROP and kept["details"] and kept["entry"] is not None and kept["notes"] == ["him", "him"]
    estate.clock.advance(days=DAYS, seconds=1)
    rep = sweep(estate)
    assert rep.alerts_pseudonymised == [alert_id] and "1 alerts pseudonymised" in rep.summary()
    gone = state(estate, alert_id)
    assert gone["pseudonymised"] and gone["deleted"] and gone["crop_blob"] is None and gone["key_destroyed"]
    assert not gone["details"] and gone["entry"] is None and gone["notes"] == ["", ""]
    assert gone["outcome"] == "true" and report(estate, dep) == before  # the counts stay
    (record,) = events(estate, "alert.record", alert_id)
    with estate.gov.transaction() as ctx:
        row = ctx.session.get(Alert, alert_id)
        assert row.at.minute == 0 and row.at.second == 0  # only the hour is kept
        out = outcomes.outcome_of(ctx.session, alert_id)
        assert out.result == "arrested" and open_text(ctx, out.note) in ("", ERASED)
        assert open_text(ctx, out.officer) in ("", ERASED)
        # the alert.record event's sealed entry and score are unreadable now
        assert open_fields(ctx, json.loads(record.details)["personal"]) is None
    assert sweep(estate).alerts_pseudonymised == []  # once
    assert chain_ok(estate)


# --- single deletion --------------------------------------------------------------------------
def test_one_alert_deleted_early_with_a_reason(site: tuple[Estate, int]) -> None:
    estate, dep = site
    alert_id, other = raise_alert(estate, dep, "confirm"), raise_alert(estate, dep)
    before = report(estate, dep)
    with estate.gov.transaction() as ctx:
        wiped = alert_lifecycle.delete_alert(ctx, estate.estate_dpo, alert_id, "recorded in error")
    assert wiped.key_destroyed and len(wiped.media_deleted) == 1 and wiped.details_deleted
    gone = state(estate, alert_id)
    assert gone["pseudonymised"] and gone["reason"] == "recorded in error" and gone["crop_blob"] is None
    assert state(estate, other)["crop"] == CROP and report(estate, dep) == before
    (event,) = events(estate, "alert.delete", alert_id)
    assert event.actor == "estate-dpo" and json.loads(event.details)["reason"] == "recorded in error"
    with pytest.raises(RuleViolation, match="already deleted"), estate.gov.transaction() as ctx:
        alert_lifecycle.delete_alert(ctx, estate.admin, alert_id, "again")
    with pytest.raises(RuleViolation, match="nothing left to hold"), estate.gov.transaction() as ctx:
        alert_lifecycle.place_hold(ctx, estate.admin, alert_id, "R v X", ctx.now().date() + timedelta(days=5))
    # the force that authorised the deployment: its DPO may delete, its officer may not
    with estate.gov.transaction() as ctx:
        alert_lifecycle.delete_alert(ctx, estate.force_dpo, other, "subject's erasure request")
    assert chain_ok(estate)


# --- bad input: nothing changed, the refusal audited -------------------------------------------
def test_deletion_and_erasure_of_a_held_alert_are_refused(site: tuple[Estate, int]) -> None:
    from openlfr.rights.erasure import wipe_alert

    estate, dep = site
    alert_id = raise_alert(estate, dep, "dismiss")
    hold_id = hold(estate, estate.admin, alert_id)
    with pytest.raises(RuleViolation, match=f"under legal hold {hold_id}.*cannot be deleted"), \
            estate.gov.transaction() as ctx:
        alert_lifecycle.delete_alert(ctx, estate.admin, alert_id, "no longer needed")
    with pytest.raises(RuleViolation, match="cannot be erased"), estate.gov.transaction() as ctx:
        wipe_alert(ctx, ctx.session.get(Alert, alert_id), actor="test", action="alert.erase", reason="request 1")
    kept = state(estate, alert_id)
    assert kept["crop"] == CROP and not kept["deleted"] and kept["details"] and kept["notes"] == ["young male, not him"]
    (refused,) = events(estate, "alert.delete.refused", alert_id)
    assert refused.actor == "admin" and "legal hold" in json.loads(refused.details)["reason"]
    estate.clock.advance(hours=1)
    assert sweep(estate).alerts_held == [alert_id]  # dismissed, yet held: kept
    assert state(estate, alert_id)["crop"] == CROP


@pytest.mark.parametrize("case", ["no_reason", "past_review_date", "no_proceeding", "bad_date", "no_release_reason"])
def test_bad_input_is_refused_audited_and_changes_nothing(site: tuple[Estate, int], case: str) -> None:
    estate, dep = site
    alert_id = raise_alert(estate, dep)
    hold_id = hold(estate, estate.admin, alert_id) if case == "no_release_reason" else None
    today = estate.clock.now.date()
    calls = {
        "no_reason": ("alert.delete", InputError, "reason",
                      lambda ctx: alert_lifecycle.delete_alert(ctx, estate.admin, alert_id, "  ")),
        "past_review_date": ("alert.hold", RuleViolation, "must be in the future",
                             lambda ctx: alert_lifecycle.place_hold(ctx, estate.admin, alert_id, "R v X", today)),
        "no_proceeding": ("alert.hold", InputError, "proceeding",
                          lambda ctx: alert_lifecycle.place_hold(ctx, estate.admin, alert_id, "",
                                                                 today + timedelta(days=3))),
        "bad_date": ("alert.hold", InputError, "review_date",
                     lambda ctx: alert_lifecycle.place_hold(ctx, estate.admin, alert_id, "R v X", "next week")),
        "no_release_reason": ("alert.hold_release", InputError, "reason",
                              lambda ctx: alert_lifecycle.release_hold(ctx, estate.admin, hold_id, "")),
    }
    action, error, match, call = calls[case]
    with estate.gov.sessions() as s:
        holds_before = s.execute(select(func.count()).select_from(LegalHold)
                                 .where(LegalHold.released_at.is_(None))).scalar_one()
    with pytest.raises(error, match=match), estate.gov.transaction() as ctx:
        call(ctx)
    assert len(events(estate, f"{action}.refused")) == 1
    with estate.gov.sessions() as s:
        assert s.execute(select(func.count()).select_from(LegalHold)
                         .where(LegalHold.released_at.is_(None))).scalar_one() == holds_before
    assert not state(estate, alert_id)["deleted"]


def test_unknown_ids_and_wrong_roles_are_refused(site: tuple[Estate, int]) -> None:
    estate, dep = site
    alert_id = raise_alert(estate, dep)
    later = date(2031, 1, 1)
    with pytest.raises(NotFoundError, match="alert 999999 does not exist"), estate.gov.transaction() as ctx:
        alert_lifecycle.delete_alert(ctx, estate.admin, 999999, "gone")
    with pytest.raises(NotFoundError, match="legal hold 999999"), estate.gov.transaction() as ctx:
        alert_lifecycle.release_hold(ctx, estate.admin, 999999, "done")
    with pytest.raises(NotFoundError), estate.gov.transaction() as ctx:
        alert_lifecycle.place_hold(ctx, estate.admin, 999999, "R v X", later)
    # a reviewer, an authorising officer and an oversight auditor are not keepers
    for who in (estate.reviewer, estate.officer, estate.auditor):
        with pytest.raises(PermissionDenied, match="needs role"), estate.gov.transaction() as ctx:
            alert_lifecycle.delete_alert(ctx, who, alert_id, "mine")
    # a DPO or operator admin of another party is not a keeper of this deployment's alerts
    from openlfr.governance import OrgKind

    other = estate.organisation("Other Estate", OrgKind.SITE_OPERATOR)
    kent = estate.organisation("Kent Police", OrgKind.POLICE_FORCE)
    strangers = [estate.user("other-ops", Role.OPERATOR_ADMIN, by=other), estate.user("other-dpo", Role.DPO, by=other),
                 estate.user("kent-dpo", Role.DPO, by=kent)]
    for who in strangers:
        with pytest.raises(PermissionDenied, match="not a keeper"), estate.gov.transaction() as ctx:
            alert_lifecycle.place_hold(ctx, who, alert_id, "R v X", later)
        with estate.gov.transaction() as ctx:
            assert alert_lifecycle.holds(ctx, who) == []
    hold_id = hold(estate, estate.admin, alert_id)
    with pytest.raises(PermissionDenied, match="not a keeper"), estate.gov.transaction() as ctx:
        alert_lifecycle.release_hold(ctx, strangers[2], hold_id, "not ours")
    with estate.gov.transaction() as ctx:
        alert_lifecycle.release_hold(ctx, estate.admin, hold_id, "done")
    with pytest.raises(RuleViolation, match="already released"), estate.gov.transaction() as ctx:
        alert_lifecycle.release_hold(ctx, estate.admin, hold_id, "done again")
    assert not state(estate, alert_id)["deleted"]
    assert len(events(estate, "alert.delete.refused")) == 4 and len(events(estate, "alert.hold.refused")) == 4
    assert len(events(estate, "alert.hold_release.refused")) == 3 and chain_ok(estate)
