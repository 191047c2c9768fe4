"""Alert review with two-person confirmation, built on :func:`deployments.review_alert`.

An alert counts as verified (``review_outcome = "true"``) only once ``required`` different
reviewers have confirmed it. A dismissal records it as a false alert at once; an escalation
records the request for a senior look and leaves the outcome open. Every decision is kept
(``alert_reviews``) and audited.
"""

from __future__ import annotations

from sqlalchemy import select

from openlfr.governance import Ctx, Role, RuleViolation
from openlfr.governance import deployments
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


def review(ctx: Ctx, actor: str, alert_id: int, decision: str, note: str) -> Alert:
    """Record ``actor``'s decision; sets the alert's outcome once it is settled (verified after
    the confirmations its deployment requires, each by a different reviewer)."""
    user = ctx.require(actor, {Role.REVIEWER}, f"alert.{decision}", "alert", alert_id)
    if decision not in DECISIONS:
        raise RuleViolation(f"decision must be one of {', '.join(DECISIONS)}")
    alert = ctx.get(Alert, alert_id, "alert")
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
        deployments.review_alert(ctx, actor, alert.id, "false")
    elif decision == "confirm":
        required = ctx.session.get(Deployment, alert.deployment_id).confirmations_required
        if confirmations(reviews_of(ctx, alert_id)) >= required:
            deployments.review_alert(ctx, actor, alert.id, "true")
    return alert
