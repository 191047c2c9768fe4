"""Cameras and their public-notice (signage) records."""

from __future__ import annotations

import hashlib
import re
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select

from openlfr.errors import InputError
from openlfr.governance.camera_sources import check_camera_source, parse_networks
from openlfr.governance.context import Ctx
from openlfr.governance.credentials import Actor
from openlfr.governance.errors import DuplicateError, PermissionDenied
from openlfr.governance.schemas import CameraCreate, Role, SignageCreate, parse
from openlfr.store.models import Camera, Deployment, SignageRecord


def add_camera(ctx: Ctx, actor: Actor, data: CameraCreate) -> Camera:
    """Register a camera of the operator admin's organisation."""
    user = ctx.require(actor, {Role.OPERATOR_ADMIN}, "camera.add", "camera", data.name)
    if ctx.session.execute(select(Camera.id).where(Camera.name == data.name)).first() is not None:
        raise DuplicateError(f"a camera named {data.name!r} already exists")
    check_camera_source(data.stream_url, user.org.camera_networks or [])
    row = Camera(name=data.name, location=data.location, zone=data.zone, stream_url=data.stream_url,
                 created_at=ctx.now(), organisation_id=user.organisation_id)
    ctx.session.add(row)
    ctx.session.flush()
    ctx.audit(actor, "camera.add", "camera", row.id, name=row.name, location=row.location, zone=row.zone)
    return row


def set_camera_networks(ctx: Ctx, actor: Actor, networks: list[str]) -> list[str]:
    """An operator admin sets the networks their organisation's cameras may stream from
    (CIDR blocks; an empty list allows none); audited with the old and new lists."""
    user = ctx.require(actor, {Role.OPERATOR_ADMIN}, "camera.networks", "organisation", "-")
    parsed = [str(n) for n in parse_networks(networks)]
    org = user.org
    old, org.camera_networks = list(org.camera_networks or []), parsed
    ctx.audit(actor, "camera.networks", "organisation", org.id, old=old, new=parsed)
    return parsed


def check_camera(ctx: Ctx, camera: Camera) -> None:
    """The camera's address against its organisation's networks now (the worker, at each open)."""
    from openlfr.store.models import Organisation

    org = ctx.session.get(Organisation, camera.organisation_id) if camera.organisation_id else None
    check_camera_source(camera.stream_url, (org.camera_networks if org is not None else None) or [])


#: what a notice must say: that facial recognition is in use (any case, "facial-recognition" too)
_FACIAL_RECOGNITION = re.compile(r"facial[\s-]+recognition", re.IGNORECASE)


def record_signage(ctx: Ctx, actor: Actor, data: SignageCreate, photo: bytes | None = None) -> SignageRecord:
    """Record that the notice at a camera was checked (an operator admin of the camera's organisation).

    Refused unless the check was made no later than today (the recording date) and no more than
    ``policy.signage_backdate_days`` before it, the text says that facial recognition is in use,
    and, when a deployment is named, that deployment is of the admin's organisation and includes
    the camera (a deployment starts only on checks recorded for it). ``photo`` (optional, a JPEG
    or PNG of the notice) goes through the image gate and is stored as an encrypted blob; its
    SHA-256 is kept with the record and audited.
    """
    user = ctx.require(actor, {Role.OPERATOR_ADMIN}, "signage.record", "camera", data.camera_id)
    camera = ctx.get(Camera, data.camera_id, "camera")
    ctx.require_member(user, camera.organisation_id, f"record signage of camera {camera.id}")
    today = ctx.now().date()
    if data.checked_on > today:
        raise InputError(f"signage check date {data.checked_on} is in the future")
    earliest = today - timedelta(days=ctx.policy.signage_backdate_days)
    if data.checked_on < earliest:
        raise InputError(f"signage check date {data.checked_on} is more than {ctx.policy.signage_backdate_days} "
                         f"days before it is recorded ({today}): a check must be recorded when it is made")
    if not _FACIAL_RECOGNITION.search(data.text):
        raise InputError("the notice's text must say that facial recognition is in use")
    if data.deployment_id is not None:
        deployment = ctx.get(Deployment, data.deployment_id, "deployment")
        if deployment.organisation_id != user.organisation_id:
            raise PermissionDenied(f"deployment {deployment.id} is not of {user.organisation}")
        if camera.id not in {c.id for c in deployment.cameras}:
            raise InputError(f"deployment {deployment.id} does not use camera {camera.name!r}")
    photo_blob = photo_sha256 = None
    if photo is not None:
        from openlfr.face.image_gate import gate_image

        if not photo:
            raise InputError("the signage photo is empty")
        clean = gate_image(photo, label="the signage photo").data
        photo_sha256 = hashlib.sha256(clean).hexdigest()
        photo_blob = ctx.blobs.put(clean)
    row = SignageRecord(camera_id=camera.id, text=data.text, checked_on=data.checked_on,
                        deployment_id=data.deployment_id, photo_blob=photo_blob, photo_sha256=photo_sha256,
                        recorded_by_id=user.id, recorded_at=ctx.now())
    ctx.session.add(row)
    ctx.session.flush()
    ctx.audit(actor, "signage.record", "camera", camera.id, text=data.text, checked_on=data.checked_on,
              deployment=data.deployment_id, photo_sha256=photo_sha256)
    return row


def record_signage_from(ctx: Ctx, actor: Actor, fields: dict[str, Any], photo: bytes | None = None) -> SignageRecord:
    """:func:`record_signage` from raw fields (a form, the command line): the caller is checked
    first, so that invalid fields are refused and audited."""
    ctx.require(actor, {Role.OPERATOR_ADMIN}, "signage.record", "camera", fields.get("camera_id", ""))
    return record_signage(ctx, actor, parse(SignageCreate, **fields), photo)


def current_signage(ctx: Ctx, camera_id: int, on: date, deployment_id: int | None = None) -> SignageRecord | None:
    """The newest signage check no later than ``on`` and no older than the policy allows; with
    ``deployment_id``, only a check recorded for that deployment counts."""
    oldest = on - timedelta(days=ctx.policy.signage_max_age_days)
    query = select(SignageRecord).where(
        SignageRecord.camera_id == camera_id, SignageRecord.checked_on <= on, SignageRecord.checked_on >= oldest)
    if deployment_id is not None:
        query = query.where(SignageRecord.deployment_id == deployment_id)
    return ctx.session.execute(
        query.order_by(SignageRecord.checked_on.desc(), SignageRecord.id.desc())).scalars().first()


def signage_photo(ctx: Ctx, record: SignageRecord) -> bytes | None:
    """The decrypted photo of a signage record, if it has one."""
    return ctx.blobs.get(record.photo_blob) if record.photo_blob else None


def list_cameras(ctx: Ctx, actor: Actor) -> list[Camera]:
    """The cameras of the actor's organisation (an oversight body's auditors: all), oldest first."""
    query = ctx.visible(actor, "camera.list", select(Camera).order_by(Camera.id), Camera.organisation_id)
    return list(ctx.session.execute(query).scalars())
