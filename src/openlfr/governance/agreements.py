"""Data-sharing agreements: create, approve, suspend, resume, end, expire (with purge)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from openlfr.governance import organisations
from openlfr.governance.context import Ctx
from openlfr.governance.credentials import Actor
from openlfr.governance.errors import PermissionDenied, RuleViolation
from openlfr.governance.ranks import at_least
from openlfr.governance.schemas import AgreementCreate, OrgKind, Role, parse
from openlfr.governance.sharing import category_of, delete_shared_image
from openlfr.store.models import Agreement, SharedImage, User

OPEN_STATUSES = ("draft", "active", "suspended")


def create(ctx: Ctx, actor: Actor, data: AgreementCreate) -> Agreement:
    """A supplier of a police force offers an agreement to an operator organisation (status
    ``draft`` until an officer of the force approves it), for the watchlist categories it lists
    (from the fixed list :class:`~openlfr.governance.grounds.WatchlistCategory`).

    Refused if the force already has an open agreement with the same operator whose validity
    overlaps: one agreement per pair at a time, so no image escapes its terms.
    """
    user = ctx.require(actor, {Role.SUPPLIER}, "agreement.create", "agreement", "", kinds={OrgKind.POLICE_FORCE})
    operator = organisations.by_name(ctx, data.operator)
    if operator.kind == OrgKind.OVERSIGHT_BODY:
        raise RuleViolation(f"{operator.name} is an oversight body: images are shared only with an operator")
    if data.valid_until <= ctx.now():
        raise RuleViolation("the agreement would already have expired")
    clash = ctx.session.execute(
        select(Agreement.id).where(
            Agreement.supplier_org_id == user.organisation_id, Agreement.operator_org_id == operator.id,
            Agreement.status.in_(OPEN_STATUSES),
            Agreement.valid_from < data.valid_until, Agreement.valid_until > data.valid_from,
        )
    ).scalars().first()
    if clash is not None:
        raise RuleViolation(f"dates overlap agreement {clash} between {user.organisation} and {operator.name}")
    row = Agreement(
        supplier_id=user.id, supplier_org_id=user.organisation_id, operator_org_id=operator.id,
        purpose=data.purpose, lawful_basis=data.lawful_basis,
        valid_from=data.valid_from, valid_until=data.valid_until, image_limit=data.image_limit,
        allowed_categories=[category_of(c).value for c in data.allowed_categories],
        allow_under_18=data.allow_under_18,
        status="draft", created_by_id=user.id, created_at=ctx.now(),
    )
    ctx.session.add(row)
    ctx.session.flush()
    ctx.session.refresh(row)
    ctx.audit(actor, "agreement.create", "agreement", row.id, force=row.force, operator=row.operator,
              purpose=row.purpose,
              lawful_basis=row.lawful_basis, valid_from=row.valid_from, valid_until=row.valid_until,
              image_limit=row.image_limit, categories=row.allowed_categories, under_18=row.allow_under_18)
    return row


def create_from(ctx: Ctx, actor: Actor, fields: dict[str, Any]) -> Agreement:
    """:func:`create` from raw fields (a form, the command line): the caller is checked first,
    so that invalid fields (an unknown category, say) are refused and audited."""
    ctx.require(actor, {Role.SUPPLIER}, "agreement.create", "agreement", "", kinds={OrgKind.POLICE_FORCE})
    return create(ctx, actor, parse(AgreementCreate, **fields))


def require_rank(ctx: Ctx, user: User, action: str) -> None:
    """Refuse an authorising officer below the policy's minimum rank."""
    minimum = ctx.policy.min_authorising_rank
    if not at_least(user.rank, minimum):
        raise PermissionDenied(f"{action} needs an authorising officer of rank {minimum.replace('_', ' ')} or above; "
                               f"{user.name} is {(user.rank or 'of no recorded rank').replace('_', ' ')}")


def approve(ctx: Ctx, actor: Actor, agreement_id: int) -> Agreement:
    """An authorising officer of the supplying force, of the required rank, approves a draft
    agreement; sharing may then start."""
    user = ctx.require(actor, {Role.AUTHORISING_OFFICER}, "agreement.approve", "agreement", agreement_id)
    row = ctx.get(Agreement, agreement_id, "agreement")
    ctx.require_member(user, row.supplier_org_id, f"approve agreement {agreement_id}")
    require_rank(ctx, user, "approving an agreement")
    if row.status != "draft":
        raise RuleViolation(f"agreement {agreement_id} is {row.status}; only a draft can be approved")
    if row.valid_until <= ctx.now():
        raise RuleViolation(f"agreement {agreement_id} has already expired")
    row.status, row.approved_by_id, row.approved_at = "active", user.id, ctx.now()
    ctx.audit(actor, "agreement.approve", "agreement", row.id, rank=user.rank)
    return row


def _party(ctx: Ctx, actor: Actor, action: str, agreement_id: int, roles: set[Role]) -> Agreement:
    """The agreement, if the actor holds one of ``roles`` on its side: police roles in the
    supplying force, the operator admin in the operator organisation."""
    user = ctx.require(actor, roles, action, "agreement", agreement_id)
    row = ctx.get(Agreement, agreement_id, "agreement")
    side = row.operator_org_id if Role(user.role) is Role.OPERATOR_ADMIN else row.supplier_org_id
    ctx.require_member(user, side, f"{action.split('.')[-1]} agreement {agreement_id}")
    return row


def suspend(ctx: Ctx, actor: Actor, agreement_id: int, reason: str) -> Agreement:
    """Pause sharing (supplier or authorising officer); images stay until it ends."""
    row = _party(ctx, actor, "agreement.suspend", agreement_id, {Role.SUPPLIER, Role.AUTHORISING_OFFICER})
    if row.status != "active":
        raise RuleViolation(f"agreement {agreement_id} is {row.status}; only an active one can be suspended")
    row.status = "suspended"
    ctx.audit(actor, "agreement.suspend", "agreement", row.id, reason=reason)
    return row


def resume(ctx: Ctx, actor: Actor, agreement_id: int) -> Agreement:
    """Lift a suspension (supplier or authorising officer)."""
    row = _party(ctx, actor, "agreement.resume", agreement_id, {Role.SUPPLIER, Role.AUTHORISING_OFFICER})
    if row.status != "suspended":
        raise RuleViolation(f"agreement {agreement_id} is {row.status}, not suspended")
    row.status = "active"
    ctx.audit(actor, "agreement.resume", "agreement", row.id)
    return row


def purge(ctx: Ctx, row: Agreement, actor: Actor | str, reason: str) -> int:
    """Delete every live image and template shared under ``row``; return how many."""
    images = ctx.session.execute(
        select(SharedImage).where(SharedImage.agreement_id == row.id, SharedImage.deleted_at.is_(None))
        .order_by(SharedImage.id)
    ).scalars().all()
    for image in images:
        delete_shared_image(ctx, image, actor, reason)
    return len(images)


def end(ctx: Ctx, actor: Actor, agreement_id: int, reason: str) -> Agreement:
    """End an agreement (supplier, authorising officer or operator admin) and purge its images."""
    row = _party(ctx, actor, "agreement.end", agreement_id,
                 {Role.SUPPLIER, Role.AUTHORISING_OFFICER, Role.OPERATOR_ADMIN})
    if row.status not in OPEN_STATUSES:
        raise RuleViolation(f"agreement {agreement_id} is already {row.status}")
    row.status, row.ended_at = "ended", ctx.now()
    purged = purge(ctx, row, actor, f"agreement {row.id} ended: {reason}")
    ctx.audit(actor, "agreement.end", "agreement", row.id, reason=reason, images_purged=purged)
    return row


def expire_due(ctx: Ctx, actor: str = "system:retention") -> list[Agreement]:
    """Mark every open agreement past its ``valid_until`` as expired and purge its images."""
    now = ctx.now()
    due = ctx.session.execute(
        select(Agreement).where(Agreement.status.in_(OPEN_STATUSES), Agreement.valid_until <= now)
        .order_by(Agreement.id)
    ).scalars().all()
    for row in due:
        row.status, row.ended_at = "expired", now
        purged = purge(ctx, row, actor, f"agreement {row.id} expired")
        ctx.audit(actor, "agreement.expire", "agreement", row.id, images_purged=purged)
    return list(due)


def list_agreements(ctx: Ctx, actor: Actor) -> list[Agreement]:
    """The agreements the actor's organisation is party to (an oversight body's auditors: all), oldest first."""
    me = ctx.require(actor, None, "agreement.list")
    query = select(Agreement).order_by(Agreement.id)
    if not ctx.oversees(me):
        query = query.where((Agreement.supplier_org_id == me.organisation_id)
                            | (Agreement.operator_org_id == me.organisation_id))
    return list(ctx.session.execute(query).scalars())
