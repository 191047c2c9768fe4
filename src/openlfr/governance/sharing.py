"""Sharing images under an agreement, the append-only ledger, and the supplier's view."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import numpy as np
from sqlalchemy import func, select

from openlfr.errors import InputError
from openlfr.governance.context import Ctx, TemplateFn
from openlfr.governance.credentials import Actor
from openlfr.governance.deployments import drop_snapshots_with_image
from openlfr.governance.errors import DuplicateError, PermissionDenied, RuleViolation
from openlfr.governance.grounds import WatchlistCategory
from openlfr.governance.pseudonyms import check_subject_ref, check_warrant_ref
from openlfr.governance.schemas import OrgKind, Role, ShareImage, parse
from openlfr.store.models import Agreement, LedgerEntry, Organisation, SharedImage, WatchlistEntry


def category_of(value: str) -> WatchlistCategory:
    """``value`` as a :class:`WatchlistCategory`, or an :class:`InputError` naming the fixed list."""
    try:
        return WatchlistCategory(value)
    except ValueError:
        raise InputError(f"unknown watchlist category {value!r}; the categories are: "
                         f"{', '.join(c.value for c in WatchlistCategory)}") from None


def check_sharing_allowed(agreement: Agreement, at: datetime) -> None:
    """Refuse unless ``agreement`` is active and ``at`` lies in its validity window."""
    if agreement.status != "active":
        raise RuleViolation(f"agreement {agreement.id} is {agreement.status}, not active: sharing refused")
    if not agreement.valid_from <= at < agreement.valid_until:
        raise RuleViolation(
            f"agreement {agreement.id} is valid {agreement.valid_from:%Y-%m-%d %H:%M} to "
            f"{agreement.valid_until:%Y-%m-%d %H:%M} UTC, not at {at:%Y-%m-%d %H:%M}: sharing refused"
        )


def live_image_count(ctx: Ctx, agreement_id: int) -> int:
    """Images shared under the agreement and not deleted."""
    return ctx.session.execute(
        select(func.count()).select_from(SharedImage)
        .where(SharedImage.agreement_id == agreement_id, SharedImage.deleted_at.is_(None))
    ).scalar_one()


def checked_template(result: tuple[np.ndarray, float, str]) -> tuple[np.ndarray, float, str]:
    """A template function's (unit template, quality, model id), checked: any dimension, unit
    length, quality in 0..1, a model id."""
    template, quality, model_id = result
    vec = np.asarray(template, dtype=np.float32).reshape(-1)
    if not len(vec) or not np.isfinite(vec).all() or abs(float(np.linalg.norm(vec)) - 1.0) > 1e-3:
        raise InputError("the template function returned something other than a unit-length template")
    if not 0.0 <= float(quality) <= 1.0:
        raise InputError(f"the template function returned a quality of {quality}, outside 0..1")
    if not model_id:
        raise InputError("the template function did not say which face model made the template")
    return vec, float(quality), model_id


def make_template(ctx: Ctx, image: bytes) -> tuple[np.ndarray, float, str]:
    """The enrolment template of an image with the configured face model (see :func:`checked_template`)."""
    if ctx.template_fn is None:
        raise InputError("no template function was given: cannot turn the image into a template")
    return checked_template(ctx.template_fn(image))


#: marks a PreparedImage made by prepare_image, so that no caller can hand share_image
#: bytes that skipped the gate, or a template of its own choosing
_SEAL = object()


@dataclass(frozen=True)
class PreparedImage:
    """An image through the gate and turned into a template, before any database work."""

    data: bytes  # the clean re-encoded JPEG/PNG: the only bytes stored
    original_sha256: str  # of the bytes the supplier sent
    template: np.ndarray
    quality: float
    model_id: str
    width: int
    height: int
    seal: object = field(default=None, repr=False, compare=False)


def prepare_image(template_fn: TemplateFn | None, image: bytes, label: str = "image") -> PreparedImage:
    """The slow half of sharing, run outside any transaction: the image gate
    (:func:`openlfr.face.image_gate.gate_image`: JPEG/PNG by content, size from the header,
    decoding budget, clean re-encoding), then the template of the clean image.

    Entry points call this first, then :func:`share_image` in a short transaction, so that no
    decoding or face detection ever holds the database's write lock.
    """
    from openlfr.face.image_gate import gate_image

    if template_fn is None:
        raise InputError("no template function was given: cannot turn the image into a template")
    if not image:
        raise InputError("the image is empty")
    gated = gate_image(image, label=label)
    vec, quality, model_id = checked_template(template_fn(gated.data))
    return PreparedImage(gated.data, hashlib.sha256(image).hexdigest(), vec, quality, model_id, gated.width,
                         gated.height, seal=_SEAL)


def share_image(ctx: Ctx, actor: Actor, data: ShareImage, image: PreparedImage | bytes) -> SharedImage:
    """Share one image under an agreement: checks, encrypted storage, ledger row, audit event.

    Refused unless the actor is a supplier of the agreement's force, the agreement is active and in its
    window, the subject reference is a pseudonymous code (:mod:`openlfr.governance.pseudonyms`),
    a category that needs one has a plausible warrant or court reference, the category is
    allowed by the agreement, an under-18 image is allowed, the face's quality score is at
    least the policy's ``min_entry_quality``, the limit is not reached and the same image
    (SHA-256 of the clean image) was not already shared under this agreement. The warrant
    reference is stored on the image and in its audit event (the ledger has no column for it).
    ``image`` is normally a :class:`PreparedImage` made outside the transaction by
    :func:`prepare_image`; raw bytes are prepared here, inside it (holding the write lock).
    """
    user = ctx.require(actor, {Role.SUPPLIER}, "image.share", "agreement", data.agreement_id)
    agreement = ctx.get(Agreement, data.agreement_id, "agreement")
    ctx.require_member(user, agreement.supplier_org_id, f"share images under agreement {agreement.id}")
    now = ctx.now()
    check_sharing_allowed(agreement, now)
    category = category_of(data.category)  # a ShareImage holds one; checked again for model_construct
    subject_ref = check_subject_ref(data.subject_ref)
    warrant_ref = data.warrant_ref.strip()
    if category.rule.needs_reference or warrant_ref:  # optional for the others, but then it must look like one
        warrant_ref = check_warrant_ref(warrant_ref)
    if category.value not in agreement.allowed_categories:
        raise RuleViolation(f"category {category.value!r} is not allowed by agreement {agreement.id} "
                            f"(allowed: {', '.join(agreement.allowed_categories)})")
    if data.under_18 and not agreement.allow_under_18:
        raise RuleViolation(f"agreement {agreement.id} does not allow images of under-18s")
    if data.image_date > now.date():
        raise InputError(f"image date {data.image_date} is in the future")
    if not isinstance(image, PreparedImage):
        image = prepare_image(ctx.template_fn, image)
    if image.seal is not _SEAL:
        raise InputError("a prepared image must come from sharing.prepare_image (the image gate)")
    if live_image_count(ctx, agreement.id) >= agreement.image_limit:
        raise RuleViolation(f"agreement {agreement.id} allows at most {agreement.image_limit} images: limit reached")
    digest = hashlib.sha256(image.data).hexdigest()
    dup = ctx.session.execute(
        select(SharedImage.id).where(SharedImage.agreement_id == agreement.id, SharedImage.sha256 == digest)
    ).scalar_one_or_none()
    if dup is not None:
        raise DuplicateError(f"this image (sha256 {digest[:12]}...) was already shared under agreement "
                             f"{agreement.id} as image {dup}")
    vec, quality, model_id = checked_template((image.template, image.quality, image.model_id))
    if quality < ctx.policy.min_entry_quality:
        raise RuleViolation(f"the face's quality score {quality:.2f} is below the minimum for a watchlist image "
                            f"({ctx.policy.min_entry_quality:.2f}): use a larger, sharper, more frontal photo")

    row = SharedImage(
        agreement_id=agreement.id, sha256=digest, category=category.value, reason=data.reason,
        subject_ref=subject_ref, warrant_ref=warrant_ref, image_date=data.image_date, under_18=data.under_18,
        quality=quality, shared_by_id=user.id, shared_at=now, template_model=model_id,
        image_blob=ctx.blobs.put(image.data), template_blob=ctx.blobs.put(vec.tobytes()),
    )
    ctx.session.add(row)
    ctx.session.flush()
    _ledger(ctx, "shared", row, agreement, actor, now)
    ctx.audit(actor, "image.share", "shared_image", row.id, agreement=agreement.id, sha256=digest,
              original_sha256=image.original_sha256, size=f"{image.width}x{image.height}",
              template_sha256=hashlib.sha256(vec.tobytes()).hexdigest(),
              category=category.value, subject_ref=subject_ref, warrant_ref=warrant_ref, quality=round(quality, 4),
              model=model_id)
    return row


def share_image_from(ctx: Ctx, actor: Actor, fields: dict[str, Any], image: PreparedImage | bytes) -> SharedImage:
    """:func:`share_image` from raw fields (a form, the command line): the caller is checked
    first, so that invalid fields (an unknown category, say) are refused and audited like any
    other refusal."""
    ctx.require(actor, {Role.SUPPLIER}, "image.share", "agreement", fields.get("agreement_id", ""))
    return share_image(ctx, actor, parse(ShareImage, **fields), image)


def _ledger(ctx: Ctx, kind: str, row: SharedImage, agreement: Agreement, actor: Actor | str, at: datetime) -> None:
    ctx.session.add(LedgerEntry(
        kind=kind, shared_image_id=row.id, agreement_id=agreement.id, supplier_id=agreement.supplier_id,
        sha256=row.sha256, category=row.category, reason=row.reason if kind == "shared" else (row.deleted_reason or ""),
        subject_ref=row.subject_ref, image_date=row.image_date, actor=ctx.name_of(actor), at=at,
    ))


def delete_shared_image(ctx: Ctx, row: SharedImage, actor: Actor | str, reason: str) -> None:
    """Delete an image's encrypted image and template, take it off watchlists and snapshots,
    and record the deletion in the ledger and the audit log. No role check: callers do it."""
    if row.deleted_at is not None:
        return
    now = ctx.now()
    for blob in (row.image_blob, row.template_blob):
        if blob:
            ctx.blobs.delete(blob)
    row.image_blob = row.template_blob = None
    row.deleted_at, row.deleted_reason = now, reason
    entries = ctx.session.execute(
        select(WatchlistEntry).where(WatchlistEntry.shared_image_id == row.id, WatchlistEntry.removed_at.is_(None))
    ).scalars()
    for entry in entries:
        entry.removed_at = now
    drop_snapshots_with_image(ctx, row.id, actor, f"image {row.id} deleted: {reason}")
    _ledger(ctx, "deleted", row, row.agreement, actor, now)
    ctx.audit(actor, "image.delete", "shared_image", row.id, agreement=row.agreement_id, sha256=row.sha256,
              reason=reason)


def revoke_image(ctx: Ctx, actor: Actor, image_id: int, reason: str) -> SharedImage:
    """A supplier of the force that shared an image withdraws it: deleted everywhere, ledger row kept."""
    user = ctx.require(actor, {Role.SUPPLIER}, "image.revoke", "shared_image", image_id)
    row = ctx.get(SharedImage, image_id, "shared image")
    ctx.require_member(user, row.agreement.supplier_org_id, f"revoke image {image_id}")
    if row.deleted_at is not None:
        raise RuleViolation(f"image {image_id} was already deleted on {row.deleted_at:%Y-%m-%d %H:%M}")
    if not reason.strip():
        raise InputError("a reason for revoking is required")
    delete_shared_image(ctx, row, actor, f"revoked by supplier: {reason.strip()}")
    return row


@dataclass(frozen=True)
class LedgerView:
    """One shared image as its supplier sees it: where it went and whether it is gone."""

    image_id: int
    agreement_id: int
    operator: str
    sha256: str
    category: str
    reason: str
    subject_ref: str
    image_date: date
    shared_by: str
    shared_at: datetime
    deleted_at: datetime | None
    deleted_by: str | None
    deletion_reason: str | None

    @property
    def status(self) -> str:
        """``live`` or ``purged``."""
        return "live" if self.deleted_at is None else "purged"


def force_of_viewer(ctx: Ctx, actor: Actor, action: str, force: str | None) -> Organisation:
    """The police force whose records ``actor`` may see: their own (suppliers and auditors of a
    force), or the one they name (auditors of an oversight body)."""
    user = ctx.require(actor, {Role.SUPPLIER, Role.AUDITOR, Role.AUTHORISING_OFFICER}, action)
    if OrgKind(user.org.kind) is OrgKind.POLICE_FORCE:
        if force and force != user.organisation:
            raise PermissionDenied(f"{user.name} of {user.organisation} cannot see the records of {force}")
        return user.org
    if Role(user.role) is not Role.AUDITOR or OrgKind(user.org.kind) is not OrgKind.OVERSIGHT_BODY:
        raise PermissionDenied(f"{action} is for the police force's own staff and oversight bodies' auditors")
    if not force:
        raise InputError("an oversight auditor must name the force whose records to view")
    from openlfr.governance.organisations import by_name

    org = by_name(ctx, force)
    if OrgKind(org.kind) is not OrgKind.POLICE_FORCE:
        raise InputError(f"{force} is not a police force")
    return org


def force_ledger(ctx: Ctx, actor: Actor, force: str | None = None) -> list[LedgerView]:
    """Every image a police force has shared under any of its agreements, whoever in the force
    shared it, live or purged, from the append-only ledger."""
    org = force_of_viewer(ctx, actor, "ledger.view", force)
    rows = ctx.session.execute(
        select(LedgerEntry, Organisation.name).join(Agreement, Agreement.id == LedgerEntry.agreement_id)
        .join(Organisation, Organisation.id == Agreement.operator_org_id)
        .where(Agreement.supplier_org_id == org.id).order_by(LedgerEntry.id)
    ).all()
    deleted = {e.shared_image_id: e for e, _ in rows if e.kind == "deleted"}
    out = []
    for e, operator in rows:
        if e.kind != "shared":
            continue
        d = deleted.get(e.shared_image_id)
        out.append(LedgerView(
            image_id=e.shared_image_id, agreement_id=e.agreement_id, operator=operator, sha256=e.sha256,
            category=e.category, reason=e.reason, subject_ref=e.subject_ref, image_date=e.image_date,
            shared_by=e.actor, shared_at=e.at, deleted_at=d.at if d else None, deleted_by=d.actor if d else None,
            deletion_reason=d.reason if d else None,
        ))
    ctx.audit(actor, "ledger.view", "organisation", org.id, rows=len(out))
    return out


def load_template(ctx: Ctx, row: SharedImage) -> np.ndarray:
    """The decrypted template of a live shared image."""
    if row.template_blob is None:
        raise RuleViolation(f"image {row.id} has been deleted; its template is gone")
    return np.frombuffer(ctx.blobs.get(row.template_blob), dtype=np.float32).copy()
