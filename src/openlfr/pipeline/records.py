"""What the pipeline writes to the store: alerts with their crop and details, counters, gaps,
resume points. Each function runs inside the caller's governance transaction."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from openlfr.governance.context import Ctx
from openlfr.governance.retention import record_alert_once, record_media
from openlfr.pipeline.leases import fence
from openlfr.pipeline.passes import committed, join_or_open, zone_key
from openlfr.rights.keys import ERASED, alert_ref, open_text, seal_text
from openlfr.store.models import Alert, AlertDetail, CameraCheckpoint, CameraGap, PipelineCounter


@dataclass
class Counters:
    """What one camera saw in one interval; the only trace left of people who did not match.

    ``passes`` (people passes: tracks of a face followed on two or more analysed frames for
    ``pass_min_s`` seconds, one per person walking through, whatever ``analyse_fps``) and ``templates``
    (faces searched against the watchlist) are the units of the reports; ``faces_seen``
    (detections on analysed frames: one person is detected on many frames) and ``tracks``
    (all new tracks, searched or not) are diagnostics. A template is an alert, a discard, or a
    match of a pass already alerted (one alert per pass: counted in the run's
    ``PipelineStats.joined_passes``, its crop never stored).
    """

    frames: int = 0
    frames_analysed: int = 0
    faces_seen: int = 0
    tracks: int = 0
    passes: int = 0
    templates: int = 0
    templates_discarded: int = 0
    alerts: int = 0

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def add(self, other: Counters) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def empty(self) -> bool:
        return not any(self.as_dict().values())


@dataclass(frozen=True)
class AlertRecord:
    """Everything stored for one alert (the crop as encoded image bytes)."""

    deployment_id: int
    camera_id: int
    entry_id: int
    label: str
    score: float
    at: datetime
    track_id: str
    frame_index: int
    video_time: float
    box: list[int]
    quality: float
    crop: bytes
    snapshot_hash: str
    # one alert per pass (openlfr.pipeline.passes): the camera's zone ("" = the camera alone) and the
    # longest gap between sightings of one pass (the camera's realert_after_s)
    zone: str = ""
    pass_window_s: float = 60.0
    # this attempt's own key (a retry after an unknown commit outcome finds the alert it made)
    attempt_key: str = ""
    # the worker's camera lease epoch (openlfr.pipeline.leases.fence); None: no lease to check
    lease_epoch: int | None = None
    # the entry that stands for the matched person in passes (LiveWatchlist.person_of); None: entry_id
    person: int | None = None


@dataclass(frozen=True)
class StoredAlert:
    """An alert in the store: its id, its cursor (commit order) and whether this call stored it
    (``False``: an earlier try of the same attempt had committed it)."""

    alert_id: int
    cursor: int
    new: bool


def store_alert(ctx: Ctx, rec: AlertRecord, worker: str) -> StoredAlert | None:
    """Alert, encrypted probe crop and details in the caller's transaction, one per pass.

    In order: the worker's lease epoch is checked (:func:`openlfr.pipeline.leases.fence`:
    a host that lost the camera is refused, audited); an alert an earlier try of this attempt
    committed is returned as it is; the pass row is locked (:func:`passes.join_or_open`), and a
    sighting of a pass already alerted only extends it (``None``: nothing stored). Else the
    alert is recorded (``record_alert`` refuses when the deployment is not live at ``rec.at``)
    with its cursor and a notification to reviewers' streams at commit.
    """
    fence(ctx, rec.camera_id, rec.lease_epoch, worker, deployment_id=rec.deployment_id)
    if (done := committed(ctx, rec.attempt_key)) is not None:
        return StoredAlert(done.id, int(done.cursor or 0), False)
    person = rec.entry_id if rec.person is None else rec.person
    opened = join_or_open(ctx, rec.deployment_id, zone_key(rec.zone, rec.camera_id), person, rec.at,
                          rec.pass_window_s)
    if opened is None:
        # (an earlier try still committing when this one started has committed by now: the pass
        # row's lock waited for it)
        done = committed(ctx, rec.attempt_key)
        return None if done is None else StoredAlert(done.id, int(done.cursor or 0), False)
    alert, new = record_alert_once(ctx, rec.deployment_id, rec.camera_id, rec.score, rec.at, entry_id=rec.entry_id,
                                   worker=worker, attempt_key=rec.attempt_key or None)
    opened.alert_id = alert.id
    if not new:
        return StoredAlert(alert.id, int(alert.cursor or 0), False)
    record_media(ctx, "crop", rec.deployment_id, rec.camera_id, rec.crop, rec.at, alert_id=alert.id, worker=worker)
    # where the face was and whom it matched: sealed under the alert's key (gone when it is erased)
    personal = json.dumps({"track_id": rec.track_id, "box": [int(v) for v in rec.box], "candidate_label": rec.label})
    ctx.session.add(AlertDetail(
        alert_id=alert.id, track_id="", frame_index=rec.frame_index, video_time=rec.video_time, box=[],
        quality=rec.quality, candidate_label="", snapshot_hash=rec.snapshot_hash, worker=worker,
        personal=seal_text(ctx, alert_ref(alert.id), personal)))
    ctx.session.flush()
    assert alert.cursor is not None  # (record_alert_once sets it)
    return StoredAlert(alert.id, alert.cursor, True)


def alert_detail(ctx: Ctx, alert_id: int) -> dict[str, Any] | None:
    """An alert's details with the sealed part opened (track_id, box, candidate_label); None when
    there are none (never stored, or wiped with the alert)."""
    row = ctx.session.get(AlertDetail, alert_id)
    if row is None:
        return None
    out: dict[str, Any] = {"track_id": row.track_id, "box": list(row.box), "candidate_label": row.candidate_label,
                           "frame_index": row.frame_index, "video_time": row.video_time, "quality": row.quality,
                           "snapshot_hash": row.snapshot_hash, "worker": row.worker}
    if row.personal is not None:
        opened = open_text(ctx, row.personal)
        out.update(json.loads(opened) if opened and opened != ERASED else
                   {"track_id": ERASED, "box": [], "candidate_label": ERASED})
    return out


def store_counters(ctx: Ctx, deployment_id: int, camera_id: int, start: datetime, end: datetime,
                   counts: Counters, worker: str) -> None:
    """One counters row and one audit event with the discard counts for the interval."""
    ctx.session.add(PipelineCounter(deployment_id=deployment_id, camera_id=camera_id, interval_start=start,
                                    interval_end=end, **counts.as_dict()))
    discards: dict[str, Any] = counts.as_dict()
    ctx.audit(worker, "pipeline.counters", "deployment", deployment_id, camera=camera_id, start=start, end=end,
              **discards)


def store_gap(ctx: Ctx, camera_id: int, deployment_id: int | None, started_at: datetime, ended_at: datetime | None,
              attempts: int, reason: str, worker: str) -> None:
    """Record (and audit) a time the camera's stream delivered nothing."""
    ctx.session.add(CameraGap(camera_id=camera_id, deployment_id=deployment_id, started_at=started_at,
                              ended_at=ended_at, attempts=attempts, reason=reason))
    ctx.audit(worker, "camera.gap", "camera", camera_id, deployment=deployment_id, started_at=started_at,
              ended_at=ended_at, attempts=attempts, reason=reason)


def save_checkpoint(ctx: Ctx, deployment_id: int, camera_id: int, source: str, frame_index: int,
                    finished: bool = False, origin: datetime | None = None) -> None:
    """Remember how far a recorded source was processed, and (``origin``) the wall time of its
    time 0 on its first run, kept from then on (see :func:`checkpoint_origin`)."""
    row = ctx.session.get(CameraCheckpoint, (deployment_id, camera_id))
    if row is None:
        row = CameraCheckpoint(deployment_id=deployment_id, camera_id=camera_id, source=source, frame_index=0,
                               finished=0, updated_at=ctx.now())
        ctx.session.add(row)
    if row.source != source or row.origin is None:
        row.origin = origin
    row.source, row.frame_index, row.finished, row.updated_at = source, frame_index, int(finished), ctx.now()


def checkpoint_origin(ctx: Ctx, deployment_id: int, camera_id: int, source: str) -> datetime | None:
    """The wall time of this recording's time 0 when it was first run in this deployment (None:
    never run): a resumed worker gives replayed frames the times they had the first time."""
    row = ctx.session.get(CameraCheckpoint, (deployment_id, camera_id))
    return row.origin if row is not None and row.source == source else None


def load_checkpoint(ctx: Ctx, deployment_id: int, camera_id: int, source: str) -> tuple[int, bool]:
    """(frame to resume from, finished?) for this source; (0, False) when never run."""
    row = ctx.session.get(CameraCheckpoint, (deployment_id, camera_id))
    if row is None or row.source != source:
        return 0, False
    return row.frame_index, bool(row.finished)


def last_alert_times(ctx: Ctx, deployment_id: int, camera_id: int) -> dict[int, datetime]:
    """The newest alert time per watchlist entry on this camera (re-alert suppression after a restart)."""
    rows = ctx.session.execute(
        select(Alert.entry_id, func.max(Alert.at)).where(
            Alert.deployment_id == deployment_id, Alert.camera_id == camera_id, Alert.entry_id.is_not(None))
        .group_by(Alert.entry_id)
    ).all()
    out: dict[int, datetime] = {}
    for entry_id, at in rows:
        if entry_id is not None and at is not None:  # (the query leaves out alerts without an entry)
            # func.max bypasses the column type on SQLite: normalise to aware UTC
            if isinstance(at, str):
                at = datetime.fromisoformat(at)
            if at.tzinfo is None:
                from datetime import UTC

                at = at.replace(tzinfo=UTC)
            out[int(entry_id)] = at
    return out
