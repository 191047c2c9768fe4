"""Cameras and their public-notice (signage) records."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import select

from openlfr.errors import InputError, NotFoundError
from openlfr.governance.camera_sources import check_camera_source, parse_networks
from openlfr.governance.context import Ctx
from openlfr.governance.credentials import Actor
from openlfr.governance.errors import DuplicateError, PermissionDenied
from openlfr.governance.schemas import CameraCreate, CameraUpdate, Role, SignageCreate, parse
from openlfr.store.models import Camera, CameraGap, CameraStatus, Deployment, SignageRecord


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


def mask_address(address: str | None) -> str:
    """A camera address with any password hidden (``rtsp://user:***@host/...``), for audit
    events, lists and pages; other addresses unchanged."""
    address = address or ""
    try:
        parts = urlsplit(address)
        if parts.password is None:
            return address
        host = parts.netloc.rsplit("@", 1)[1]
    except ValueError:  # not a URL that can be split: show nothing of it rather than a secret
        return "(unreadable address)"
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


def update_camera(ctx: Ctx, actor: Actor, camera_id: int, data: CameraUpdate | dict[str, Any]) -> Camera:
    """Change a camera's location, zone, address or analysis settings (an operator admin of the
    camera's organisation). A new address passes the checks :func:`add_camera` makes; settings
    are validated as :class:`openlfr.pipeline.settings.CameraSettings` and only those that differ
    from the defaults are kept. Audited (``camera.update``) with old and new values, addresses
    with any password masked. ``data`` may be raw fields (a form): they are parsed after the
    caller is checked, so a refusal is audited."""
    from openlfr.pipeline.settings import CameraSettings

    user = ctx.require(actor, {Role.OPERATOR_ADMIN}, "camera.update", "camera", camera_id)
    if isinstance(data, dict):
        data = parse(CameraUpdate, **data)
    camera = ctx.get(Camera, camera_id, "camera")
    ctx.require_member(user, camera.organisation_id, f"change camera {camera.id}")
    changes: dict[str, Any] = {}
    if data.stream_url is not None and data.stream_url != camera.stream_url:
        check_camera_source(data.stream_url, user.org.camera_networks or [])
        changes["stream"] = {"old": mask_address(camera.stream_url), "new": mask_address(data.stream_url)}
        camera.stream_url = data.stream_url
    for name in ("location", "zone"):
        new = getattr(data, name)
        if new is not None and new != getattr(camera, name):
            changes[name] = {"old": getattr(camera, name), "new": new}
            setattr(camera, name, new)
    if data.settings is not None:
        merged = dict(camera.settings or {})
        for key, value in data.settings.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        stored = parse(CameraSettings, **merged).stored()
        if stored != (camera.settings or {}):
            changes["settings"] = {"old": dict(camera.settings or {}), "new": stored}
            camera.settings = stored
    if not changes:
        raise InputError("nothing to change: give a new location, zone, stream address or setting")
    ctx.session.flush()
    ctx.audit(actor, "camera.update", "camera", camera.id, name=camera.name, **changes)
    return camera


#: a worker that has not written its status for this long is no longer believed to run
STALE_AFTER = timedelta(seconds=30)


@dataclass
class CameraHealth:
    """A camera as its status page shows it: what its worker last said, and its latest gaps."""

    camera: Camera
    status: CameraStatus | None
    gaps: list[CameraGap] = field(default_factory=list)
    stale: bool = False  # said "running" (or "starting") but has not said anything lately

    @property
    def state(self) -> str:
        """starting, running, stopped, failed, not responding, or never run."""
        if self.status is None:
            return "never run"
        return "not responding" if self.stale else self.status.state


def camera_status(ctx: Ctx, actor: Actor, gaps: int = 5) -> list[CameraHealth]:
    """The status of each camera the actor may see (its organisation's operator admins, reviewers
    and auditors; an oversight body's auditors: every camera) with its ``gaps`` latest gaps.
    Nothing about any face: counts, rates and times only."""
    query = ctx.visible(actor, "camera.status", select(Camera).order_by(Camera.id), Camera.organisation_id,
                        roles={Role.OPERATOR_ADMIN, Role.REVIEWER, Role.AUDITOR})
    now: datetime = ctx.now()
    out = []
    for camera in ctx.session.execute(query).scalars():
        status = ctx.session.get(CameraStatus, camera.id)
        recent = list(ctx.session.execute(select(CameraGap).where(CameraGap.camera_id == camera.id)
                                          .order_by(CameraGap.started_at.desc(), CameraGap.id.desc())
                                          .limit(gaps)).scalars())
        stale = status is not None and status.state in ("starting", "running") and now - status.updated_at > STALE_AFTER
        out.append(CameraHealth(camera, status, recent, stale))
    return out


def find_camera(ctx: Ctx, ref: str | int) -> Camera:
    """A camera by name or by id (every command takes either; a name wins over an id). Finds
    only: whether the caller may use the camera is each service's rule."""
    text = str(ref).strip()
    row = ctx.session.execute(select(Camera).where(Camera.name == text)).scalars().first()
    if row is None and text.isdigit():
        row = ctx.session.get(Camera, int(text))
    if row is None:
        raise NotFoundError(f"no camera named or numbered {text!r} (see openlfr camera list)")
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
