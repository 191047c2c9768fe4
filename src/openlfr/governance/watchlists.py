"""Governed watchlists, built only from images shared under an agreement."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from openlfr.errors import InputError
from openlfr.governance.context import Ctx, Governance
from openlfr.governance.credentials import Actor
from openlfr.governance.errors import DuplicateError, PermissionDenied, RuleViolation
from openlfr.governance.schemas import Role, WatchlistAdd, WatchlistCreate, parse
from openlfr.governance.sharing import category_of, check_sharing_allowed, checked_template, make_template
from openlfr.store.models import SharedImage, Watchlist, WatchlistEntry


def create_watchlist(ctx: Ctx, actor: Actor, data: WatchlistCreate) -> Watchlist:
    """A new, empty watchlist of the operator admin's organisation, with its inclusion criteria,
    its composition criteria (the categories its entries may have, from the fixed list
    :class:`~openlfr.governance.grounds.WatchlistCategory`) and size cap."""
    user = ctx.require(actor, {Role.OPERATOR_ADMIN}, "watchlist.create", "watchlist", data.name)
    if data.size_cap > ctx.policy.watchlist_max_size:
        raise RuleViolation(f"size cap {data.size_cap} exceeds the policy maximum of {ctx.policy.watchlist_max_size}")
    if ctx.session.execute(select(Watchlist.id).where(Watchlist.name == data.name)).first() is not None:
        raise DuplicateError(f"a watchlist named {data.name!r} already exists")
    categories = [category_of(c).value for c in data.categories]
    if not categories:
        raise InputError("a watchlist needs at least one category (its composition criteria)")
    row = Watchlist(name=data.name, criteria=data.criteria, categories=categories, size_cap=data.size_cap,
                    created_by_id=user.id, created_at=ctx.now(), organisation_id=user.organisation_id)
    ctx.session.add(row)
    ctx.session.flush()
    ctx.audit(actor, "watchlist.create", "watchlist", row.id, name=row.name, criteria=row.criteria,
              categories=categories, size_cap=row.size_cap)
    return row


def create_watchlist_from(ctx: Ctx, actor: Actor, fields: dict[str, Any]) -> Watchlist:
    """:func:`create_watchlist` from raw fields (a form, the command line): the caller is checked
    first, so that invalid fields (an unknown category, say) are refused and audited."""
    ctx.require(actor, {Role.OPERATOR_ADMIN}, "watchlist.create", "watchlist", fields.get("name", ""))
    return create_watchlist(ctx, actor, parse(WatchlistCreate, **fields))


def active_entries(ctx: Ctx, watchlist_id: int) -> list[WatchlistEntry]:
    """Entries not removed, oldest first."""
    return list(ctx.session.execute(
        select(WatchlistEntry).where(WatchlistEntry.watchlist_id == watchlist_id, WatchlistEntry.removed_at.is_(None))
        .order_by(WatchlistEntry.id)
    ).scalars())


def add_entry(ctx: Ctx, actor: Actor, data: WatchlistAdd) -> WatchlistEntry:
    """Put a shared image on a watchlist (an operator admin of the watchlist's organisation,
    which must be the operator the image was shared with).

    Refused if the image was deleted or its agreement is not active now, the image was
    shared with another organisation, the image's category is not among the watchlist's
    categories (its composition criteria), the entry is of an under-18 and the agreement does
    not allow it, the quality is below policy, the review date has passed, the watchlist is
    full, or the image is already on it.
    """
    user = ctx.require(actor, {Role.OPERATOR_ADMIN}, "watchlist.add", "watchlist", data.watchlist_id)
    watchlist = ctx.get(Watchlist, data.watchlist_id, "watchlist")
    ctx.require_member(user, watchlist.organisation_id, f"add to watchlist {watchlist.id}")
    image = ctx.get(SharedImage, data.shared_image_id, "shared image")
    agreement = image.agreement
    if image.deleted_at is not None:
        raise RuleViolation(f"image {image.id} has been deleted and cannot be put on a watchlist")
    if agreement.operator_org_id != user.organisation_id:
        raise PermissionDenied(f"image {image.id} was shared with {agreement.operator!r}, not {user.organisation!r}")
    check_sharing_allowed(agreement, ctx.now())
    allowed = list(watchlist.categories or [])
    if image.category not in allowed:  # legacy watchlists (no categories) take no new entries
        raise RuleViolation(f"image {image.id} is of category {image.category!r}, which is not among the categories "
                            f"of watchlist {watchlist.name!r} ({', '.join(allowed) or 'none recorded'})")
    under_18 = data.under_18 or image.under_18
    if under_18 and not agreement.allow_under_18:
        raise RuleViolation(f"agreement {agreement.id} does not allow under-18s on a watchlist")
    if image.quality < ctx.policy.min_entry_quality:
        raise RuleViolation(f"image {image.id} quality {image.quality:.2f} is below the minimum "
                            f"{ctx.policy.min_entry_quality:.2f}")
    if data.review_date < ctx.now().date():
        raise InputError(f"review date {data.review_date} is in the past")
    if any(e.shared_image_id == image.id for e in active_entries(ctx, watchlist.id)):
        raise DuplicateError(f"image {image.id} is already on watchlist {watchlist.name!r}")
    count = ctx.session.execute(
        select(func.count()).select_from(WatchlistEntry)
        .where(WatchlistEntry.watchlist_id == watchlist.id, WatchlistEntry.removed_at.is_(None))
    ).scalar_one()
    if count >= watchlist.size_cap:
        raise RuleViolation(f"watchlist {watchlist.name!r} is full ({watchlist.size_cap} entries)")
    # A removed entry of the same image is replaced: the unique key is (watchlist, image).
    old = ctx.session.execute(
        select(WatchlistEntry).where(WatchlistEntry.watchlist_id == watchlist.id,
                                     WatchlistEntry.shared_image_id == image.id)
    ).scalar_one_or_none()
    if old is not None:
        ctx.session.delete(old)
        ctx.session.flush()
    row = WatchlistEntry(
        watchlist_id=watchlist.id, shared_image_id=image.id, label=data.label, reason=data.reason,
        quality=image.quality, under_18=under_18, review_date=data.review_date, added_by_id=user.id,
        added_at=ctx.now(),
    )
    ctx.session.add(row)
    ctx.session.flush()
    ctx.audit(actor, "watchlist.add", "watchlist_entry", row.id, watchlist=watchlist.id, image=image.id,
              sha256=image.sha256, label=data.label, reason=data.reason, under_18=under_18,
              quality=round(image.quality, 4), review_date=data.review_date)
    return row


def remove_entry(ctx: Ctx, actor: Actor, entry_id: int, reason: str) -> WatchlistEntry:
    """Take an entry off its watchlist (an operator admin of the watchlist's organisation).
    Frozen snapshots are not changed."""
    user = ctx.require(actor, {Role.OPERATOR_ADMIN}, "watchlist.remove", "watchlist_entry", entry_id)
    row = ctx.get(WatchlistEntry, entry_id, "watchlist entry")
    ctx.require_member(user, ctx.get(Watchlist, row.watchlist_id, "watchlist").organisation_id,
                       f"remove entry {entry_id}")
    if row.removed_at is not None:
        raise RuleViolation(f"entry {entry_id} was already removed")
    row.removed_at = ctx.now()
    ctx.audit(actor, "watchlist.remove", "watchlist_entry", row.id, reason=reason)
    return row


def list_watchlists(ctx: Ctx, actor: Actor) -> list[Watchlist]:
    """The watchlists of the actor's organisation (an oversight body's auditors: all), oldest first."""
    query = ctx.visible(actor, "watchlist.list", select(Watchlist).order_by(Watchlist.id), Watchlist.organisation_id)
    return list(ctx.session.execute(query).scalars())


#: marks templates made by prepare_retemplate (a caller cannot slip in templates of its own)
_SEAL = object()


@dataclass(frozen=True)
class Retemplates:
    """Templates made outside the transaction: image id -> (template, quality, model id, the
    image blob it was made from)."""

    templates: dict[int, tuple[Any, float, str, str]]
    seal: object = field(default=None, repr=False, compare=False)


def _retemplate_target(ctx: Ctx, actor: Actor, watchlist_id: int) -> Watchlist:
    user = ctx.require(actor, {Role.OPERATOR_ADMIN}, "watchlist.retemplate", "watchlist", watchlist_id)
    watchlist = ctx.get(Watchlist, watchlist_id, "watchlist")
    ctx.require_member(user, watchlist.organisation_id, f"re-template watchlist {watchlist_id}")
    return watchlist


def prepare_retemplate(gov: Governance, actor: Actor, watchlist_id: int) -> Retemplates:
    """The slow half of :func:`retemplate`, outside any long transaction: the images are read
    (after the same checks, in a short transaction), then templated with no lock held."""
    with gov.transaction() as ctx:
        watchlist = _retemplate_target(ctx, actor, watchlist_id)
        images = [(e.shared_image.id, e.shared_image.image_blob, ctx.blobs.get(e.shared_image.image_blob))
                  for e in active_entries(ctx, watchlist.id) if e.shared_image.image_blob is not None]
    if gov.template_fn is None:
        raise RuleViolation("no template function was given: cannot turn the images into templates")
    return Retemplates({image_id: (*checked_template(gov.template_fn(data)), blob) for image_id, blob, data in images},
                       seal=_SEAL)


def retemplate(ctx: Ctx, actor: Actor, watchlist_id: int, prepared: Retemplates | None = None) -> dict[str, int]:
    """Re-make, with the configured face model, the template of every image on a watchlist
    (an operator admin of its organisation), from the encrypted shared images themselves.

    Images already templated by that model are left alone; each one re-made is audited with
    its old and new model. Snapshots frozen earlier keep their own templates (and model).
    ``prepared`` (:func:`prepare_retemplate`) holds templates made outside the transaction;
    any image it lacks, or whose file changed since, is templated here.
    Returns {"retemplated": n, "unchanged": m}."""
    watchlist = _retemplate_target(ctx, actor, watchlist_id)
    if prepared is not None and prepared.seal is not _SEAL:
        raise InputError("prepared templates must come from watchlists.prepare_retemplate")
    done = same = 0
    model = ""
    for entry in active_entries(ctx, watchlist.id):
        image = entry.shared_image
        if image.image_blob is None or image.template_blob is None:
            raise RuleViolation(f"entry {entry.id}'s image {image.id} has been deleted: remove the entry first")
        ready = prepared.templates.get(image.id) if prepared is not None else None
        if ready is not None and ready[3] == image.image_blob:
            vec, quality, model = ready[0], ready[1], ready[2]
        else:
            vec, quality, model = make_template(ctx, ctx.blobs.get(image.image_blob))
        if image.template_model == model:
            same += 1
            continue
        old_blob, old_model = image.template_blob, image.template_model
        image.template_blob, image.template_model = ctx.blobs.put(vec.tobytes()), model
        ctx.blobs.delete(old_blob)
        ctx.audit(actor, "image.retemplate", "shared_image", image.id, watchlist=watchlist.id, old_model=old_model,
                  model=model, quality=round(quality, 4), template_sha256=hashlib.sha256(vec.tobytes()).hexdigest())
        done += 1
    ctx.audit(actor, "watchlist.retemplate", "watchlist", watchlist.id, model=model, retemplated=done, unchanged=same)
    return {"retemplated": done, "unchanged": same}
