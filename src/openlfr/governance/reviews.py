"""Alert review with two-person confirmation: the only way an alert is settled.

An alert counts as verified (``review_outcome = "true"``) only once the confirmations its
deployment requires (two by default, EU AI Act Art. 14(5)) have come from different
reviewers. A dismissal records it as a false alert at once; an escalation records the
request for a senior look and leaves the outcome open. Every decision is kept
(``alert_reviews``) and audited. There is no public function that settles an alert on one
reviewer's word: the API, the console, the command line and Python callers all come here.

Reviewers are those of the deployment's organisation or of the force that authorised it;
where the deployment requires it, only police reviewers may confirm.
"""

from __future__ import annotations

from sqlalchemy import select

from openlfr.governance.context import Ctx
from openlfr.governance.credentials import Actor
from openlfr.governance.errors import PermissionDenied, RuleViolation
from openlfr.governance.schemas import OrgKind, Role
from openlfr.store.api_models import AlertReview
from openlfr.store.models import Alert, Deployment, User

DECISIONS = ("confirm", "dismiss", "escalate")


def reviews_of(ctx: Ctx, alert_id: int) -> list[tuple[AlertReview, str]]:
    """Every decision on an alert with its reviewer's name, oldest first."""
    return [(r, name) for r, name in ctx.session.execute(
        select(AlertReview, User.name).join(User, User.id == AlertReview.reviewer_id)
        .where(AlertReview.alert_id == alert_id).order_by(AlertReview.id)
    ).all()]


def confirmations(rows: list[tuple[AlertReview, str]]) -> int:
    """How many different reviewers have confirmed."""
    return len({r.reviewer_id for r, _ in rows if r.decision == "confirm"})


def status(alert: Alert, rows: list[tuple[AlertReview, str]]) -> str:
    """pending, confirmed_once, verified, dismissed, escalated or deleted."""
    if alert.deleted_at is not None:
        return "deleted"
    if alert.review_outcome == "true":
        return "verified"
    if alert.review_outcome == "false":
        return "dismissed"
    if rows and rows[-1][0].decision == "escalate":
        return "escalated"
    return "confirmed_once" if confirmations(rows) else "pending"


def blind_view(alert: Alert, rows: list[tuple[AlertReview, str]], viewer_id: int | None
               ) -> tuple[str, int, list[tuple[AlertReview, str]]]:
    """(status, confirmations, decisions) as ``viewer_id`` may see them. Reviewers decide blind:
    until the alert is settled or the viewer has recorded a decision of their own, the others'
    decisions (and so ``confirmed_once`` or ``escalated``) are hidden, so that a second
    confirmation is a second independent look, not a countersignature."""
    settled = alert.review_outcome in ("true", "false") or alert.deleted_at is not None
    if settled or any(r.reviewer_id == viewer_id for r, _ in rows):
        return status(alert, rows), confirmations(rows), rows
    return "pending", 0, []


def may_review(ctx: Ctx, user: User, dep: Deployment) -> bool:
    """Whether ``user`` belongs to the deployment's organisation or to the force that authorised it."""
    if user.organisation_id == dep.organisation_id:
        return True
    officer = ctx.session.get(User, dep.authorised_by_id) if dep.authorised_by_id is not None else None
    return officer is not None and officer.organisation_id == user.organisation_id


def reviewer_for(ctx: Ctx, actor: Actor, action: str, alert_id: int) -> tuple[User, Alert, Deployment]:
    """The acting reviewer, the alert and its deployment, if the reviewer may see it."""
    user = ctx.require(actor, {Role.REVIEWER}, action, "alert", alert_id)
    alert = ctx.get(Alert, alert_id, "alert")
    dep = ctx.get(Deployment, alert.deployment_id, "deployment")
    if not may_review(ctx, user, dep):
        raise PermissionDenied(f"{user.name} of {user.organisation} does not review deployment {dep.id}'s alerts")
    return user, alert, dep


def review(ctx: Ctx, actor: Actor, alert_id: int, decision: str, note: str) -> Alert:
    """Record the acting reviewer's decision; sets the alert's outcome once it is settled
    (verified after the confirmations its deployment requires, each by a different reviewer)."""
    if decision not in DECISIONS:
        ctx.require(actor, {Role.REVIEWER}, "alert.review", "alert", alert_id)
        raise RuleViolation(f"decision must be one of {', '.join(DECISIONS)}")
    user, alert, dep = reviewer_for(ctx, actor, f"alert.{decision}", alert_id)
    # lock the alert row before reading its state, so concurrent reviews settle it once
    ctx.session.execute(select(Alert.id).where(Alert.id == alert_id).with_for_update())
    ctx.session.refresh(alert)
    if decision == "confirm" and dep.police_review_required and OrgKind(user.org.kind) is not OrgKind.POLICE_FORCE:
        raise PermissionDenied(f"deployment {dep.id} requires police reviewers to confirm its alerts; "
                               f"{user.name} is of {user.organisation}")
    if alert.deleted_at is not None:
        raise RuleViolation(f"alert {alert_id} has been deleted under the retention policy")
    if alert.review_outcome in ("true", "false"):
        settled = "verified" if alert.review_outcome == "true" else "dismissed"
        raise RuleViolation(f"alert {alert_id} is already settled ({settled})")
    rows = reviews_of(ctx, alert_id)
    if decision == "confirm" and any(r.reviewer_id == user.id and r.decision == "confirm" for r, _ in rows):
        raise RuleViolation("you have already confirmed this alert: a different reviewer must confirm it")
    ctx.session.add(AlertReview(alert_id=alert.id, reviewer_id=user.id, decision=decision, note=note, at=ctx.now()))
    ctx.session.flush()
    ctx.audit(actor, f"alert.{decision}", "alert", alert.id, note=note)
    if decision == "dismiss":
        _settle(ctx, actor, alert, "false")
    elif decision == "confirm" and confirmations(reviews_of(ctx, alert_id)) >= dep.confirmations_required:
        _settle(ctx, actor, alert, "true")
    return alert


def _settle(ctx: Ctx, actor: Actor, alert: Alert, outcome: str) -> None:
    """Record the settled outcome (``true``: the listed person; ``false``: someone else);
    the per-deployment report counts these."""
    old, alert.review_outcome, alert.reviewed_at = alert.review_outcome, outcome, ctx.now()
    ctx.audit(actor, "alert.review", "alert", alert.id, outcome=outcome, previous=old)
