"""What happened after a verified alert: the engagement outcome, required for each one.

Every verified alert (``review_outcome = "true"``) needs one outcome record: the engagement
result from the fixed list :class:`~openlfr.governance.grounds.EngagementResult`, a free
note and the officer who engaged (a name or collar number). Until it is recorded the alert
shows as "outcome due", is in :func:`outcomes_due` and counts as "not recorded" in
:func:`outcome_counts`; a retention sweep that deletes it audits that the outcome was never
recorded. It may be recorded by a reviewer who may review the deployment's alerts or by an
authorising officer of the force that authorised it.

An outcome is recorded once and is final: a second one is refused (an amendment would let a
result be changed after the report counted it; a mistaken record is answered by the audit
trail, not by overwriting it). Recording and every refusal are audited.

The note and the officer are personal data (of the person stopped and of the officer): both
are sealed under the alert's erasure key (:mod:`openlfr.rights.keys`), in the row and in the
``alert.outcome`` event's ``personal`` part; the result stays in clear for the reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pydantic import Field
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from openlfr.governance.context import Ctx
from openlfr.governance.credentials import Actor
from openlfr.governance.errors import PermissionDenied, RuleViolation
from openlfr.governance.grounds import EngagementResult
from openlfr.governance.reviews import may_review
from openlfr.governance.schemas import Role, _In, parse
from openlfr.rights.keys import alert_ref, seal_text
from openlfr.store.models import Alert, AlertOutcome, Deployment, User

RECORDERS = {Role.REVIEWER, Role.AUTHORISING_OFFICER}
NOT_RECORDED = "not recorded"


class OutcomeRecord(_In):
    """An engagement outcome as callers hand it in."""

    result: EngagementResult
    note: str = Field("", max_length=2000)
    officer: str = Field(min_length=1, max_length=120, description="who engaged: a name or collar number")


@dataclass(frozen=True)
class DueAlert:
    """A verified alert still waiting for its outcome."""

    alert_id: int
    deployment_id: int
    camera_id: int
    at: datetime
    score: float
    verified_at: datetime | None


def _authorising_force(ctx: Ctx, dep: Deployment) -> int | None:
    officer = ctx.session.get(User, dep.authorised_by_id) if dep.authorised_by_id is not None else None
    return officer.organisation_id if officer is not None else None


def may_record(ctx: Ctx, user: User, dep: Deployment) -> bool:
    """Whether ``user`` may record the outcomes of ``dep``'s alerts: a reviewer who may review
    them, or an authorising officer of the force that authorised it."""
    if Role(user.role) is Role.REVIEWER:
        return may_review(ctx, user, dep)
    if Role(user.role) is Role.AUTHORISING_OFFICER:
        return user.organisation_id == _authorising_force(ctx, dep)
    return False


def handler_for(ctx: Ctx, actor: Actor, action: str, alert_id: int) -> tuple[User, Alert, Deployment]:
    """The acting user, the alert and its deployment, if the user may see the alert: a reviewer
    who may review it, or an authorising officer of the force that authorised its deployment
    (who owns its escalations and may record its outcome)."""
    user = ctx.require(actor, RECORDERS, action, "alert", alert_id)
    alert = ctx.get(Alert, alert_id, "alert")
    dep = ctx.get(Deployment, alert.deployment_id, "deployment")
    if not may_record(ctx, user, dep):
        raise PermissionDenied(f"{user.name} of {user.organisation} does not review deployment {dep.id}'s alerts "
                               "and did not authorise it")
    return user, alert, dep


def _recordable(user: User) -> Select:
    """The ids of the deployments whose outcomes ``user`` may record (as :func:`may_record`)."""
    officers = select(User.id).where(User.organisation_id == user.organisation_id,
                                      User.role == Role.AUTHORISING_OFFICER.value)
    if Role(user.role) is Role.AUTHORISING_OFFICER:
        return select(Deployment.id).where(Deployment.authorised_by_id.in_(officers))
    anyone = select(User.id).where(User.organisation_id == user.organisation_id)
    return select(Deployment.id).where((Deployment.organisation_id == user.organisation_id)
                                       | Deployment.authorised_by_id.in_(anyone))


def outcome_of(session: Session, alert_id: int) -> AlertOutcome | None:
    """The alert's recorded outcome, if any."""
    return session.get(AlertOutcome, alert_id)


def outcome_due(session: Session, alert: Alert) -> bool:
    """Whether ``alert`` is verified, still held and has no outcome yet."""
    return alert.review_outcome == "true" and alert.deleted_at is None and outcome_of(session, alert.id) is None


def record_outcome(ctx: Ctx, actor: Actor, alert_id: int, result: str, note: str, officer: str) -> AlertOutcome:
    """Record what happened after verified alert ``alert_id`` (once; audited). The row returned
    holds the note and officer sealed (read them with :func:`~openlfr.rights.keys.open_text`)."""
    user, alert, dep = handler_for(ctx, actor, "alert.outcome", alert_id)
    data = parse(OutcomeRecord, result=result, note=note, officer=officer)
    # lock the alert row, so two concurrent records cannot both pass the "once" check
    ctx.session.execute(select(Alert.id).where(Alert.id == alert_id).with_for_update())
    ctx.session.refresh(alert)
    if alert.deleted_at is not None:
        raise RuleViolation(f"alert {alert_id} has been deleted under the retention policy")
    if alert.review_outcome != "true":
        state = "dismissed as a false alert" if alert.review_outcome == "false" else "not yet verified"
        raise RuleViolation(f"alert {alert_id} is {state}: only a verified alert has an engagement outcome")
    if (done := outcome_of(ctx.session, alert_id)) is not None:
        raise RuleViolation(f"alert {alert_id}'s outcome is already recorded ({done.result}, "
                            f"{done.recorded_at:%Y-%m-%d %H:%M} UTC) and is final")
    ref = alert_ref(alert.id)
    row = AlertOutcome(alert_id=alert.id, result=data.result.value, note=seal_text(ctx, ref, data.note),
                       officer=seal_text(ctx, ref, data.officer), recorded_by_id=user.id, recorded_at=ctx.now())
    ctx.session.add(row)
    ctx.session.flush()
    ctx.audit(actor, "alert.outcome", "alert", alert.id, deployment=dep.id, result=row.result,
              personal={"officer": data.officer, "note": data.note}, subject=ref)
    return row


def outcomes_due(ctx: Ctx, actor: Actor) -> list[DueAlert]:
    """The verified alerts still held and without an outcome that the actor may record, oldest first."""
    user = ctx.require(actor, RECORDERS, "alert.outcomes_due")
    rows = ctx.session.execute(
        select(Alert).outerjoin(AlertOutcome, AlertOutcome.alert_id == Alert.id)
        .where(Alert.review_outcome == "true", Alert.deleted_at.is_(None), AlertOutcome.alert_id.is_(None),
               Alert.deployment_id.in_(_recordable(user)))
        .order_by(Alert.id)).scalars()
    return [DueAlert(alert_id=a.id, deployment_id=a.deployment_id, camera_id=a.camera_id, at=a.at, score=a.score,
                     verified_at=a.reviewed_at) for a in rows]


def outcome_counts(session: Session, deployment_id: int) -> dict[str, int]:
    """The deployment's verified alerts by engagement result: one key per
    :class:`EngagementResult` value (0 when none) and ``"not recorded"`` for verified alerts
    without an outcome (deleted ones included: their outcome can no longer be recorded)."""
    counts = {r.value: 0 for r in EngagementResult}
    rows = session.execute(
        select(AlertOutcome.result, func.count()).select_from(Alert)
        .outerjoin(AlertOutcome, AlertOutcome.alert_id == Alert.id)
        .where(Alert.deployment_id == deployment_id, Alert.review_outcome == "true")
        .group_by(AlertOutcome.result)).all()
    counts[NOT_RECORDED] = 0
    for result, n in rows:
        key = NOT_RECORDED if result is None else result
        counts[key] = counts.get(key, 0) + n
    return counts
