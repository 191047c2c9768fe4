"""Deployments: cameras, the public notices checked at them, authorised deployments of LFR on
some cameras and the shared images frozen into each deployment's snapshot."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, Boolean, Column, Date, Float, ForeignKey, Integer, String, Table, Text, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from openlfr.store.tables.base import Base
from openlfr.store.types import UTCDateTime

if TYPE_CHECKING:  # relationships name their targets by class name: no import at run time
    from openlfr.store.tables.watchlists import Watchlist


class Camera(Base):
    """A camera: where it is and how to read it."""

    __tablename__ = "cameras"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"), nullable=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    location: Mapped[str] = mapped_column(Text)
    zone: Mapped[str] = mapped_column(String(120), default="")
    stream_url: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # how its frames are analysed: the fields of ``openlfr.pipeline.settings.CameraSettings``
    # that differ from the defaults (validated there); {}: the defaults
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class SignageRecord(Base):
    """A check that the public notice at a camera is up: its text and when it was checked."""

    __tablename__ = "signage_records"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id"))
    text: Mapped[str] = mapped_column(Text)
    checked_on: Mapped[date] = mapped_column(Date)
    recorded_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # the deployment the check was made for (None: a check of the camera alone, made before
    # checks were per deployment)
    deployment_id: Mapped[int | None] = mapped_column(ForeignKey("deployments.id"), nullable=True)
    # an optional photo of the notice, as an encrypted blob
    photo_blob: Mapped[str | None] = mapped_column(String(64), nullable=True)
    photo_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)


deployment_cameras = Table(
    "deployment_cameras",
    Base.metadata,
    Column("deployment_id", ForeignKey("deployments.id"), primary_key=True),
    Column("camera_id", ForeignKey("cameras.id"), primary_key=True),
)


class Deployment(Base):
    """An authorised, time-boxed use of LFR on some cameras with a frozen watchlist."""

    __tablename__ = "deployments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # the operator organisation that runs it (the requester's)
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"), nullable=True)
    # "live": cameras in real time; "retrospective": a search of recorded footage (openlfr scan)
    kind: Mapped[str] = mapped_column(String(16), default="live", server_default="live")
    # only police reviewers may confirm its alerts
    police_review_required: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    purpose: Mapped[str] = mapped_column(Text)
    watchlist_id: Mapped[int] = mapped_column(ForeignKey("watchlists.id"))
    start: Mapped[datetime] = mapped_column(UTCDateTime())
    end: Mapped[datetime] = mapped_column(UTCDateTime())
    threshold: Mapped[float] = mapped_column(Float)
    dpia_ref: Mapped[str] = mapped_column(String(200))
    necessity: Mapped[str] = mapped_column(Text)
    # the structured grounds (openlfr.governance.grounds); "" / None on deployments requested
    # before they were asked for
    legal_basis: Mapped[str] = mapped_column(String(40), default="", server_default="")
    dpia_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    eia_ref: Mapped[str] = mapped_column(String(200), default="", server_default="")
    eia_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    proportionality: Mapped[str] = mapped_column(Text, default="", server_default="")
    # the urgency route: authorised below the usual rank, reviewed afterwards by one of it
    urgent: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    urgency_reason: Mapped[str] = mapped_column(Text, default="", server_default="")
    retro_review_due: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    retro_reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    retro_reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    retro_review_outcome: Mapped[str | None] = mapped_column(String(16), nullable=True)  # upheld | ended
    # the watchlist's composition summary the authoriser saw, frozen with the authority
    composition: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    # requested -> authorised -> live -> ended ; requested|authorised -> cancelled ; requested -> refused
    status: Mapped[str] = mapped_column(String(16), default="requested")
    requested_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime())
    authorised_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    authorised_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    snapshot_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    snapshot_blob: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # the face model of the frozen templates: probes must come from the same model
    model_id: Mapped[str | None] = mapped_column(String(80), nullable=True)
    snapshot_size: Mapped[int | None] = mapped_column(Integer, nullable=True)
    snapshot_deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # set when the request gave a target false-alert rate instead of a raw threshold
    target_false_alert_rate: Mapped[float | None] = mapped_column(Float, nullable=True)
    # different reviewers who must confirm an alert before it counts as verified (EU AI Act Art. 14(5): 2)
    confirmations_required: Mapped[int] = mapped_column(Integer, default=2, server_default="2")
    calibration: Mapped[dict | None] = mapped_column(JSON, nullable=True)

    cameras: Mapped[list[Camera]] = relationship(secondary=deployment_cameras, order_by=Camera.id)
    watchlist: Mapped[Watchlist] = relationship()


class SnapshotItem(Base):
    """Which shared image went into which deployment's frozen snapshot."""

    __tablename__ = "snapshot_items"
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployments.id"), primary_key=True)
    shared_image_id: Mapped[int] = mapped_column(ForeignKey("shared_images.id"), primary_key=True)
