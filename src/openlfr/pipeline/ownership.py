"""One worker per camera: a claim in the ``camera_owners`` table, so no camera is analysed
(and counted) twice.

A :class:`~openlfr.pipeline.camera.CameraPipeline` claims its camera when it starts, renews
the claim as it runs and releases it when it finishes. A second claim is refused (and
audited as ``camera.claim.refused``) while the first is unexpired; a claim whose holder died
expires after ``policy.camera_claim_seconds`` and may then be taken over, at once where the
holder was a process on this same machine that no longer exists (a worker the supervisor
restarts after a crash need not wait for its predecessor's claim to expire). The claim is
race-safe: the row is inserted if missing (``ON CONFLICT DO NOTHING``: one primary key per
camera) and then locked (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite's write lock),
as in :mod:`openlfr.governance.throttle`.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import Insert as PgInsert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import Insert as SqliteInsert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from openlfr.governance.context import Ctx
from openlfr.governance.errors import RuleViolation
from openlfr.store.models import CameraOwner


class CameraTaken(RuleViolation):
    """Another worker holds this camera (or took over this worker's expired claim)."""


def owner_name(worker: str) -> str:
    """``<worker>@<host>:<pid>``: who holds a claim, for the refusal message and the audit."""
    return f"{worker}@{socket.gethostname()}:{os.getpid()}"[:200]


def _holder_gone(owner: str) -> bool:
    """Whether ``owner`` (``<worker>@<host>:<pid>``) was a process on this machine that has ended."""
    where = owner.rpartition("@")[2]
    host, _, pid = where.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False  # another machine's worker: only its claim's expiry tells
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # exists, someone else's
        return False
    return False


def _locked_row(ctx: Ctx, camera_id: int, values: dict[str, object]) -> CameraOwner:
    """The camera's claim row, created from ``values`` if missing, locked for this transaction."""
    dialect = ctx.session.get_bind().dialect.name
    # (annotated: each dialect's Insert has on_conflict_do_nothing, their common base does not)
    inserts: dict[str, Callable[[type[CameraOwner]], PgInsert | SqliteInsert]] = {"postgresql": pg_insert,
                                                                               "sqlite": sqlite_insert}
    insert = inserts.get(dialect)
    if insert is not None:
        ctx.session.execute(insert(CameraOwner).values(**values).on_conflict_do_nothing(index_elements=["camera_id"]))
    row = ctx.session.execute(
        select(CameraOwner).where(CameraOwner.camera_id == camera_id).with_for_update()).scalar_one_or_none()
    if row is None:  # another database: a plain insert (its primary key refuses a second)
        row = CameraOwner(**values)
        ctx.session.add(row)
        ctx.session.flush()
    return row


def claim(ctx: Ctx, camera_id: int, deployment_id: int, worker: str) -> str:
    """Claim the camera for ``worker``; returns the claim's token (for :func:`renew` and :func:`release`).

    Refused with :class:`CameraTaken` (audited) while another claim is unexpired."""
    ctx.attempt = (worker, "camera.claim", "camera", str(camera_id))  # a refusal is audited
    now = ctx.now()
    token = secrets.token_hex(16)
    owner = owner_name(worker)
    expires = now + timedelta(seconds=ctx.policy.camera_claim_seconds)
    row = _locked_row(ctx, camera_id, {"camera_id": camera_id, "deployment_id": deployment_id, "owner": owner,
                                       "token": token, "claimed_at": now, "expires_at": expires})
    taken_over = None
    if row.token != token:
        if row.expires_at > now and not _holder_gone(row.owner):
            raise CameraTaken(f"camera {camera_id} is already analysed by {row.owner} (deployment "
                              f"{row.deployment_id}); its claim runs until "
                              f"{row.expires_at.isoformat(timespec='seconds')} unless renewed: one worker per camera")
        taken_over = row.owner  # its holder stopped renewing, or its process is gone: it died
        row.deployment_id, row.owner, row.token, row.claimed_at, row.expires_at = (
            deployment_id, owner, token, now, expires)
    taken: dict[str, Any] = {"expired_claim_of": taken_over} if taken_over else {}
    ctx.audit(worker, "camera.claim", "camera", camera_id, deployment=deployment_id, owner=owner,
              expires_at=expires, **taken)
    return token


def renew(ctx: Ctx, camera_id: int, token: str, worker: str) -> None:
    """Extend this worker's claim by ``camera_claim_seconds``; :class:`CameraTaken` when it was lost."""
    row = ctx.session.execute(
        select(CameraOwner).where(CameraOwner.camera_id == camera_id).with_for_update()).scalar_one_or_none()
    if row is None or row.token != token:
        holder = "nobody" if row is None else row.owner
        raise CameraTaken(f"camera {camera_id}: this worker's claim expired and is now held by {holder}; stopping")
    row.expires_at = ctx.now() + timedelta(seconds=ctx.policy.camera_claim_seconds)


def release(ctx: Ctx, camera_id: int, token: str, worker: str) -> None:
    """Give the camera up (only this worker's own claim; a claim taken over is left alone)."""
    row = ctx.session.execute(
        select(CameraOwner).where(CameraOwner.camera_id == camera_id).with_for_update()).scalar_one_or_none()
    if row is not None and row.token == token:
        ctx.session.delete(row)
        ctx.audit(worker, "camera.release", "camera", camera_id, deployment=row.deployment_id)


__all__ = ["CameraTaken", "claim", "owner_name", "release", "renew"]
