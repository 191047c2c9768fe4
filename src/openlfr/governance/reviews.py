"""Alert review with two-person confirmation: the only way an alert is settled.

An alert counts as verified (``review_outcome = "true"``) only once the confirmations its
deployment requires (two by default, EU AI Act Art. 14(5)) have come from different
reviewers. A dismissal records it as a false alert at once; an escalation records the
request for a senior look and leaves the outcome open. Every decision is kept
(``alert_reviews``) and audited. There is no public function that settles an alert on one
reviewer's word: the API, the console, the command line and Python callers all come here.

Reviewers are those of the deployment's organisation or of the force that authorised it;
where the deployment requires it, only police reviewers may confirm.

An escalation is owned by a named role: the authorising officers of the force that authorised
the deployment (of the deployment's own organisation if none did). While it is open the
reviewers' decisions are refused (the senior look has the alert); an officer of the owning
role and organisation, never the reviewer who escalated, resolves it. A dismissal settles the
alert as false; a confirmation counts as one confirmation by that officer (a different person
from every reviewer), so with two confirmations required the alert is verified only once a
reviewer has confirmed it too, and only a police officer's confirmation counts where the
deployment requires police review. Every path settles through :func:`_settle`.

Reviewers' notes and escalation reasons describe the person seen, so they are sealed under
the alert's erasure key (:mod:`openlfr.rights.keys`), in their rows and in the audit events'
``personal`` part; readers open them with :func:`~openlfr.rights.keys.open_text`. Decisions
and outcomes stay in clear: the reports and the store check count them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, select

from openlfr.governance.context import Ctx
from openlfr.governance.credentials import Actor
from openlfr.governance.errors import PermissionDenied, RuleViolation
from openlfr.governance.schemas import OrgKind, Role
from openlfr.rights.keys import alert_ref, open_text, seal_text
from openlfr.store.models import Alert, AlertReview, Deployment, Escalation, Organisation, User

DECISIONS = ("confirm", "dismiss", "escalate")
RESOLUTIONS = ("confirm", "dismiss")
ESCALATION_OWNER = Role.AUTHORISING_OFFICER
RECENTLY_RESOLVED = timedelta(days=7)  # resolved escalations stay in the owners' queue this long


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



def reviewable(user: User) -> Select:
    """The ids of the deployments whose alerts ``user`` may review (the rule of
    :func:`may_review`, as a query): those their organisation runs, and those an officer of
    their organisation authorised."""
    officers = select(User.id).where(User.organisation_id == user.organisation_id)
    return select(Deployment.id).where((Deployment.organisation_id == user.organisation_id)
                                       | Deployment.authorised_by_id.in_(officers))


def reviewable_alerts(ctx: Ctx, user: User, limit: int = 200) -> list[Alert]:
    """The newest alerts still held that ``user`` may review, newest first."""
    return list(ctx.session.execute(
        select(Alert).where(Alert.deleted_at.is_(None), Alert.deployment_id.in_(reviewable(user)))
        .order_by(Alert.id.desc()).limit(limit)).scalars())

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
    if open_escalation(ctx, alert_id) is not None:
        raise RuleViolation(f"alert {alert_id} is escalated and awaits an authorising officer's decision; "
                            "reviewers' decisions are refused until it is resolved")
    rows = reviews_of(ctx, alert_id)
    if decision == "confirm" and any(r.reviewer_id == user.id and r.decision == "confirm" for r, _ in rows):
        raise RuleViolation("you have already confirmed this alert: a different reviewer must confirm it")
    # the note describes the person seen ("young male in grey hoodie"): sealed under the alert's
    # erasure key, in the row and in the audit event, so erasing the alert erases it everywhere
    ref = alert_ref(alert.id)
    ctx.session.add(AlertReview(alert_id=alert.id, reviewer_id=user.id, decision=decision,
                                note=seal_text(ctx, ref, note), at=ctx.now()))
    ctx.session.flush()
    ctx.audit(actor, f"alert.{decision}", "alert", alert.id, personal={"note": note}, subject=ref)
    if decision == "escalate":
        _open_escalation(ctx, actor, user, alert, dep, note)
    elif decision == "dismiss":
        _settle(ctx, actor, alert, "false")
    elif decision == "confirm" and confirmations(reviews_of(ctx, alert_id)) >= dep.confirmations_required:
        _settle(ctx, actor, alert, "true")
    return alert


def _settle(ctx: Ctx, actor: Actor, alert: Alert, outcome: str) -> None:
    """Record the settled outcome (``true``: the listed person; ``false``: someone else);
    the per-deployment report counts these."""
    old, alert.review_outcome, alert.reviewed_at = alert.review_outcome, outcome, ctx.now()
    ctx.audit(actor, "alert.review", "alert", alert.id, outcome=outcome, previous=old)


# --- escalations ------------------------------------------------------------------------------
def escalation_owner(ctx: Ctx, dep: Deployment) -> tuple[Role, int]:
    """Who owns an escalation of ``dep``'s alerts: the authorising officers of the force that
    authorised it (of the deployment's own organisation if nobody did)."""
    officer = ctx.session.get(User, dep.authorised_by_id) if dep.authorised_by_id is not None else None
    org_id = officer.organisation_id if officer is not None else dep.organisation_id
    if org_id is None:  # (the columns are nullable only for stores made before organisations existed)
        raise RuleViolation(f"deployment {dep.id} belongs to no organisation: nobody can own its escalations")
    return ESCALATION_OWNER, org_id


def open_escalation(ctx: Ctx, alert_id: int) -> Escalation | None:
    """The alert's unresolved escalation, if any."""
    return ctx.session.execute(select(Escalation).where(Escalation.alert_id == alert_id,
                                                        Escalation.resolved_at.is_(None))).scalars().first()


def _open_escalation(ctx: Ctx, actor: Actor, user: User, alert: Alert, dep: Deployment, reason: str) -> Escalation:
    role, org_id = escalation_owner(ctx, dep)
    row = Escalation(alert_id=alert.id, owner_role=role.value, owner_org_id=org_id, opened_by_id=user.id,
                     opened_at=ctx.now(), reason=seal_text(ctx, alert_ref(alert.id), reason))
    ctx.session.add(row)
    ctx.session.flush()
    ctx.audit(actor, "escalation.open", "escalation", row.id, alert=alert.id, owner_role=role.value,
              owner_org=ctx.get(Organisation, org_id, "organisation").name)
    return row


@dataclass(frozen=True)
class EscalationView:
    """One escalation as its owners see it (``reason`` and ``resolution_note`` opened:
    :data:`~openlfr.rights.keys.ERASED` once the alert was erased)."""

    id: int
    alert_id: int
    deployment_id: int
    score: float
    alert_at: datetime
    owner_role: str
    owner: str  # the owning organisation's name
    opened_by: str
    opened_at: datetime
    reason: str
    status: str  # open | confirmed | dismissed
    resolved_by: str | None
    resolved_at: datetime | None
    resolution_note: str


def escalations(ctx: Ctx, actor: Actor) -> list[EscalationView]:
    """The open escalations owned by the actor's role and organisation, and those resolved in
    the last :data:`RECENTLY_RESOLVED`, newest first (empty for any other role)."""
    user = ctx.require(actor, None, "escalation.list")
    since = ctx.now() - RECENTLY_RESOLVED
    rows = ctx.session.execute(
        select(Escalation, Alert).join(Alert, Alert.id == Escalation.alert_id)
        .where(Escalation.owner_role == user.role, Escalation.owner_org_id == user.organisation_id,
               Escalation.resolved_at.is_(None) | (Escalation.resolved_at >= since))
        .order_by(Escalation.id.desc())).all()
    names = {u.id: u.name for u in ctx.session.execute(select(User).where(User.id.in_(
        {e.opened_by_id for e, _ in rows} | {e.resolved_by_id for e, _ in rows if e.resolved_by_id}))).scalars()}
    owner = ctx.get(Organisation, user.organisation_id, "organisation").name
    return [EscalationView(
        id=e.id, alert_id=a.id, deployment_id=a.deployment_id, score=a.score, alert_at=a.at, owner_role=e.owner_role,
        owner=owner, opened_by=names.get(e.opened_by_id, "?"), opened_at=e.opened_at,
        reason=open_text(ctx, e.reason) or "",
        status={"confirm": "confirmed", "dismiss": "dismissed"}.get(e.resolution or "", "open"),
        resolved_by=names.get(e.resolved_by_id) if e.resolved_by_id else None, resolved_at=e.resolved_at,
        resolution_note=open_text(ctx, e.resolution_note) or "") for e, a in rows]


def resolve_escalation(ctx: Ctx, actor: Actor, escalation_id: int, decision: str, note: str) -> Escalation:
    """An officer of the owning role and organisation (never the reviewer who escalated)
    resolves an escalation: ``dismiss`` settles the alert as false; ``confirm`` records one
    confirmation by the officer, which settles it as verified once the deployment's required
    confirmations (each by a different person) are reached; otherwise the alert goes back to
    the reviewers for the rest."""
    user = ctx.require(actor, {ESCALATION_OWNER}, "escalation.resolve", "escalation", escalation_id)
    if decision not in RESOLUTIONS:
        raise RuleViolation(f"decision must be one of {', '.join(RESOLUTIONS)}")
    esc = ctx.get(Escalation, escalation_id, "escalation")
    if esc.owner_role != user.role or esc.owner_org_id != user.organisation_id:
        owner = ctx.session.get(Organisation, esc.owner_org_id)
        raise PermissionDenied(f"escalation {escalation_id} is owned by the {esc.owner_role.replace('_', ' ')}s of "
                               f"{owner.name if owner else '?'}; {user.name} is {user.role} of {user.organisation}")
    if esc.opened_by_id == user.id:
        raise PermissionDenied("the reviewer who escalated an alert cannot resolve the escalation")
    # lock the alert row before reading its state (as :func:`review` does)
    ctx.session.execute(select(Alert.id).where(Alert.id == esc.alert_id).with_for_update())
    alert = ctx.get(Alert, esc.alert_id, "alert")
    ctx.session.refresh(alert)
    ctx.session.refresh(esc)
    if esc.resolved_at is not None:
        raise RuleViolation(f"escalation {escalation_id} is already resolved ({esc.resolution})")
    if alert.deleted_at is not None:
        raise RuleViolation(f"alert {alert.id} has been deleted under the retention policy")
    if alert.review_outcome in ("true", "false"):
        raise RuleViolation(f"alert {alert.id} is already settled")
    dep = ctx.get(Deployment, alert.deployment_id, "deployment")
    if decision == "confirm":
        if dep.police_review_required and OrgKind(user.org.kind) is not OrgKind.POLICE_FORCE:
            raise PermissionDenied(f"deployment {dep.id} requires police reviewers to confirm its alerts; "
                                   f"{user.name} is of {user.organisation}")
        if any(r.reviewer_id == user.id and r.decision == "confirm" for r, _ in reviews_of(ctx, alert.id)):
            raise RuleViolation("you have already confirmed this alert: a different person must confirm it")
    ref = alert_ref(alert.id)  # the note is sealed under the alert's erasure key, as a reviewer's is
    esc.resolved_by_id, esc.resolved_at, esc.resolution = user.id, ctx.now(), decision
    esc.resolution_note = seal_text(ctx, ref, note)
    # the officer's decision is kept with the reviewers' (and counts as a confirmation by a different person)
    ctx.session.add(AlertReview(alert_id=alert.id, reviewer_id=user.id, decision=decision,
                                note=seal_text(ctx, ref, note), at=ctx.now()))
    ctx.session.flush()
    ctx.audit(actor, "escalation.resolve", "escalation", esc.id, alert=alert.id, decision=decision,
              personal={"note": note}, subject=ref)
    if decision == "dismiss":
        _settle(ctx, actor, alert, "false")
    elif confirmations(reviews_of(ctx, alert.id)) >= dep.confirmations_required:
        _settle(ctx, actor, alert, "true")
    return esc
