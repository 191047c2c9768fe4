"""What a camera worker says about itself in the store (``CameraStatus``): starting, running (how
fast, when it last had a frame), stopped or failed (and why). Nothing about any face.

A failure is also audited (``camera.failed``) and leaves an open-ended gap record, so the
time the camera did not watch shows in the gap reports as an outage does.
"""

from __future__ import annotations

from datetime import datetime

from openlfr.governance.context import Ctx
from openlfr.pipeline.records import store_gap
from openlfr.store.models import CameraStatus

STATES = ("starting", "running", "stopped", "failed")


def write_status(ctx: Ctx, camera_id: int, deployment_id: int | None, worker: str, state: str, *,
                 fps: float | None = None, frames_analysed: int | None = None,
                 last_frame_at: datetime | None = None, error: str | None = None) -> None:
    """Set the camera's status row (one per camera) in the caller's transaction.

    ``starting`` begins a new run (counts and error cleared); other states keep what is not given.
    """
    assert state in STATES, state
    now = ctx.now()
    row = ctx.session.get(CameraStatus, camera_id)
    if row is None:
        row = CameraStatus(camera_id=camera_id, state=state, fps=0.0, frames_analysed=0, error="",
                           started_at=now, updated_at=now)
        ctx.session.add(row)
    if state == "starting":
        row.started_at, row.fps, row.frames_analysed, row.last_frame_at, row.error = now, 0.0, 0, None, ""
    row.deployment_id, row.worker, row.state, row.updated_at = deployment_id, worker, state, now
    if state in ("stopped", "failed"):
        row.fps = 0.0
    if fps is not None:
        row.fps = round(fps, 2)
    if frames_analysed is not None:
        row.frames_analysed = frames_analysed
    if last_frame_at is not None:
        row.last_frame_at = last_frame_at
    if error is not None:
        row.error = error[:2000]


def record_failure(ctx: Ctx, camera_id: int, deployment_id: int | None, worker: str, reason: str) -> None:
    """The camera failed: status ``failed`` with the reason, an audit event and an open gap."""
    write_status(ctx, camera_id, deployment_id, worker, "failed", error=reason)
    ctx.audit(worker, "camera.failed", "camera", camera_id, deployment=deployment_id, reason=reason)
    store_gap(ctx, camera_id, deployment_id, ctx.now(), None, 0, f"camera failed: {reason}", worker)
