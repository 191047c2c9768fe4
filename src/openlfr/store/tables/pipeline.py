"""The live pipeline's bookkeeping: per-interval counters and, per camera, stream gaps,
resume points, the lease that says which host analyses it and what its worker last said.

Nothing here is biometric: counters are numbers, and nothing says anything about a face.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from openlfr.store.tables.base import Base
from openlfr.store.types import UTCDateTime


class PipelineCounter(Base):
    """Counts for one camera of one deployment over one interval: the only trace of the
    people who did not match."""

    __tablename__ = "pipeline_counters"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id"))
    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id"))
    interval_start: Mapped[datetime] = mapped_column(UTCDateTime())
    interval_end: Mapped[datetime] = mapped_column(UTCDateTime())
    frames: Mapped[int] = mapped_column(Integer, default=0)
    frames_analysed: Mapped[int] = mapped_column(Integer, default=0)
    faces_seen: Mapped[int] = mapped_column(Integer, default=0)  # detections on analysed frames (diagnostic)
    tracks: Mapped[int] = mapped_column(Integer, default=0)
    # people passes: tracks whose face was searched at least once
    passes: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    templates: Mapped[int] = mapped_column(Integer, default=0)  # faces searched against the watchlist
    templates_discarded: Mapped[int] = mapped_column(Integer, default=0)
    alerts: Mapped[int] = mapped_column(Integer, default=0)


class CameraGap(Base):
    """A time a camera's stream delivered nothing (from the drop until frames came back)."""

    __tablename__ = "camera_gaps"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id"))
    deployment_id: Mapped[int | None] = mapped_column(ForeignKey("deployments.id"), nullable=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    reason: Mapped[str] = mapped_column(Text, default="")


class CameraCheckpoint(Base):
    """How far a camera worker got in a recorded source, so a restart resumes there."""

    __tablename__ = "camera_checkpoints"
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id"), primary_key=True)
    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id"), primary_key=True)
    source: Mapped[str] = mapped_column(Text)
    frame_index: Mapped[int] = mapped_column(Integer)
    finished: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # the wall time of the recording's time 0 on its first run: a worker that resumes it (after a
    # crash, or on another host after a failover) gives replayed frames the times they had, so a
    # pass seen again is the same pass
    origin: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class CameraLease(Base):
    """Which host agent may analyse a camera of a live deployment now (:mod:`openlfr.pipeline.leases`).

    One row per camera while a deployment with it is live (inserted when it goes live, deleted
    when it ends). A host agent claims a free or expired row (``FOR UPDATE SKIP LOCKED``),
    bumping ``epoch``, and renews ``expires_at`` (database time) while it holds it; every write
    of the camera's worker (alerts, counters, resume points) checks its epoch in the same
    transaction, so a paused or partitioned host's late commits are refused."""

    __tablename__ = "camera_leases"
    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id"), primary_key=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id"))
    host_id: Mapped[str | None] = mapped_column(String(200), nullable=True)  # the holder; None: free
    holder: Mapped[str] = mapped_column(String(200), default="")  # "<worker>@<machine>:<pid>" that claimed it
    epoch: Mapped[int] = mapped_column(Integer, default=0)  # bumped at every claim (the fencing token)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)  # database time


class HostAgent(Base):
    """A host agent (``openlfr run --host-id H``): what it may hold and when it was last seen."""

    __tablename__ = "host_agents"
    host_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    capacity: Mapped[int] = mapped_column(Integer, default=0)  # cameras it may hold; 0: any number
    machine: Mapped[str] = mapped_column(String(200), default="")  # "<hostname>:<pid>"
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime())  # its last renewal (database time)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class CameraStatus(Base):
    """What the worker of a camera last said about it: running or not, how fast, when it last
    had a frame, and its last error. Written by the worker (at start, about every few seconds
    while running, and when it stops or fails); nothing about any face."""

    __tablename__ = "camera_status"
    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id"), primary_key=True)
    deployment_id: Mapped[int | None] = mapped_column(ForeignKey("deployments.id"), nullable=True)
    worker: Mapped[str] = mapped_column(String(200), default="")
    state: Mapped[str] = mapped_column(String(16))  # starting, running, stopped, failed
    fps: Mapped[float] = mapped_column(Float, default=0.0)  # frames analysed per second, lately
    frames_analysed: Mapped[int] = mapped_column(Integer, default=0)
    last_frame_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    error: Mapped[str] = mapped_column(Text, default="")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
