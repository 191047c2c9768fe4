"""Deployments: request, authorise (freezing the watchlist), start, end, and the live watchlist.

Matching code gets templates only through :func:`live_watchlist`, which refuses outside a
live deployment's window, on a camera not in the deployment, or once the snapshot is gone.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import numpy as np
from sqlalchemy import select

from openlfr.errors import InputError
from openlfr.face.registry import DLIB_RESNET_ID  # the registry only; no model is loaded
from openlfr.governance.cameras import current_signage
from openlfr.governance.composition import composition
from openlfr.governance.context import Ctx
from openlfr.governance.credentials import Actor
from openlfr.governance.errors import PermissionDenied, RuleViolation
from openlfr.governance.ranks import at_least
from openlfr.governance.schemas import DeploymentKind, DeploymentRequest, OrgKind, Role, parse
from openlfr.store.models import (
    Agreement, Camera, Deployment, Organisation, SharedImage, SnapshotItem, User, Watchlist, WatchlistEntry,
)

OPEN_STATUSES = ("requested", "authorised", "live")
RETRO_OUTCOMES = ("upheld", "ended")

# (watchlist size, target false-alert rate) -> calibration record with at least "threshold"
# and "predicted_fnir" (see openlfr.evaluation.cohort.size_calibrator)
Calibrator = Callable[[int, float], dict[str, Any]]


@dataclass(frozen=True)
class LiveWatchlist:
    """What matching code may use during a live deployment."""

    deployment_id: int
    camera_id: int
    entry_ids: list[int]
    labels: list[str]
    templates: np.ndarray  # (N, D) float32, unit rows
    threshold: float
    snapshot_hash: str
    valid_until: datetime
    model_id: str  # the face model of the templates: probes must come from the same one
    agreement_ids: list[int] = field(default_factory=list)  # the agreements its images were shared under
    # entry id -> the entry that stands for its person in passes (one alert a pass of a person,
    # whichever of their images matched): see :func:`person_keys`; an entry not here is its own
    person_of: dict[int, int] = field(default_factory=dict)
    # the first moment one of its entries passes its review date (it must then be loaded again,
    # which drops that entry); None when no entry is due before the deployment ends
    next_change: datetime | None = None

    def person(self, entry_id: int) -> int:
        """The entry that stands for ``entry_id``'s person in passes (itself unless the person
        has several images)."""
        return self.person_of.get(entry_id, entry_id)


def request(ctx: Ctx, actor: Actor, data: DeploymentRequest, calibrate: Calibrator | None = None) -> Deployment:
    """An operator admin (or an authorising officer) asks for a deployment of their own
    organisation's watchlist and cameras; refused on unknown ids, another organisation's
    watchlist or cameras, a window in the past or a camera already booked by another open live
    deployment in an overlapping window. Whoever requests it cannot be the one who authorises it.

    A request with a target false-alert rate instead of a threshold needs ``calibrate``: the
    threshold it returns for the watchlist's current size is stored with the target and the
    prediction, and all three are audited and shown on the public record.

    The grounds are checked too (:func:`check_grounds`): the legal basis fits the requester's kind
    of organisation, the DPIA and equality impact assessment are not dated after the request, and
    the window is no longer than ``policy.max_deployment_hours``."""
    user = ctx.require(actor, {Role.OPERATOR_ADMIN, Role.AUTHORISING_OFFICER}, "deployment.request", "deployment", "")
    check_grounds(ctx, user, data)
    watchlist = ctx.get(Watchlist, data.watchlist_id, "watchlist")
    ctx.require_member(user, watchlist.organisation_id, f"deploy watchlist {watchlist.id}")
    cameras = [ctx.get(Camera, cid, "camera") for cid in data.camera_ids]
    for cam in cameras:
        ctx.require_member(user, cam.organisation_id, f"deploy camera {cam.name!r}")
    if data.end <= ctx.now():
        raise InputError("the deployment would end in the past")
    for cam in cameras if data.kind is DeploymentKind.LIVE else []:
        clash = ctx.session.execute(
            select(Deployment.id).join(Deployment.cameras).where(
                Camera.id == cam.id, Deployment.status.in_(OPEN_STATUSES), Deployment.kind == DeploymentKind.LIVE.value,
                Deployment.start < data.end, Deployment.end > data.start,
            )
        ).scalars().first()
        if clash is not None:
            raise RuleViolation(f"camera {cam.name!r} is already in deployment {clash} at overlapping times")
    threshold, calibration = data.threshold, None
    if data.target_false_alert_rate is not None:
        if calibrate is None:
            raise RuleViolation("a target false-alert rate needs a calibration cohort; none is configured")
        size = len(ctx.session.execute(
            select(WatchlistEntry.id)
            .where(WatchlistEntry.watchlist_id == watchlist.id, WatchlistEntry.removed_at.is_(None))
        ).scalars().all())
        if size == 0:
            raise RuleViolation(f"watchlist {watchlist.id} has no entries to calibrate a threshold for")
        calibration = dict(calibrate(size, data.target_false_alert_rate))
        threshold = float(calibration["threshold"])
        if not 0 < threshold <= 1:
            raise RuleViolation(f"the calibrated threshold {threshold:.4f} is outside (0, 1]")
    row = Deployment(
        purpose=data.purpose, watchlist_id=watchlist.id, start=data.start, end=data.end, threshold=threshold,
        dpia_ref=data.dpia_ref, necessity=data.necessity, status="requested", requested_by_id=user.id,
        requested_at=ctx.now(), cameras=cameras, target_false_alert_rate=data.target_false_alert_rate,
        calibration=calibration, confirmations_required=data.confirmations_required,
        organisation_id=user.organisation_id, kind=data.kind.value, police_review_required=data.police_review_required,
        legal_basis=data.legal_basis.value, dpia_date=data.dpia_date, eia_ref=data.eia_ref, eia_date=data.eia_date,
        proportionality=data.proportionality, urgent=data.urgent, urgency_reason=data.urgency_reason,
    )
    ctx.session.add(row)
    ctx.session.flush()
    ctx.audit(actor, "deployment.request", "deployment", row.id, purpose=row.purpose, watchlist=watchlist.id,
              cameras=[c.id for c in cameras], start=row.start, end=row.end, threshold=row.threshold,
              dpia_ref=row.dpia_ref, necessity=row.necessity, target_false_alert_rate=row.target_false_alert_rate,
              calibration=calibration, confirmations_required=row.confirmations_required, kind=row.kind,
              police_review_required=row.police_review_required, legal_basis=row.legal_basis,
              dpia_date=row.dpia_date, eia_ref=row.eia_ref, eia_date=row.eia_date,
              proportionality=row.proportionality, urgent=row.urgent, urgency_reason=row.urgency_reason)
    return row


def request_from(ctx: Ctx, actor: Actor, fields: dict[str, Any], calibrate: Calibrator | None = None) -> Deployment:
    """:func:`request` from raw fields (a form, the command line): the caller is checked first,
    so that invalid fields are refused and audited like any other refusal."""
    ctx.require(actor, {Role.OPERATOR_ADMIN, Role.AUTHORISING_OFFICER}, "deployment.request", "deployment", "")
    return request(ctx, actor, parse(DeploymentRequest, **fields), calibrate)


def check_grounds(ctx: Ctx, user: User, data: DeploymentRequest) -> None:
    """Refuse grounds that cannot be right for this requester now: a police force's deployment
    needs a law-enforcement basis (DPA 2018 s.35 / Schedule 8) and anyone else's must not use
    one; a DPIA or equality impact assessment dated after today does not exist yet; the window
    may be at most ``policy.max_deployment_hours`` long."""
    org = ctx.get(Organisation, user.organisation_id, "organisation")
    police = org.kind == OrgKind.POLICE_FORCE.value
    if data.legal_basis.law_enforcement and not police:
        raise RuleViolation(f"legal basis {data.legal_basis.value} is a law-enforcement (DPA 2018 Part 3) basis: only "
                            f"a police force may use it; {org.name} needs a UK GDPR basis")
    if police and not data.legal_basis.law_enforcement:
        raise RuleViolation(f"{org.name} is a police force: its deployments are law enforcement and need a "
                            f"DPA 2018 s.35 / Schedule 8 basis, not {data.legal_basis.value}")
    today = ctx.now().date()
    for what, day in (("DPIA", data.dpia_date), ("equality impact assessment", data.eia_date)):
        if day > today:
            raise InputError(f"the {what} is dated {day}, after today ({today}): it must be signed off before the "
                             "deployment is requested")
    hours = (data.end - data.start).total_seconds() / 3600
    if hours > ctx.policy.max_deployment_hours:
        raise RuleViolation(f"the window is {hours:g} hours long; a deployment may last at most "
                            f"{ctx.policy.max_deployment_hours:g} hours (request another for longer)")


def _snapshot_bytes(ctx: Ctx, dep: Deployment) -> tuple[bytes, list[dict[str, Any]]]:
    entries = ctx.session.execute(
        select(WatchlistEntry)
        .where(WatchlistEntry.watchlist_id == dep.watchlist_id, WatchlistEntry.removed_at.is_(None))
        .order_by(WatchlistEntry.id)
    ).scalars().all()
    if not entries:
        raise RuleViolation(f"watchlist {dep.watchlist_id} has no entries to deploy")
    items: list[dict[str, Any]] = []
    for e in entries:
        image = e.shared_image
        if image.template_blob is None:
            raise RuleViolation(f"entry {e.id} refers to deleted image {image.id}")
        agreement = image.agreement
        if agreement.status != "active" or agreement.valid_until <= ctx.now():
            raise RuleViolation(f"entry {e.id} comes from agreement {agreement.id}, which is not active")
        # past review now, or before the deployment would start: it would never be used (it drops
        # out of a live deployment the day after its review date), so it must be reviewed first
        if e.review_date < max(dep.start, ctx.now()).date():
            raise RuleViolation(f"entry {e.id} was due for review on {e.review_date}, before the deployment "
                                "could use it: review or remove it first")
        template = ctx.blobs.get(image.template_blob)
        items.append({
            "entry_id": e.id, "shared_image_id": image.id, "label": e.label, "subject_ref": image.subject_ref,
            "sha256": image.sha256, "agreement_id": agreement.id, "quality": round(e.quality, 6),
            "model_id": image.template_model, "review_date": e.review_date.isoformat(),
            "template_f32le": base64.b64encode(np.frombuffer(template, dtype="<f4").tobytes()).decode(),
        })
    models = sorted({i["model_id"] for i in items})
    if len(models) != 1:
        raise RuleViolation(f"watchlist {dep.watchlist_id} holds templates of {len(models)} face models "
                            f"({', '.join(models)}): re-template it under one model before it is deployed")
    doc = {"deployment_id": dep.id, "watchlist_id": dep.watchlist_id, "model_id": models[0], "entries": items}
    body = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    return body, items


# (model id, watchlist size) -> the model's FPIR-1% threshold on a calibration cohort, or None
FloorFn = Callable[[str, int], "float | None"]


def authorise(ctx: Ctx, actor: Actor, deployment_id: int, note: str = "",
              require_police_review: bool = False, threshold_reason: str = "",
              floor_fn: FloorFn | None = None) -> Deployment:
    """An authorising officer of the force that supplied every image on the watchlist, of the
    required rank and never the requester, approves the deployment (and may require that only
    police reviewers confirm its alerts); the watchlist is frozen into an encrypted snapshot
    whose SHA-256 is recorded in the audit log.

    A threshold looser than the model's FPIR-1% point for the watchlist's size (on the
    configured calibration cohort through ``floor_fn``, else on the model's own LFW table)
    is refused unless ``threshold_reason`` records why."""
    from openlfr.face.registry import threshold_floor

    user = ctx.require(actor, {Role.AUTHORISING_OFFICER}, "deployment.authorise", "deployment", deployment_id,
                       kinds={OrgKind.POLICE_FORCE})
    dep = ctx.get(Deployment, deployment_id, "deployment")
    if dep.requested_by_id == user.id:
        raise PermissionDenied("the requester of a deployment cannot authorise it")
    _require_authority_rank(ctx, user, dep, "authorising")
    if dep.status != "requested":
        raise RuleViolation(f"deployment {deployment_id} is {dep.status}; only a requested one can be authorised")
    if dep.end <= ctx.now():
        raise RuleViolation(f"deployment {deployment_id}'s window has already passed")
    body, items = _snapshot_bytes(ctx, dep)
    forces = {ctx.get(Agreement, i["agreement_id"], "agreement").supplier_org_id for i in items}
    if forces != {user.organisation_id}:
        raise PermissionDenied(f"deployment {deployment_id}'s watchlist holds images of another force: only an "
                               f"officer of the force that supplied every image may authorise it")
    model, size = items[0]["model_id"], len(items)
    floor = floor_fn(model, size) if floor_fn is not None else None
    floor = floor if floor is not None else threshold_floor(model, size)
    if floor is not None and dep.threshold < floor and not threshold_reason.strip():
        raise RuleViolation(f"threshold {dep.threshold:g} is looser than face model {model}'s FPIR-1% point "
                            f"({floor:.4f}) for a watchlist of {size}: more than 1 in 100 passers-by on no list would "
                            "raise an alert; raise the threshold or record the reason")
    calibrated = (dep.calibration or {}).get("model_id")
    if calibrated and calibrated != items[0]["model_id"]:
        raise RuleViolation(f"deployment {deployment_id}'s threshold was calibrated for face model {calibrated}, "
                            f"but its watchlist's templates are {items[0]['model_id']}'s: request it again")
    if require_police_review:
        dep.police_review_required = True
    # what the officer was shown, frozen with the authority: later changes to the watchlist do
    # not change what was authorised
    dep.composition = composition(ctx, dep.watchlist_id)
    dep.snapshot_hash = hashlib.sha256(body).hexdigest()
    dep.snapshot_blob = ctx.blobs.put(body)
    dep.snapshot_size = len(items)
    dep.model_id = items[0]["model_id"]
    for item in items:
        ctx.session.add(SnapshotItem(deployment_id=dep.id, shared_image_id=item["shared_image_id"]))
    dep.status, dep.authorised_by_id, dep.authorised_at = "authorised", user.id, ctx.now()
    if dep.urgent:
        dep.retro_review_due = dep.authorised_at + timedelta(hours=ctx.policy.urgent_review_hours)
    ctx.audit(actor, "deployment.authorise", "deployment", dep.id, note=note, snapshot_sha256=dep.snapshot_hash,
              entries=[[i["entry_id"], i["sha256"]] for i in items], threshold=dep.threshold, rank=user.rank,
              model=dep.model_id,
              police_review_required=dep.police_review_required,
              threshold_floor=None if floor is None else round(floor, 6),
              threshold_reason=threshold_reason.strip() if floor is not None and dep.threshold < floor else "",
              composition=dep.composition, urgent=dep.urgent, retro_review_due=dep.retro_review_due)
    return dep


def _require_authority_rank(ctx: Ctx, user: User, dep: Deployment, doing: str) -> None:
    """Refuse an officer below the rank needed to decide ``dep``: the usual minimum, or
    ``policy.urgent_min_rank`` for a deployment requested by the urgency route."""
    minimum = ctx.policy.urgent_min_rank if dep.urgent else ctx.policy.min_authorising_rank
    if not at_least(user.rank, minimum):
        route = "by the urgency route " if dep.urgent else ""
        raise PermissionDenied(f"{doing} a deployment {route}needs an authorising officer of rank "
                               f"{minimum.replace('_', ' ')} or above; {user.name} is "
                               f"{(user.rank or 'of no recorded rank').replace('_', ' ')}")


def _supplying_forces(ctx: Ctx, watchlist_id: int) -> set[int]:
    """The forces that supplied the images on the watchlist now."""
    return _forces(ctx.session.execute(
        select(Agreement.supplier_org_id).join(SharedImage, SharedImage.agreement_id == Agreement.id)
        .join(WatchlistEntry, WatchlistEntry.shared_image_id == SharedImage.id)
        .where(WatchlistEntry.watchlist_id == watchlist_id, WatchlistEntry.removed_at.is_(None))).scalars())


def _forces(org_ids: Iterable[int | None]) -> set[int]:
    # an agreement's supplier_org_id is always set; the column is nullable only for older stores
    return {org_id for org_id in org_ids if org_id is not None}


def forces_of(ctx: Ctx, dep: Deployment) -> set[int]:
    """The police forces whose images the deployment uses: those frozen with its authority,
    else (never authorised) those supplying its watchlist now."""
    frozen = _snapshot_agreements(ctx, dep)
    if not frozen:
        return _supplying_forces(ctx, dep.watchlist_id)
    return _forces(ctx.session.execute(select(Agreement.supplier_org_id).where(Agreement.id.in_(frozen))).scalars())


def refuse(ctx: Ctx, actor: Actor, deployment_id: int, reason: str) -> Deployment:
    """An authorising officer of a force that supplied images on the watchlist, of the rank
    needed to authorise it and never the requester, refuses a requested deployment (with the
    reason, which is audited). A refused deployment cannot be authorised or started."""
    user = ctx.require(actor, {Role.AUTHORISING_OFFICER}, "deployment.refuse", "deployment", deployment_id,
                       kinds={OrgKind.POLICE_FORCE})
    dep = ctx.get(Deployment, deployment_id, "deployment")
    if dep.requested_by_id == user.id:
        raise PermissionDenied("the requester of a deployment cannot decide on it")
    if not reason.strip():
        raise InputError("a refusal needs its reason")
    if user.organisation_id not in _supplying_forces(ctx, dep.watchlist_id):
        raise PermissionDenied(f"deployment {deployment_id}'s watchlist holds no images of your force: only an officer "
                               "of a supplying force may decide on it")
    _require_authority_rank(ctx, user, dep, "refusing")
    if dep.status != "requested":
        raise RuleViolation(f"deployment {deployment_id} is {dep.status}; only a requested one can be refused")
    dep.status, dep.ended_at = "refused", ctx.now()
    ctx.audit(actor, "deployment.refuse", "deployment", dep.id, reason=reason.strip(), rank=user.rank)
    ctx.checkpoint(f"deployment {dep.id} refused")
    return dep


def retro_review(ctx: Ctx, actor: Actor, deployment_id: int, outcome: str, note: str) -> Deployment:
    """The retrospective review of an urgent authority, by an authorising officer of the same
    force, of the usual minimum rank and not the one who authorised it urgently: "upheld" lets
    the deployment run on; "ended" ends it (or cancels it if not yet live). Due within
    ``policy.urgent_review_hours`` of the authority; once overdue only "ended" is accepted (and
    :func:`sweep` ends it anyway)."""
    from openlfr.governance.agreements import require_rank

    user = ctx.require(actor, {Role.AUTHORISING_OFFICER}, "deployment.retro_review", "deployment", deployment_id,
                       kinds={OrgKind.POLICE_FORCE})
    if outcome not in RETRO_OUTCOMES:
        raise InputError(f"the outcome of a review is {' or '.join(RETRO_OUTCOMES)}, not {outcome!r}")
    if not note.strip():
        raise InputError("a retrospective review needs a note of its reasons")
    dep = ctx.get(Deployment, deployment_id, "deployment")
    if not dep.urgent or dep.authorised_by_id is None:
        raise RuleViolation(f"deployment {deployment_id} was not authorised by the urgency route: nothing to review")
    ctx.require_member(user, ctx.get(User, dep.authorised_by_id, "user").organisation_id,
                       f"review deployment {deployment_id}")
    if user.id in (dep.authorised_by_id, dep.requested_by_id):
        raise PermissionDenied("the officer who authorised an urgent deployment (or requested it) cannot review it")
    require_rank(ctx, user, "reviewing an urgent deployment")
    if dep.retro_review_outcome is not None:
        raise RuleViolation(f"deployment {deployment_id} was already reviewed ({dep.retro_review_outcome})")
    if dep.status not in ("authorised", "live"):
        raise RuleViolation(f"deployment {deployment_id} is {dep.status}: there is nothing left to review")
    now = ctx.now()
    if outcome == "upheld" and dep.retro_review_due is not None and now > dep.retro_review_due:
        raise RuleViolation(f"deployment {deployment_id}'s review was due by "
                            f"{dep.retro_review_due:%Y-%m-%d %H:%M} UTC; too late to uphold it: it must end")
    dep.retro_reviewed_by_id, dep.retro_reviewed_at, dep.retro_review_outcome = user.id, now, outcome
    if outcome == "ended":
        _close_leases(ctx, [dep])
        dep.status = "ended" if dep.status == "live" else "cancelled"
        dep.ended_at = now
    ctx.audit(actor, "deployment.retro_review", "deployment", dep.id, outcome=outcome, note=note.strip(),
              rank=user.rank, status=dep.status)
    if outcome == "ended":
        ctx.checkpoint(f"deployment {dep.id} {'end' if dep.status == 'ended' else 'cancel'}")
    return dep


def _runner(ctx: Ctx, actor: Actor, action: str, dep_id: int) -> tuple[User, Deployment]:
    """The deployment, if the actor is an operator admin of its organisation or an
    authorising officer of the force that authorised it."""
    user = ctx.require(actor, {Role.OPERATOR_ADMIN, Role.AUTHORISING_OFFICER}, action, "deployment", dep_id)
    dep = ctx.get(Deployment, dep_id, "deployment")
    if Role(user.role) is Role.AUTHORISING_OFFICER and dep.authorised_by_id is not None:
        side = ctx.get(User, dep.authorised_by_id, "user").organisation_id
    else:
        side = dep.organisation_id
    ctx.require_member(user, side, f"{action.split('.')[-1]} deployment {dep_id}")
    return user, dep


def agreements_out_of_force(ctx: Ctx, agreement_ids: set[int], at: datetime) -> dict[int, str]:
    """Of ``agreement_ids``, those under which images may not be used at ``at`` (suspended,
    ended, expired or not yet valid), each with the reason."""
    out: dict[int, str] = {}
    for agreement_id in sorted(agreement_ids):
        agreement = ctx.session.get(Agreement, agreement_id)
        if agreement is None:
            out[agreement_id] = "no longer exists"
        elif agreement.status != "active":
            out[agreement_id] = f"is {agreement.status}"
        elif not agreement.valid_from <= at < agreement.valid_until:
            out[agreement_id] = (f"is valid only from {agreement.valid_from:%Y-%m-%d %H:%M} "
                                 f"to {agreement.valid_until:%Y-%m-%d %H:%M} UTC")
    return out


def _snapshot_agreements(ctx: Ctx, dep: Deployment) -> set[int]:
    return set(ctx.session.execute(
        select(SharedImage.agreement_id).join(SnapshotItem, SnapshotItem.shared_image_id == SharedImage.id)
        .where(SnapshotItem.deployment_id == dep.id)).scalars())


def _open_leases(ctx: Ctx, dep: Deployment) -> None:
    """A live deployment's camera leases (:mod:`openlfr.pipeline.leases`): host agents start its cameras."""
    from openlfr.pipeline.leases import open_leases

    open_leases(ctx, dep)


def _close_leases(ctx: Ctx, deps: Iterable[Deployment]) -> None:
    """The camera leases of the live ones of ``deps``, which are ending: their workers stop.
    Called before the transaction's audit events (lease rows are locked before the audit head)."""
    from openlfr.pipeline.leases import close_leases

    for dep in deps:
        if dep.status == "live":
            close_leases(ctx, dep.id)


def start(ctx: Ctx, actor: Actor, deployment_id: int) -> Deployment:
    """Go live: only an authorised deployment, inside its window, on cameras each with a current
    signage check recorded for this deployment."""
    _, dep = _runner(ctx, actor, "deployment.start", deployment_id)
    now = ctx.now()
    if dep.status != "authorised":
        raise RuleViolation(f"deployment {deployment_id} is {dep.status}; only an authorised one can start")
    if not dep.start <= now < dep.end:
        raise RuleViolation(f"deployment {deployment_id} may run only from {dep.start:%Y-%m-%d %H:%M} "
                            f"to {dep.end:%Y-%m-%d %H:%M} UTC")
    if dep.snapshot_blob is None:
        raise RuleViolation(f"deployment {deployment_id}'s watchlist snapshot has been deleted")
    stopped = agreements_out_of_force(ctx, _snapshot_agreements(ctx, dep), now)
    if stopped:
        raise RuleViolation(f"deployment {deployment_id} cannot start: its watchlist uses images shared under "
                            + "; ".join(f"agreement {a}, which {why}" for a, why in stopped.items()))
    for cam in dep.cameras if dep.kind == DeploymentKind.LIVE else []:
        if current_signage(ctx, cam.id, now.date(), deployment_id=dep.id) is None:
            raise RuleViolation(f"camera {cam.name!r} has no signage check recorded for deployment {dep.id} in the "
                                f"last {ctx.policy.signage_max_age_days} days: deployment cannot start")
    dep.status, dep.started_at = "live", now
    _open_leases(ctx, dep)  # its cameras' leases, before the audit head is locked (as workers lock them)
    ctx.audit(actor, "deployment.start", "deployment", dep.id, cameras=[c.id for c in dep.cameras])
    ctx.checkpoint(f"deployment {dep.id} start")
    return dep


def end(ctx: Ctx, actor: Actor, deployment_id: int, reason: str = "") -> Deployment:
    """Stop a deployment (or cancel one not yet live)."""
    _, dep = _runner(ctx, actor, "deployment.end", deployment_id)
    if dep.status not in OPEN_STATUSES:
        raise RuleViolation(f"deployment {deployment_id} is already {dep.status}")
    _close_leases(ctx, [dep])
    dep.status = "ended" if dep.status == "live" else "cancelled"
    dep.ended_at = ctx.now()
    ctx.audit(actor, f"deployment.{'end' if dep.status == 'ended' else 'cancel'}", "deployment", dep.id, reason=reason)
    ctx.checkpoint(f"deployment {dep.id} {'end' if dep.status == 'ended' else 'cancel'}")
    return dep


def set_threshold(ctx: Ctx, actor: Actor, deployment_id: int, threshold: float) -> Deployment:
    """Change the threshold; allowed only before authorisation (it is part of what is authorised)."""
    user = ctx.require(actor, {Role.OPERATOR_ADMIN}, "deployment.threshold", "deployment", deployment_id)
    dep = ctx.get(Deployment, deployment_id, "deployment")
    ctx.require_member(user, dep.organisation_id, f"change the threshold of deployment {deployment_id}")
    if dep.status != "requested":
        raise RuleViolation(f"deployment {deployment_id} is {dep.status}: its threshold is locked")
    if not 0 < threshold <= 1:
        raise InputError("threshold must be in (0, 1]")
    old, dep.threshold = dep.threshold, threshold
    # a threshold set by hand is no longer the calibrated one
    dep.target_false_alert_rate, dep.calibration = None, None
    ctx.audit(actor, "deployment.threshold", "deployment", dep.id, old=old, new=threshold)
    return dep


def live_watchlist(ctx: Ctx, deployment_id: int, camera_id: int, at: datetime,
                   worker: str = "matcher") -> LiveWatchlist:
    """The frozen templates of a live deployment, for one of its cameras, at time ``at``.

    Refused (:class:`RuleViolation`) unless the deployment is live, ``at`` lies in its
    window, the camera belongs to it and the snapshot still exists and matches its hash.
    The agreements are checked again on every load: the images of an agreement suspended or
    out of its window since authorisation are left out (and that is audited); with none left,
    there are no templates. So are entries whose review date has passed (before today, UTC):
    an entry is used up to the end of its review day, never after; ``next_change`` says when
    the next one passes, so that the caller loads the watchlist again then. Each load is
    audited (``deployment.watchlist``); a camera already holding the watchlist re-checks it
    with :func:`recheck_watchlist` instead. The decoded snapshot comes from this process's
    :data:`SNAPSHOTS` (decrypted and checked against its hash on first use).
    """
    ctx.attempt = (worker, "deployment.watchlist", "deployment", str(deployment_id))
    dep = _live_deployment(ctx, deployment_id, camera_id, at)
    snap = SNAPSHOTS.get(ctx, dep)
    use = _usable(ctx, dep, snap)
    _audit_drops(ctx, worker, dep, camera_id, snap, use, among=None)
    ctx.audit(worker, "deployment.watchlist", "deployment", dep.id, camera=camera_id, entries=len(use.keep))
    return _cut(dep, camera_id, snap, use)


def recheck_watchlist(ctx: Ctx, current: LiveWatchlist, at: datetime, worker: str = "matcher") -> LiveWatchlist:
    """The periodic re-check of the watchlist a camera holds: every rule of :func:`live_watchlist`
    again, reading only the deployment's state (status, window, cameras, the snapshot row and
    its hash, the agreements), the entries' agreements and review dates taken from the cached
    snapshot (:data:`SNAPSHOTS`: no decryption while it is cached).

    Returns ``current`` itself, writing nothing, when nothing changed. Otherwise the new
    watchlist, with the change audited: the entries dropped (``deployment.watchlist_drop``, as
    a load audits them) and entries back in use (an agreement in force again) as a new
    ``deployment.watchlist``. A deployment no longer usable is refused as a load is (the
    transaction then records ``deployment.watchlist.refused``).
    """
    ctx.attempt = (worker, "deployment.watchlist", "deployment", str(current.deployment_id))
    dep = _live_deployment(ctx, current.deployment_id, current.camera_id, at)
    if dep.snapshot_hash != current.snapshot_hash:
        raise RuleViolation(f"deployment {dep.id}'s snapshot is no longer the one in use: no templates")
    snap = SNAPSHOTS.get(ctx, dep)
    use = _usable(ctx, dep, snap)
    ids = [snap.entries[k].entry_id for k in use.keep]
    if ids == current.entry_ids and use.next_change == current.next_change and dep.threshold == current.threshold:
        return current
    _audit_drops(ctx, worker, dep, current.camera_id, snap, use, among=set(current.entry_ids))
    if set(ids) - set(current.entry_ids):
        ctx.audit(worker, "deployment.watchlist", "deployment", dep.id, camera=current.camera_id, entries=len(ids))
    return _cut(dep, current.camera_id, snap, use)


@dataclass(frozen=True)
class SnapshotEntry:
    """One entry of a decoded snapshot (its template is the same row of the snapshot's templates)."""

    entry_id: int
    label: str
    agreement_id: int
    review_date: date | None  # frozen in the snapshot; None: a snapshot older than that (the entry's own is read)
    subject_ref: str = ""  # the supplier's pseudonymous code of the person

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> SnapshotEntry:
        """The entry of one item of the snapshot's JSON."""
        due = item.get("review_date")
        return cls(int(item["entry_id"]), str(item.get("label", "")), int(item.get("agreement_id", 0)),
                   date.fromisoformat(due) if due else None, str(item.get("subject_ref", "")).strip())


def person_keys(entries: Sequence[SnapshotEntry]) -> dict[int, int]:
    """Entry id -> the lowest entry id of the same person, for the entries that share a person
    with another: the same subject reference under the same agreement (a supplier's code names
    one person within its own sharing). Two images of one suspect are two entries; a pass of
    that person is still one pass, so a track that breaks and matches the other image does not
    alert again. Codes are not compared across agreements: two suppliers' codes may collide, and
    joining two different people would hide an alert."""
    first: dict[tuple[int, str], int] = {}
    for e in entries:
        if e.subject_ref:
            key = (e.agreement_id, e.subject_ref)
            first[key] = min(first.get(key, e.entry_id), e.entry_id)
    return {e.entry_id: first[(e.agreement_id, e.subject_ref)] for e in entries
            if e.subject_ref and first[(e.agreement_id, e.subject_ref)] != e.entry_id}


@dataclass(frozen=True)
class DecodedSnapshot:
    """A deployment's snapshot, decrypted, checked against its recorded hash and decoded."""

    snapshot_hash: str
    model_id: str
    entries: tuple[SnapshotEntry, ...]
    templates: np.ndarray  # (N, D) float32 unit rows, read-only


def decode_snapshot(ctx: Ctx, dep: Deployment) -> DecodedSnapshot:
    """Decrypt ``dep``'s snapshot, check it against the recorded hash and decode it."""
    assert dep.snapshot_blob is not None
    body = ctx.blobs.get(dep.snapshot_blob)
    if hashlib.sha256(body).hexdigest() != dep.snapshot_hash:
        raise RuleViolation(f"deployment {dep.id}'s snapshot does not match its recorded hash")
    doc = json.loads(body)
    items = doc["entries"]
    templates = np.stack([np.frombuffer(base64.b64decode(i["template_f32le"]), dtype="<f4") for i in items])
    templates = templates.astype(np.float32)
    templates.flags.writeable = False  # shared by every watchlist cut from it
    return DecodedSnapshot(
        snapshot_hash=dep.snapshot_hash or "",
        # snapshots frozen before templates knew their model were all the dlib ResNet's
        model_id=doc.get("model_id", DLIB_RESNET_ID),
        entries=tuple(SnapshotEntry.from_item(i) for i in items),
        templates=templates)


class SnapshotCache:
    """Decoded snapshots by snapshot hash, the least recently used dropped beyond ``capacity``.

    One per process (:data:`SNAPSHOTS`): a camera worker keeps the snapshot it matches against,
    so that its periodic re-check need not decrypt, hash and decode the whole snapshot again.
    Workers started by a host agent are handed the host's copy, decoded once per host and
    mapped read-only from a sealed memory file (:mod:`openlfr.pipeline.shared_snapshots`,
    :meth:`put`); the decoded templates are biometric data and are never written to disk in
    clear. The hash is the SHA-256 of the snapshot's bytes, checked when they are decrypted: an
    entry found here is exactly the snapshot the deployment recorded, which can never change
    under its hash; a snapshot deleted since is refused by its deployment's row, not found here.
    """

    def __init__(self, capacity: int = 4) -> None:
        self.capacity = capacity
        self._items: OrderedDict[str, DecodedSnapshot] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, ctx: Ctx, dep: Deployment) -> DecodedSnapshot:
        """``dep``'s decoded snapshot: cached, or decrypted and checked now (:func:`decode_snapshot`)."""
        digest = dep.snapshot_hash or ""
        with self._lock:
            found = self._items.get(digest)
            if found is not None:
                self._items.move_to_end(digest)
                return found
        snap = decode_snapshot(ctx, dep)  # outside the lock: a large snapshot takes a while
        self.put(snap)
        return snap

    def put(self, snap: DecodedSnapshot) -> None:
        """Cache ``snap`` under its hash (decoded and checked elsewhere: the host agent's copy)."""
        with self._lock:
            self._items[snap.snapshot_hash] = snap
            self._items.move_to_end(snap.snapshot_hash)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)

    def clear(self) -> None:
        """Forget every snapshot."""
        with self._lock:
            self._items.clear()


#: this process's decoded snapshots (see :class:`SnapshotCache`)
SNAPSHOTS = SnapshotCache()


@dataclass(frozen=True)
class _Usable:
    """What of a snapshot may be used now, and why the rest may not."""

    after_agreements: list[int]  # positions whose agreement is in force
    keep: list[int]  # positions usable now (agreement in force, review date not passed)
    stopped: dict[int, str]  # agreement id -> why it is not in force
    expired: dict[int, date]  # entry id -> its passed review date
    next_change: datetime | None  # when the next entry in use passes its review date (within the window)


def _live_deployment(ctx: Ctx, deployment_id: int, camera_id: int, at: datetime) -> Deployment:
    """The deployment, if its templates may be used on ``camera_id`` at ``at`` (else :class:`RuleViolation`)."""
    dep = ctx.get(Deployment, deployment_id, "deployment")
    if dep.status != "live":
        raise RuleViolation(f"deployment {deployment_id} is {dep.status}, not live: no templates")
    # a live deployment matches frames captured in its window; a retrospective one searches
    # recorded footage, but only while its own window is open
    when = at if dep.kind == DeploymentKind.LIVE else ctx.now()
    if not dep.start <= when < dep.end:
        raise RuleViolation(f"{when:%Y-%m-%d %H:%M} UTC is outside deployment {deployment_id}'s window: no templates")
    if camera_id not in {c.id for c in dep.cameras}:
        raise RuleViolation(f"camera {camera_id} is not part of deployment {deployment_id}: no templates")
    if dep.snapshot_blob is None:
        raise RuleViolation(f"deployment {deployment_id}'s snapshot has been deleted: no templates")
    return dep


def _usable(ctx: Ctx, dep: Deployment, snap: DecodedSnapshot) -> _Usable:
    """The snapshot's entries usable now: their agreement in force, their review date not passed."""
    entries = snap.entries
    stopped = agreements_out_of_force(ctx, {e.agreement_id for e in entries}, ctx.now())
    after = [k for k, e in enumerate(entries) if e.agreement_id not in stopped]
    reviews = _review_dates(ctx, [entries[k] for k in after])
    today = ctx.now().date()
    expired = {entries[k].entry_id: due for k in after
               if (due := reviews[entries[k].entry_id]) is not None and due < today}
    keep = [k for k in after if entries[k].entry_id not in expired]
    upcoming = [d for d in (reviews[entries[k].entry_id] for k in keep) if d is not None]
    # an entry still in use today drops out at the start of the day after its review date
    change = datetime.combine(min(upcoming) + timedelta(days=1), time(0), tzinfo=UTC) if upcoming else None
    return _Usable(after, keep, stopped, expired, change if change is not None and change < dep.end else None)


def _audit_drops(ctx: Ctx, worker: str, dep: Deployment, camera_id: int, snap: DecodedSnapshot, use: _Usable,
                 among: set[int] | None) -> None:
    """Audit the entries left out (of those ``among``, the ones in use; ``None``: all), and refuse
    when none is left."""
    def considered(k: int) -> bool:
        return among is None or snap.entries[k].entry_id in among

    lost = {snap.entries[k].agreement_id for k in range(len(snap.entries))
            if considered(k) and snap.entries[k].agreement_id in use.stopped}
    if lost:
        ctx.audit(worker, "deployment.watchlist_drop", "deployment", dep.id, camera=camera_id,
                  left=sum(1 for k in use.after_agreements if considered(k)), reason="agreement no longer in force",
                  agreements={str(a): why for a, why in use.stopped.items() if a in lost})
    if not use.after_agreements:
        raise RuleViolation(f"deployment {dep.id}: every image of its watchlist was shared under an "
                            "agreement no longer in force: no templates")
    expired = {snap.entries[k].entry_id for k in use.after_agreements
               if considered(k) and snap.entries[k].entry_id in use.expired}
    if expired:
        ctx.audit(worker, "deployment.watchlist_drop", "deployment", dep.id, camera=camera_id,
                  left=sum(1 for k in use.keep if considered(k)), reason="review date passed",
                  entries={str(e): use.expired[e].isoformat() for e in sorted(expired)})
    if not use.keep:
        raise RuleViolation(f"deployment {dep.id}: every entry of its watchlist is past its review date: "
                            "no templates")


def _cut(dep: Deployment, camera_id: int, snap: DecodedSnapshot, use: _Usable) -> LiveWatchlist:
    """The live watchlist of the usable entries of ``snap``."""
    return LiveWatchlist(
        deployment_id=dep.id, camera_id=camera_id, entry_ids=[snap.entries[k].entry_id for k in use.keep],
        labels=[snap.entries[k].label for k in use.keep], templates=snap.templates[use.keep],
        threshold=dep.threshold, snapshot_hash=snap.snapshot_hash, valid_until=dep.end, model_id=snap.model_id,
        agreement_ids=sorted({snap.entries[k].agreement_id for k in use.keep}), next_change=use.next_change,
        person_of=person_keys(snap.entries),  # over the whole snapshot: stable while entries drop out
    )


def _review_dates(ctx: Ctx, entries: Sequence[SnapshotEntry | dict[str, Any]]) -> dict[int, date | None]:
    """Each snapshot entry's (or item's) review date: frozen in the snapshot, or (snapshots frozen
    before review dates were) the entry's own; None for an entry that no longer exists."""
    out: dict[int, date | None] = {}
    for e in (e if isinstance(e, SnapshotEntry) else SnapshotEntry.from_item(e) for e in entries):
        if e.review_date is not None:
            out[e.entry_id] = e.review_date
        else:
            entry = ctx.session.get(WatchlistEntry, e.entry_id)
            out[e.entry_id] = entry.review_date if entry is not None else None
    return out


def delete_snapshot(ctx: Ctx, dep: Deployment, actor: Actor | str, reason: str) -> None:
    """Delete a deployment's snapshot blob; its hash stays as proof of what was used."""
    if dep.snapshot_blob is None:
        return
    ctx.blobs.delete(dep.snapshot_blob)
    dep.snapshot_blob, dep.snapshot_deleted_at = None, ctx.now()
    ctx.audit(actor, "deployment.snapshot_delete", "deployment", dep.id, snapshot_sha256=dep.snapshot_hash,
              reason=reason)


def drop_snapshots_with_image(ctx: Ctx, image_id: int, actor: Actor | str, reason: str) -> None:
    """An image is being deleted: delete every snapshot still holding its template, ending
    any live deployment that used it (its authorised watchlist no longer exists)."""
    deps = ctx.session.execute(
        select(Deployment).join(SnapshotItem, SnapshotItem.deployment_id == Deployment.id)
        .where(SnapshotItem.shared_image_id == image_id, Deployment.snapshot_blob.is_not(None))
    ).scalars().all()
    _close_leases(ctx, [dep for dep in deps if dep.status in OPEN_STATUSES])
    for dep in deps:
        if dep.status in OPEN_STATUSES:
            dep.status = "ended" if dep.status == "live" else "cancelled"
            dep.ended_at = ctx.now()
            ctx.audit(actor, "deployment.stop_on_purge", "deployment", dep.id, image=image_id, reason=reason)
            ctx.checkpoint(f"deployment {dep.id} {'end' if dep.status == 'ended' else 'cancel'}")
        delete_snapshot(ctx, dep, actor, reason)


def sweep(ctx: Ctx, actor: str = "system:retention") -> tuple[list[int], list[int]]:
    """End live deployments past their end, and urgent ones whose retrospective review is
    overdue; delete snapshots past end + retention.

    Returns (ended ids, ids whose snapshot was deleted).
    """
    now = ctx.now()
    ended = []
    expired = list(ctx.session.execute(
        select(Deployment).where(Deployment.status.in_(OPEN_STATUSES), Deployment.end <= now)).scalars())
    overdue = [dep for dep in ctx.session.execute(  # urgent authorities nobody reviewed in time lapse
        select(Deployment).where(Deployment.status.in_(("authorised", "live")), Deployment.urgent.is_(True),
                                 Deployment.retro_review_outcome.is_(None), Deployment.retro_review_due <= now)
    ).scalars() if dep not in expired]
    _close_leases(ctx, expired + overdue)  # every lease row first, then the audit head (the workers' order)
    for dep in expired:
        dep.status = "ended" if dep.status == "live" else "cancelled"
        dep.ended_at = dep.end
        ended.append(dep.id)
        ctx.audit(actor, "deployment.expire", "deployment", dep.id)
    for dep in overdue:
        dep.status = "ended" if dep.status == "live" else "cancelled"
        dep.ended_at = now
        ended.append(dep.id)
        ctx.audit(actor, "deployment.retro_review_overdue", "deployment", dep.id, due=dep.retro_review_due)
    if ended:  # deployments stopped: sign the head, as at a deployment's end
        ctx.checkpoint("deployment " + ", ".join(map(str, ended)) + " expired")
    keep = timedelta(hours=ctx.policy.snapshot_retention_hours)
    deleted = []
    for dep in ctx.session.execute(
        select(Deployment).where(Deployment.status.in_(("ended", "cancelled")), Deployment.snapshot_blob.is_not(None))
    ).scalars():
        if (dep.ended_at or dep.end) + keep <= now:
            delete_snapshot(ctx, dep, actor, f"{ctx.policy.snapshot_retention_hours:g} h after the deployment ended")
            deleted.append(dep.id)
    return ended, deleted


def list_deployments(ctx: Ctx, actor: Actor) -> list[Deployment]:
    """The deployments the actor's organisation runs, or (for a police force) that use its
    images or that its officers authorised; an oversight body's auditors see all. Oldest first."""
    me = ctx.require(actor, None, "deployment.list")
    query = select(Deployment).order_by(Deployment.id)
    if not ctx.oversees(me):
        # frozen with the force's images (authorised), or waiting for the force (requested: its
        # watchlist holds the force's images now), or authorised by one of its officers
        frozen = select(SnapshotItem.deployment_id).join(SharedImage, SharedImage.id == SnapshotItem.shared_image_id) \
            .join(Agreement, Agreement.id == SharedImage.agreement_id) \
            .where(Agreement.supplier_org_id == me.organisation_id)
        listing = select(WatchlistEntry.watchlist_id) \
            .join(SharedImage, SharedImage.id == WatchlistEntry.shared_image_id) \
            .join(Agreement, Agreement.id == SharedImage.agreement_id) \
            .where(Agreement.supplier_org_id == me.organisation_id, WatchlistEntry.removed_at.is_(None))
        by_force = select(User.id).where(User.organisation_id == me.organisation_id)
        query = query.where((Deployment.organisation_id == me.organisation_id) | Deployment.id.in_(frozen)
                            | ((Deployment.status == "requested") & Deployment.watchlist_id.in_(listing))
                            | Deployment.authorised_by_id.in_(by_force))
    return list(ctx.session.execute(query).scalars())


__all__ = [
    "Calibrator", "LiveWatchlist", "authorise", "check_grounds", "delete_snapshot", "drop_snapshots_with_image", "end",
    "list_deployments", "live_watchlist", "recheck_watchlist", "refuse", "request", "request_from", "retro_review",
    "set_threshold", "start", "sweep",
]
