"""One alert's life after review: early deletion with a reason, legal holds, and when its
retention ends.

- **Deletion.** One alert may be deleted before its retention ends, with a reason. It is wiped
  (:func:`openlfr.rights.erasure.wipe_alert`): crop, key, details and notes go; the counts the
  reports need stay.
- **Legal hold.** An alert may be held past its retention for a named proceeding, with a
  review date in the future. While any hold on it is in force, no retention sweep, deletion
  or erasure touches it (and its crop is kept). A hold is released with a reason; the next
  sweep then applies the retention it would have had.
- **Retention end.** :func:`alert_retain_until`: the alert's own deadline (31 days by default),
  or, for an alert dismissed as someone else (a false alert), its review time plus
  :attr:`~openlfr.config.Policy.dismissed_alert_retention_hours` (default 0: the
  next sweep) if sooner; ``None`` while held.

Who: an operator admin or data protection officer of the organisation that runs the alert's
deployment, or a data protection officer of the force whose officer authorised it (the
visibility rule of :func:`openlfr.governance.reviews.may_review`, narrowed to these roles).
Every action and every refusal is audited (``alert.delete``, ``alert.hold``,
``alert.hold_release``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from pydantic import Field
from sqlalchemy import select

from openlfr.governance.context import Ctx
from openlfr.governance.credentials import Actor
from openlfr.governance.errors import PermissionDenied, RuleViolation
from openlfr.governance.reviews import may_review
from openlfr.governance.schemas import Role, _In, parse
from openlfr.rights.erasure import Wiped, active_hold, wipe_alert
from openlfr.rights.keys import alert_ref
from openlfr.store.models import Alert, Deployment, LegalHold, User

#: who may delete an alert early, hold it and release its holds
KEEPERS = {Role.OPERATOR_ADMIN, Role.DPO}


class DeleteRequest(_In):
    """Why one alert is deleted before its retention ends."""

    reason: str = Field(min_length=1, max_length=2000, description="why this alert is deleted early")


class HoldRequest(_In):
    """A legal hold as callers hand it in."""

    proceeding: str = Field(min_length=1, max_length=300, description="the proceeding the alert is kept for")
    review_date: date = Field(description="when the hold must be reviewed (a day in the future)")


class ReleaseRequest(_In):
    """Why a hold is released."""

    reason: str = Field(min_length=1, max_length=2000, description="why the alert need no longer be kept")


@dataclass(frozen=True)
class HoldView:
    """A legal hold as its keepers see it."""

    id: int
    alert_id: int
    deployment_id: int
    proceeding: str
    review_date: date
    placed_by: str
    placed_at: datetime
    released_at: datetime | None
    release_reason: str
    due: bool  # in force and its review date has come


def may_keep(ctx: Ctx, user: User, dep: Deployment) -> bool:
    """Whether ``user`` may delete, hold and release ``dep``'s alerts: an operator admin of the
    organisation that runs it, or a DPO of that organisation or of the force that authorised it."""
    role = Role(user.role)
    if role is Role.OPERATOR_ADMIN:
        return user.organisation_id == dep.organisation_id
    return role is Role.DPO and may_review(ctx, user, dep)


def keeper_for(ctx: Ctx, actor: Actor, action: str, alert_id: int) -> tuple[User, Alert, Deployment]:
    """The acting user, the alert and its deployment, if the user may keep (delete, hold) it;
    else :class:`PermissionDenied` or :class:`~openlfr.errors.NotFoundError` (both audited)."""
    user = ctx.require(actor, KEEPERS, action, "alert", alert_id)
    alert = ctx.get(Alert, alert_id, "alert")
    dep = ctx.get(Deployment, alert.deployment_id, "deployment")
    if not may_keep(ctx, user, dep):
        raise PermissionDenied(f"{user.name} of {user.organisation} is not a keeper of deployment {dep.id}'s alerts "
                               "(its operator's admins and DPOs, and the DPOs of the force that authorised it)")
    return user, alert, dep


def alert_retain_until(ctx: Ctx, alert: Alert) -> datetime | None:
    """When ``alert``'s retention ends: its own deadline, or for an alert dismissed as someone
    else its review time plus the dismissed-alert retention if sooner; ``None`` while it is
    under a legal hold (kept until the hold is released)."""
    if active_hold(ctx, alert.id) is not None:
        return None
    return unheld_retain_until(ctx, alert)


def unheld_retain_until(ctx: Ctx, alert: Alert) -> datetime:
    """:func:`alert_retain_until` ignoring legal holds."""
    until = alert.retain_until
    if alert.review_outcome == "false" and alert.reviewed_at is not None:
        until = min(until, alert.reviewed_at + timedelta(hours=ctx.policy.dismissed_alert_retention_hours))
    return until


def delete_alert(ctx: Ctx, actor: Actor, alert_id: int, reason: str) -> Wiped:
    """Delete one alert before its retention ends, with a reason (audited ``alert.delete``):
    wiped down to what the reports count. Refused under a legal hold, or if already deleted."""
    _, alert, _ = keeper_for(ctx, actor, "alert.delete", alert_id)
    why = parse(DeleteRequest, reason=reason).reason
    ctx.session.execute(select(Alert.id).where(Alert.id == alert_id).with_for_update())  # against a hold placed now
    ctx.session.refresh(alert)
    if alert.pseudonymised_at is not None:
        raise RuleViolation(f"alert {alert_id} was already deleted on {alert.pseudonymised_at:%Y-%m-%d %H:%M} UTC "
                            f"({alert.deleted_reason or 'retention over'})")
    return wipe_alert(ctx, alert, actor=actor, action="alert.delete", reason=why, what="deleted")


def place_hold(ctx: Ctx, actor: Actor, alert_id: int, proceeding: str, review_date: date | str) -> LegalHold:
    """Hold ``alert_id`` past its retention for a named proceeding until released, to be reviewed
    by ``review_date`` (in the future). Audited ``alert.hold``; the proceeding's name is sealed
    under the alert's key in the audit log (it may name a person)."""
    user, alert, dep = keeper_for(ctx, actor, "alert.hold", alert_id)
    data = parse(HoldRequest, proceeding=proceeding, review_date=review_date)
    today = ctx.now().date()
    if data.review_date <= today:
        raise RuleViolation(f"a hold's review date must be in the future (after {today:%Y-%m-%d}), "
                            f"not {data.review_date:%Y-%m-%d}")
    # lock the alert row, so a sweep or deletion running now either wipes it first (and this is
    # refused) or sees this hold
    ctx.session.execute(select(Alert.id).where(Alert.id == alert_id).with_for_update())
    ctx.session.refresh(alert)
    if alert.pseudonymised_at is not None or alert.deleted_at is not None:
        raise RuleViolation(f"alert {alert_id} has been deleted or pseudonymised: there is nothing left to hold")
    same = ctx.session.execute(select(LegalHold).where(
        LegalHold.alert_id == alert_id, LegalHold.released_at.is_(None),
        LegalHold.proceeding == data.proceeding)).scalars().first()
    if same is not None:
        raise RuleViolation(f"alert {alert_id} is already held for this proceeding (hold {same.id})")
    row = LegalHold(alert_id=alert.id, proceeding=data.proceeding, review_date=data.review_date,
                    placed_by_id=user.id, placed_at=ctx.now())
    ctx.session.add(row)
    ctx.session.flush()
    ctx.audit(actor, "alert.hold", "alert", alert.id, deployment=dep.id, hold=row.id,
              review_date=data.review_date.isoformat(), personal={"proceeding": data.proceeding},
              subject=alert_ref(alert.id))
    return row


def release_hold(ctx: Ctx, actor: Actor, hold_id: int, reason: str) -> LegalHold:
    """Release a hold in force, with a reason (audited ``alert.hold_release``): the alert's
    retention applies again from the next sweep (at once, if it has already ended). Only a
    keeper of the organisation that placed the hold may release it."""
    user = ctx.require(actor, KEEPERS, "alert.hold_release", "legal_hold", hold_id)
    hold = ctx.get(LegalHold, hold_id, "legal hold")
    alert = ctx.get(Alert, hold.alert_id, "alert")
    dep = ctx.get(Deployment, alert.deployment_id, "deployment")
    if not may_keep(ctx, user, dep):
        raise PermissionDenied(f"{user.name} of {user.organisation} is not a keeper of deployment {dep.id}'s alerts")
    placer = ctx.session.get(User, hold.placed_by_id)
    if placer is None or placer.organisation_id != user.organisation_id:
        # a force's hold for its proceeding is not the estate's to lift (nor the other way round)
        raise PermissionDenied(f"hold {hold_id} was placed by {placer.organisation if placer else 'another party'}: "
                               f"only that organisation may release it, not {user.name} of {user.organisation}")
    why = parse(ReleaseRequest, reason=reason).reason
    if hold.released_at is not None:
        raise RuleViolation(f"hold {hold_id} was already released on {hold.released_at:%Y-%m-%d %H:%M} UTC")
    hold.released_by_id, hold.released_at, hold.release_reason = user.id, ctx.now(), why
    ctx.audit(actor, "alert.hold_release", "legal_hold", hold.id, alert=alert.id, deployment=dep.id, reason=why)
    return hold


def hold_view(ctx: Ctx, hold: LegalHold, today: date) -> HoldView:
    """One hold with its placer's name and whether its review is due."""
    alert = ctx.session.get(Alert, hold.alert_id)
    placer = ctx.session.get(User, hold.placed_by_id)
    return HoldView(id=hold.id, alert_id=hold.alert_id, deployment_id=alert.deployment_id if alert else 0,
                    proceeding=hold.proceeding, review_date=hold.review_date,
                    placed_by=placer.name if placer else "?", placed_at=hold.placed_at,
                    released_at=hold.released_at, release_reason=hold.release_reason or "",
                    due=hold.released_at is None and hold.review_date <= today)


def holds(ctx: Ctx, actor: Actor, due_only: bool = False) -> list[HoldView]:
    """The holds in force on alerts the actor may keep, by review date (``due_only``: only
    those whose review date has come)."""
    user = ctx.require(actor, KEEPERS, "alert.holds")
    today = ctx.now().date()
    rows = ctx.session.execute(select(LegalHold).where(LegalHold.released_at.is_(None))
                               .order_by(LegalHold.review_date, LegalHold.id)).scalars().all()
    out = []
    for hold in rows:
        alert = ctx.session.get(Alert, hold.alert_id)
        dep = ctx.session.get(Deployment, alert.deployment_id) if alert is not None else None
        if dep is not None and may_keep(ctx, user, dep) and (not due_only or hold.review_date <= today):
            out.append(hold_view(ctx, hold, today))
    return out


def holds_of(ctx: Ctx, actor: Actor, alert_id: int) -> list[HoldView]:
    """Every hold, in force or released, of one alert the actor may keep (oldest first)."""
    keeper_for(ctx, actor, "alert.holds", alert_id)
    today = ctx.now().date()
    rows = ctx.session.execute(select(LegalHold).where(LegalHold.alert_id == alert_id)
                               .order_by(LegalHold.id)).scalars().all()
    return [hold_view(ctx, h, today) for h in rows]


__all__ = ["KEEPERS", "DeleteRequest", "HoldRequest", "HoldView", "ReleaseRequest", "alert_retain_until",
           "delete_alert", "hold_view", "holds", "holds_of", "keeper_for", "may_keep", "place_hold", "release_hold",
           "unheld_retain_until"]
