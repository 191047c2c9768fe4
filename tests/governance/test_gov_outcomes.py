"""Alert outcomes and escalations at the Python door (the services themselves).

Each test names the rule it pins; each rule was checked by disabling it in
openlfr.governance.outcomes / reviews / retention and seeing the test fail. The HTTP, console
and command-line doors are tested in tests/api/test_api_outcomes.py.
"""

from __future__ import annotations

import json

import pytest
from govkit import Estate, token_for
from sqlalchemy import func, select

from openlfr.errors import InputError
from openlfr.governance import (
    OrgKind,
    PermissionDenied,
    Role,
    RuleViolation,
    outcomes,
    retention,
    reviews,
    users,
)
from openlfr.rights.keys import open_fields, open_text
from openlfr.store.models import Alert, AlertOutcome, AuditEvent, Deployment, Escalation, Organisation, User


@pytest.fixture
def db_url(sqlite_url: str) -> str:
    """Rule checks in Python; the alert row lock they share with reviews:
    SQLite only (the PostgreSQL paths they take are tested on both databases in
    test_gov_review_race.py)."""
    return sqlite_url


def _events(estate: Estate, action: str) -> list[AuditEvent]:
    with estate.gov.sessions() as session:
        return list(session.execute(select(AuditEvent).where(AuditEvent.action == action)
                                    .order_by(AuditEvent.seq)).scalars())


def _alert(estate: Estate, dep: int | None = None, **fields: object) -> tuple[int, int]:
    """(deployment id, alert id) of a fresh alert on live deployment ``dep`` (a new one if
    ``None``), with ``fields`` set on the deployment."""
    if dep is None:
        dep, _, _ = estate.live_deployment()
    with estate.gov.transaction() as ctx:
        row = ctx.session.get(Deployment, dep)
        for name, value in fields.items():
            setattr(row, name, value)
        return dep, retention.record_alert(ctx, dep, row.cameras[0].id, 0.9, ctx.now()).id


def _review(estate: Estate, actor, alert: int, decision: str, note: str = "note") -> None:
    with estate.gov.transaction() as ctx:
        reviews.review(ctx, actor, alert, decision, note)


def _verified(estate: Estate) -> tuple[int, int]:
    dep, alert = _alert(estate)
    _review(estate, estate.reviewer, alert, "confirm")
    _review(estate, estate.user("reviewer-2", Role.REVIEWER), alert, "confirm")
    return dep, alert


def _outcome(estate: Estate, actor, alert: int, result: str = "arrested", officer: str = "PC 4411") -> None:
    with estate.gov.transaction() as ctx:
        outcomes.record_outcome(ctx, actor, alert, result, "arrested on the warrant", officer)


def _outcome_rows(estate: Estate) -> int:
    with estate.gov.sessions() as session:
        return session.execute(select(func.count()).select_from(AlertOutcome)).scalar_one()


def _state(estate: Estate, alert: int) -> tuple[str | None, str]:
    with estate.gov.transaction() as ctx:
        row = ctx.session.get(Alert, alert)
        return row.review_outcome, reviews.status(row, reviews.reviews_of(ctx, alert))


# --- outcomes -----------------------------------------------------------------------------
def test_a_verified_alert_is_due_an_outcome_until_one_is_recorded(estate: Estate) -> None:
    dep, alert = _verified(estate)
    with estate.gov.transaction() as ctx:
        assert outcomes.outcome_due(ctx.session, ctx.session.get(Alert, alert))
        assert [d.alert_id for d in outcomes.outcomes_due(ctx, estate.reviewer)] == [alert]
        assert [d.alert_id for d in outcomes.outcomes_due(ctx, estate.officer)] == [alert]  # the authorising force
        counts = outcomes.outcome_counts(ctx.session, dep)
    assert counts["not recorded"] == 1 and sum(counts.values()) == 1
    _outcome(estate, estate.officer, alert)
    with estate.gov.transaction() as ctx:
        assert not outcomes.outcome_due(ctx.session, ctx.session.get(Alert, alert))
        assert outcomes.outcomes_due(ctx, estate.reviewer) == []
        counts = outcomes.outcome_counts(ctx.session, dep)
    assert counts == {"spoken_to": 0, "arrested": 1, "no_further_action": 0, "not_found": 0,
                      "mistaken_identity": 0, "not recorded": 0}
    (event,) = _events(estate, "alert.outcome")
    assert event.actor == "officer" and event.object_id == str(alert)
    assert json.loads(event.details)["result"] == "arrested" and "PC 4411" not in event.details  # sealed
    with estate.gov.transaction() as ctx:
        assert open_fields(ctx, json.loads(event.details)["personal"]) == {"officer": "PC 4411",
                                                                           "note": "arrested on the warrant"}


def test_only_a_verified_alert_gets_an_outcome(estate: Estate) -> None:
    _, pending = _alert(estate)
    with pytest.raises(RuleViolation, match="not yet verified"):
        _outcome(estate, estate.reviewer, pending)
    _review(estate, estate.reviewer, pending, "confirm")  # one confirmation is not verified
    with pytest.raises(RuleViolation, match="not yet verified"):
        _outcome(estate, estate.reviewer, pending)
    _review(estate, estate.user("reviewer-2", Role.REVIEWER), pending, "dismiss")
    with pytest.raises(RuleViolation, match="dismissed"):
        _outcome(estate, estate.reviewer, pending)
    assert _outcome_rows(estate) == 0
    assert len(_events(estate, "alert.outcome.refused")) == 3


def test_an_outcome_is_recorded_once(estate: Estate) -> None:
    _, alert = _verified(estate)
    _outcome(estate, estate.reviewer, alert, "spoken_to")
    with pytest.raises(RuleViolation, match="already recorded"):
        _outcome(estate, estate.officer, alert, "arrested")
    with estate.gov.sessions() as session:
        assert session.get(AlertOutcome, alert).result == "spoken_to"
    assert len(_events(estate, "alert.outcome")) == 1 and len(_events(estate, "alert.outcome.refused")) == 1


@pytest.mark.parametrize(("result", "officer", "message"), [
    ("released", "PC 1", "result"), ("", "PC 1", "result"), ("arrested", "", "officer"), ("arrested", " ", "officer")])
def test_unknown_result_or_missing_officer_is_refused(estate: Estate, result: str, officer: str, message: str) -> None:
    _, alert = _verified(estate)
    with pytest.raises(InputError, match=message):
        _outcome(estate, estate.reviewer, alert, result, officer)
    assert _outcome_rows(estate) == 0
    (event,) = _events(estate, "alert.outcome.refused")
    assert event.actor == "reviewer"


def test_only_the_deployments_reviewers_and_authorising_force_record_outcomes(estate: Estate) -> None:
    _, alert = _verified(estate)
    other = estate.organisation("Other Estate", OrgKind.SITE_OPERATOR)
    outsider = estate.user("outsider", Role.REVIEWER, by=other)
    other_force = estate.organisation("Kent Police", OrgKind.POLICE_FORCE)
    kent_officer = estate.user("kent-officer", Role.AUTHORISING_OFFICER, by=other_force, rank="superintendent")
    with pytest.raises(PermissionDenied, match="does not review"):
        _outcome(estate, outsider, alert)
    with pytest.raises(PermissionDenied, match="does not review"):
        _outcome(estate, kent_officer, alert)
    with pytest.raises(PermissionDenied, match="needs role"):
        _outcome(estate, estate.admin, alert)  # an operator admin is neither
    with estate.gov.transaction() as ctx:
        assert outcomes.outcomes_due(ctx, outsider) == [] and outcomes.outcomes_due(ctx, kent_officer) == []
    assert _outcome_rows(estate) == 0 and len(_events(estate, "alert.outcome.refused")) == 3


def test_retention_audits_a_verified_alert_deleted_without_its_outcome(estate: Estate) -> None:
    dep, missing = _verified(estate)
    with estate.gov.transaction() as ctx:
        recorded = retention.record_alert(ctx, dep, ctx.session.get(Alert, missing).camera_id, 0.8, ctx.now()).id
    _review(estate, estate.reviewer, recorded, "confirm")
    _review(estate, token_for(estate.gov, "reviewer-2"), recorded, "confirm")
    _outcome(estate, estate.reviewer, recorded)
    estate.clock.advance(days=estate.gov.policy.alert_retention_days + 1)
    with estate.gov.transaction() as ctx:
        retention.sweep(ctx)
        assert outcomes.outcome_counts(ctx.session, dep)["not recorded"] == 1  # still counted after deletion
    assert [e.object_id for e in _events(estate, "alert.outcome_missing")] == [str(missing)]
    with pytest.raises(RuleViolation, match="deleted"):
        _outcome(estate, estate.reviewer, missing)


# --- escalations ----------------------------------------------------------------------------
def test_an_escalation_is_owned_by_the_authorising_forces_officers(estate: Estate) -> None:
    _, alert = _alert(estate)
    _review(estate, estate.reviewer, alert, "escalate", "not sure: hat and glasses")
    with estate.gov.transaction() as ctx:
        (esc,) = ctx.session.execute(select(Escalation)).scalars()
        assert esc.owner_role == "authorising_officer"
        assert ctx.session.get(Organisation, esc.owner_org_id).name == estate.force
        assert open_text(ctx, esc.reason) == "not sure: hat and glasses" and esc.resolved_at is None
        assert "hat" not in esc.reason  # sealed under the alert's erasure key
        (view,) = reviews.escalations(ctx, estate.officer)
        assert view.alert_id == alert and view.opened_by == "reviewer" and view.status == "open"
        assert reviews.escalations(ctx, estate.reviewer) == []  # the queue is the owners' only
        assert reviews.escalations(ctx, estate.admin) == []
    other_force = estate.organisation("Kent Police", OrgKind.POLICE_FORCE)
    kent_officer = estate.user("kent-officer", Role.AUTHORISING_OFFICER, by=other_force, rank="superintendent")
    with estate.gov.transaction() as ctx:
        assert reviews.escalations(ctx, kent_officer) == []
    with pytest.raises(PermissionDenied, match="is owned by"), estate.gov.transaction() as ctx:
        reviews.resolve_escalation(ctx, kent_officer, view.id, "dismiss", "x")
    with pytest.raises(PermissionDenied, match="needs role"), estate.gov.transaction() as ctx:
        reviews.resolve_escalation(ctx, estate.reviewer, view.id, "dismiss", "x")
    (opened,) = _events(estate, "escalation.open")
    assert json.loads(opened.details)["owner_org"] == estate.force
    assert len(_events(estate, "escalation.resolve.refused")) == 2


def test_reviewers_decisions_are_refused_while_escalated(estate: Estate) -> None:
    _, alert = _alert(estate)
    _review(estate, estate.reviewer, alert, "escalate")
    second = estate.user("reviewer-2", Role.REVIEWER)
    for decision in ("confirm", "dismiss", "escalate"):
        with pytest.raises(RuleViolation, match="escalated"):
            _review(estate, second, alert, decision)
    assert _state(estate, alert) == (None, "escalated")
    with estate.gov.sessions() as session:
        assert session.execute(select(func.count()).select_from(Escalation)).scalar_one() == 1


def test_an_officers_dismissal_settles_the_alert_as_false(estate: Estate) -> None:
    _, alert = _alert(estate)
    _review(estate, estate.reviewer, alert, "escalate")
    with estate.gov.transaction() as ctx:
        (view,) = reviews.escalations(ctx, estate.officer)
        reviews.resolve_escalation(ctx, estate.officer, view.id, "dismiss", "a different man")
    assert _state(estate, alert) == ("false", "dismissed")
    with estate.gov.transaction() as ctx:
        (view,) = reviews.escalations(ctx, estate.officer)  # recently resolved stay in the queue
        assert view.status == "dismissed" and view.resolved_by == "officer"
    with pytest.raises(RuleViolation, match="already resolved"), estate.gov.transaction() as ctx:
        reviews.resolve_escalation(ctx, estate.officer2, view.id, "confirm", "x")
    (event,) = _events(estate, "escalation.resolve")
    assert event.actor == "officer" and json.loads(event.details)["decision"] == "dismiss"
    assert [json.loads(e.details)["outcome"] for e in _events(estate, "alert.review")] == ["false"]


def test_an_officers_confirmation_is_one_of_the_confirmations_required(estate: Estate) -> None:
    dep, alert = _alert(estate)  # two confirmations required
    _review(estate, estate.reviewer, alert, "escalate")
    with estate.gov.transaction() as ctx:
        (view,) = reviews.escalations(ctx, estate.officer)
        reviews.resolve_escalation(ctx, estate.officer, view.id, "confirm", "that is him")
    assert _state(estate, alert) == (None, "confirmed_once")  # not on the officer's word alone
    _review(estate, estate.reviewer, alert, "confirm")  # a different person: now two
    assert _state(estate, alert) == ("true", "verified")
    _, one = _alert(estate, dep, confirmations_required=1)
    _review(estate, estate.reviewer, one, "escalate")
    with estate.gov.transaction() as ctx:
        (view, _) = reviews.escalations(ctx, estate.officer)
        reviews.resolve_escalation(ctx, estate.officer, view.id, "confirm", "that is him")
    assert _state(estate, one) == ("true", "verified")


def test_the_escalating_reviewer_cannot_resolve(estate: Estate) -> None:
    _, alert = _alert(estate)
    pc = estate.user("pc-1", Role.REVIEWER, org="force")
    _review(estate, pc, alert, "escalate")
    with estate.gov.transaction() as ctx:  # promoted since: now an officer of the owning force
        users.set_role(ctx, estate.force_admin, "pc-1", Role.AUTHORISING_OFFICER, "superintendent")
    promoted = token_for(estate.gov, "pc-1")
    with estate.gov.transaction() as ctx:
        (view,) = reviews.escalations(ctx, promoted)
    with pytest.raises(PermissionDenied, match="who escalated"), estate.gov.transaction() as ctx:
        reviews.resolve_escalation(ctx, promoted, view.id, "confirm", "x")
    assert _state(estate, alert) == (None, "escalated")


def test_an_officer_who_confirmed_as_a_reviewer_does_not_count_twice(estate: Estate) -> None:
    _, alert = _alert(estate)
    pc = estate.user("pc-1", Role.REVIEWER, org="force")
    _review(estate, pc, alert, "confirm")
    _review(estate, estate.reviewer, alert, "escalate")
    with estate.gov.transaction() as ctx:
        users.set_role(ctx, estate.force_admin, "pc-1", Role.AUTHORISING_OFFICER, "superintendent")
    promoted = token_for(estate.gov, "pc-1")
    with estate.gov.transaction() as ctx:
        (view,) = reviews.escalations(ctx, promoted)
    with pytest.raises(RuleViolation, match="already confirmed"), estate.gov.transaction() as ctx:
        reviews.resolve_escalation(ctx, promoted, view.id, "confirm", "still him")
    assert _state(estate, alert) == (None, "escalated")
    with estate.gov.transaction() as ctx:  # another officer is a second person
        reviews.resolve_escalation(ctx, estate.officer, view.id, "confirm", "him")
    assert _state(estate, alert) == ("true", "verified")


def test_police_review_is_respected_when_an_escalation_is_confirmed(estate: Estate) -> None:
    dep, alert = _alert(estate, police_review_required=True)
    _review(estate, estate.reviewer, alert, "escalate")  # an estate reviewer may escalate, not confirm
    with estate.gov.transaction() as ctx:
        (view,) = reviews.escalations(ctx, estate.officer)
        reviews.resolve_escalation(ctx, estate.officer, view.id, "confirm", "him")  # a police officer
    with pytest.raises(PermissionDenied, match="requires police reviewers"):
        _review(estate, estate.reviewer, alert, "confirm")
    _review(estate, estate.user("pc-1", Role.REVIEWER, org="force"), alert, "confirm")
    assert _state(estate, alert) == ("true", "verified")
    # no force authorised it: the escalation is the operator's own, whose officer is no police one
    _, other = _alert(estate, dep, authorised_by_id=None)
    _review(estate, estate.reviewer, other, "escalate")
    with estate.gov.transaction() as ctx:
        esc = ctx.session.execute(select(Escalation).where(Escalation.alert_id == other)).scalar_one()
        assert esc.owner_org_id == ctx.session.get(Deployment, dep).organisation_id
        # an operator cannot give this role through the services; the rule must hold regardless
        ctx.session.execute(select(User).where(User.name == "admin")).scalar_one().role = "authorising_officer"
    with pytest.raises(PermissionDenied, match="requires police reviewers"), estate.gov.transaction() as ctx:
        reviews.resolve_escalation(ctx, estate.admin, esc.id, "confirm", "him")
    assert _state(estate, other) == (None, "escalated")


def test_resolving_with_an_unknown_decision_is_refused(estate: Estate) -> None:
    _, alert = _alert(estate)
    _review(estate, estate.reviewer, alert, "escalate")
    with estate.gov.transaction() as ctx:
        (view,) = reviews.escalations(ctx, estate.officer)
    with pytest.raises(RuleViolation, match="confirm, dismiss"), estate.gov.transaction() as ctx:
        reviews.resolve_escalation(ctx, estate.officer, view.id, "escalate", "x")
    assert _state(estate, alert) == (None, "escalated")
    assert len(_events(estate, "escalation.resolve.refused")) == 1
