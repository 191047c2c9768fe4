"""Cameras and their public-notice (signage) records."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select

from openlfr.errors import InputError
from openlfr.governance.camera_sources import check_camera_source, parse_networks
from openlfr.governance.context import Ctx
from openlfr.governance.credentials import Actor
from openlfr.governance.errors import DuplicateError
from openlfr.governance.schemas import CameraCreate, Role, SignageCreate
from openlfr.store.models import Camera, SignageRecord


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


def record_signage(ctx: Ctx, actor: Actor, data: SignageCreate) -> SignageRecord:
    """Record that the notice at a camera was checked (an operator admin of the camera's organisation)."""
    user = ctx.require(actor, {Role.OPERATOR_ADMIN}, "signage.record", "camera", data.camera_id)
    camera = ctx.get(Camera, data.camera_id, "camera")
    ctx.require_member(user, camera.organisation_id, f"record signage of camera {camera.id}")
    if data.checked_on > ctx.now().date():
        raise InputError(f"signage check date {data.checked_on} is in the future")
    row = SignageRecord(camera_id=camera.id, text=data.text, checked_on=data.checked_on,
                        recorded_by_id=user.id, recorded_at=ctx.now())
    ctx.session.add(row)
    ctx.session.flush()
    ctx.audit(actor, "signage.record", "camera", camera.id, text=data.text, checked_on=data.checked_on)
    return row


def current_signage(ctx: Ctx, camera_id: int, on: date) -> SignageRecord | None:
    """The newest signage check no later than ``on`` and no older than the policy allows."""
    oldest = on - timedelta(days=ctx.policy.signage_max_age_days)
    return ctx.session.execute(
        select(SignageRecord)
        .where(SignageRecord.camera_id == camera_id, SignageRecord.checked_on <= on, SignageRecord.checked_on >= oldest)
        .order_by(SignageRecord.checked_on.desc(), SignageRecord.id.desc())
    ).scalars().first()


def list_cameras(ctx: Ctx, actor: Actor) -> list[Camera]:
    """The cameras of the actor's organisation (an oversight body's auditors: all), oldest first."""
    query = ctx.visible(actor, "camera.list", select(Camera).order_by(Camera.id), Camera.organisation_id)
    return list(ctx.session.execute(query).scalars())
