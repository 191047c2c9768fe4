"""Alerts and what follows them: the media kept, the pipeline's details, reviews, outcomes and
escalations.

The probe crop of an alert lives in the encrypted blob store (``media_items``); where the face
was and whom it matched are sealed under the alert's erasure key (``alert_details.personal``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from openlfr.store.tables.base import Base
from openlfr.store.types import UTCDateTime


class Alert(Base):
    """A match above threshold during a deployment, kept until its retention deadline."""

    __tablename__ = "alerts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id"))
    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id"))
    entry_id: Mapped[int | None] = mapped_column(ForeignKey("watchlist_entries.id"), nullable=True)
    score: Mapped[float] = mapped_column(Float)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    retain_until: Mapped[datetime] = mapped_column(UTCDateTime())
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # a reviewer's verdict: "true" (the listed person), "false" (someone else) or "unsure"
    review_outcome: Mapped[str | None] = mapped_column(String(16), nullable=True)
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # why it was deleted: its retention ended, or one alert deleted early (with the reason given)
    deleted_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    # when its details were wiped (retention over, or erased): only what the reports count is left
    pseudonymised_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # the audit sequence number of its alert.record event, taken under the audit lock: commit
    # order, so a reader resuming "after cursor N" never skips an alert committed later
    cursor: Mapped[int | None] = mapped_column(BigInteger, nullable=True, unique=True)
    # the worker's own key for this attempt: a retry after an unknown commit outcome finds it
    attempt_key: Mapped[str | None] = mapped_column(String(160), nullable=True, unique=True)


class AlertPass(Base):
    """A person's pass through a zone of a deployment: sightings of one watchlist entry in the
    zone with no gap longer than the re-alert window make one pass, and one alert
    (:mod:`openlfr.pipeline.passes`). Locked inside the alert transaction."""

    __tablename__ = "alert_passes"
    __table_args__ = (UniqueConstraint("deployment_id", "zone", "entry_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id"))
    zone: Mapped[str] = mapped_column(String(160))  # the cameras' zone, or "camera:<id>" for a camera without one
    entry_id: Mapped[int] = mapped_column(ForeignKey("watchlist_entries.id"))
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id"), nullable=True)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime())


class MediaItem(Base):
    """A face crop or a piece of footage held as an encrypted blob until its retention ends."""

    __tablename__ = "media_items"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # "crop" | "footage"
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id"))
    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id"))
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id"), nullable=True)
    blob: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    retain_until: Mapped[datetime] = mapped_column(UTCDateTime())
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class AlertDetail(Base):
    """What the pipeline knew when it raised an alert: track, frame, box, probe quality.

    Where the face was (track, box) and whom it matched (the candidate's label) are sealed under
    the alert's erasure key in ``personal`` (read with :func:`openlfr.pipeline.records.alert_detail`);
    the plain ``track_id``, ``box`` and ``candidate_label`` columns are empty for alerts stored
    since migration 0011 and hold those values only for alerts stored before it."""

    __tablename__ = "alert_details"
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), primary_key=True)
    track_id: Mapped[str] = mapped_column(String(64))
    frame_index: Mapped[int] = mapped_column(Integer)
    video_time: Mapped[float] = mapped_column(Float)
    box: Mapped[list[int]] = mapped_column(JSON)
    quality: Mapped[float] = mapped_column(Float)
    candidate_label: Mapped[str] = mapped_column(String(120))
    snapshot_hash: Mapped[str] = mapped_column(String(64))
    worker: Mapped[str] = mapped_column(String(120))
    personal: Mapped[str | None] = mapped_column(Text, nullable=True)  # sealed JSON: track_id, box, candidate_label


class AlertReview(Base):
    """One reviewer's decision on an alert: confirm, dismiss or escalate, with a note."""

    __tablename__ = "alert_reviews"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"))
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    decision: Mapped[str] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class AlertOutcome(Base):
    """What happened after a verified alert: the engagement result from a fixed list
    (openlfr.governance.outcomes), a note and the officer who engaged. One per alert."""

    __tablename__ = "alert_outcomes"
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), primary_key=True)
    result: Mapped[str] = mapped_column(String(32))
    note: Mapped[str] = mapped_column(Text, default="")
    # who engaged (a name or collar number), sealed under the alert's erasure key: longer than the 120 allowed in
    officer: Mapped[str] = mapped_column(Text)
    recorded_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Escalation(Base):
    """An alert a reviewer escalated, owned by a named role of a named organisation until it
    is resolved."""

    __tablename__ = "escalations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"))
    owner_role: Mapped[str] = mapped_column(String(32))
    owner_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    opened_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime())
    reason: Mapped[str] = mapped_column(Text, default="")
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    resolution: Mapped[str | None] = mapped_column(String(16), nullable=True)  # confirm | dismiss
    resolution_note: Mapped[str] = mapped_column(Text, default="")
