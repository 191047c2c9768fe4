"""Database tables of the governance store (SQLAlchemy 2 declarative models).

The schema is created and upgraded by the Alembic migrations in ``store/migrations``; a
test checks that the migrations and these models agree. Biometric data (images,
templates, snapshots, crops) never sits in the database: rows hold the id of an encrypted
blob (see :mod:`openlfr.store.blobs`), set to ``None`` once the blob is deleted.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    Float,
    ForeignKey,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from openlfr.store.types import UTCDateTime


class Base(DeclarativeBase):
    """Declarative base of every openlfr table."""


class Organisation(Base):
    """A party: a police force, a site operator or an oversight body.

    Each has its own administrators; no organisation can create or act for another's users.
    ``is_host`` marks the organisation that runs this installation (the only one its
    machine operator may act for, by break-glass).
    """

    __tablename__ = "organisations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(24))  # police_force | site_operator | oversight_body
    is_host: Mapped[bool] = mapped_column(Boolean, default=False)
    registered_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # networks (CIDR) its cameras' stream addresses may point into, set by its operator admins;
    # empty: no network camera is allowed (see openlfr.governance.camera_sources)
    camera_networks: Mapped[list[str]] = mapped_column(JSON, default=list)


class User(Base):
    """A person acting on the system, with exactly one role, in exactly one organisation.

    ``organisation_id`` is set for every user (the column is nullable only so that stores
    made before organisations existed could be migrated, see migration 0005).
    """

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    role: Mapped[str] = mapped_column(String(32))
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"), nullable=True)
    # police rank (see openlfr.governance.ranks); None for staff of other organisations
    rank: Mapped[str | None] = mapped_column(String(40), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    org: Mapped[Organisation] = relationship(lazy="joined")

    @property
    def organisation(self) -> str:
        """The name of the user's organisation."""
        return self.org.name if self.org is not None else ""


class EnrolmentToken(Base):
    """A one-time token, issued out of band, with which an organisation's first admin enrols."""

    __tablename__ = "enrolment_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    issued_by: Mapped[str] = mapped_column(String(200))
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    used_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)


class Agreement(Base):
    """A data-sharing agreement between a supplier and an operator organisation."""

    __tablename__ = "agreements"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # the supplier (a user of the supplying force) who offered it
    supplier_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    # the supplying police force and the operator the images are shared with (always set)
    supplier_org_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"), nullable=True)
    operator_org_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"), nullable=True)
    purpose: Mapped[str] = mapped_column(Text)
    lawful_basis: Mapped[str] = mapped_column(Text)
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime())
    valid_until: Mapped[datetime] = mapped_column(UTCDateTime())
    image_limit: Mapped[int] = mapped_column(Integer)
    allowed_categories: Mapped[list[str]] = mapped_column(JSON)
    allow_under_18: Mapped[bool] = mapped_column(Boolean, default=False)
    # draft -> active -> (suspended <-> active) -> ended | expired
    status: Mapped[str] = mapped_column(String(16), default="draft")
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    supplier: Mapped[User] = relationship(foreign_keys=[supplier_id], lazy="joined")
    supplier_org: Mapped[Organisation] = relationship(foreign_keys=[supplier_org_id], lazy="joined")
    operator_org: Mapped[Organisation] = relationship(foreign_keys=[operator_org_id], lazy="joined")

    @property
    def operator(self) -> str:
        """The operator organisation's name."""
        return self.operator_org.name if self.operator_org is not None else ""

    @property
    def force(self) -> str:
        """The supplying force's name."""
        return self.supplier_org.name if self.supplier_org is not None else ""

    @property
    def supplier_name(self) -> str:
        """The supplier (a user of the force) who offered it."""
        return self.supplier.name if self.supplier is not None else ""


class SharedImage(Base):
    """One image shared under an agreement; its blobs are purged when sharing ends."""

    __tablename__ = "shared_images"
    __table_args__ = (UniqueConstraint("agreement_id", "sha256", name="uq_shared_image_hash"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agreement_id: Mapped[int] = mapped_column(ForeignKey("agreements.id"))
    sha256: Mapped[str] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    subject_ref: Mapped[str] = mapped_column(String(120))
    image_date: Mapped[date] = mapped_column(Date)
    under_18: Mapped[bool] = mapped_column(Boolean, default=False)
    # the warrant or court reference a "wanted" or court-order category needs (see
    # openlfr.governance.categories); "" for the others and for images shared before it was asked
    warrant_ref: Mapped[str] = mapped_column(String(120), default="", server_default="")
    quality: Mapped[float] = mapped_column(Float)
    shared_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    shared_at: Mapped[datetime] = mapped_column(UTCDateTime())
    image_blob: Mapped[str | None] = mapped_column(String(64), nullable=True)
    template_blob: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # the face model that made the template (openlfr.face.registry model id)
    # (stores made before templates knew their model hold only the dlib ResNet's: migration 0006)
    template_model: Mapped[str] = mapped_column(String(80), server_default="dlib-resnet-v1:55533b28")
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    deleted_reason: Mapped[str | None] = mapped_column(Text, nullable=True)

    agreement: Mapped[Agreement] = relationship()


class LedgerEntry(Base):
    """Append-only sharing ledger: one row per image shared and one per image deleted.

    Rows copy what they describe (hash, category, subject...) so the ledger stays complete
    after the image itself is purged. Database triggers refuse UPDATE and DELETE.
    """

    __tablename__ = "ledger_entries"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # "shared" | "deleted"
    shared_image_id: Mapped[int] = mapped_column(ForeignKey("shared_images.id"))
    agreement_id: Mapped[int] = mapped_column(ForeignKey("agreements.id"))
    supplier_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    sha256: Mapped[str] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    subject_ref: Mapped[str] = mapped_column(String(120))
    image_date: Mapped[date] = mapped_column(Date)
    actor: Mapped[str] = mapped_column(String(120))
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class Watchlist(Base):
    """A governed watchlist: entries built only from shared images."""

    __tablename__ = "watchlists"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"), nullable=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    criteria: Mapped[str] = mapped_column(Text)
    # the composition criteria: the categories (openlfr.governance.categories) its entries may
    # have; [] on watchlists made before categories were a fixed list
    categories: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")
    size_cap: Mapped[int] = mapped_column(Integer)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class WatchlistEntry(Base):
    """One shared image put on a watchlist, with the reason and its review date."""

    __tablename__ = "watchlist_entries"
    __table_args__ = (UniqueConstraint("watchlist_id", "shared_image_id", name="uq_entry_image"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    watchlist_id: Mapped[int] = mapped_column(ForeignKey("watchlists.id"))
    shared_image_id: Mapped[int] = mapped_column(ForeignKey("shared_images.id"))
    label: Mapped[str] = mapped_column(String(120))
    reason: Mapped[str] = mapped_column(Text)
    quality: Mapped[float] = mapped_column(Float)
    under_18: Mapped[bool] = mapped_column(Boolean, default=False)
    review_date: Mapped[date] = mapped_column(Date)
    added_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    added_at: Mapped[datetime] = mapped_column(UTCDateTime())
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    shared_image: Mapped[SharedImage] = relationship()


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


class AuditEvent(Base):
    """One event of the hash-chained audit log (see :mod:`openlfr.audit.chain`).

    ``at`` is kept as the exact ISO text that was hashed, so verification never depends on
    how a database round-trips timestamps. ``details`` is canonical JSON text.
    """

    __tablename__ = "audit_events"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(80))
    object_type: Mapped[str] = mapped_column(String(40))
    object_id: Mapped[str] = mapped_column(String(80))
    details: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditCheckpoint(Base):
    """A signed statement of the audit chain's head at a moment (see :mod:`openlfr.audit.checkpoints`):
    once published, any rewrite of an event up to ``seq`` is detected."""

    __tablename__ = "audit_checkpoints"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    head_hash: Mapped[str] = mapped_column(String(64))
    at: Mapped[str] = mapped_column(String(40))  # the exact ISO text that was signed
    reason: Mapped[str] = mapped_column(String(80))
    key_id: Mapped[str] = mapped_column(String(64))  # SHA-256 (hex) of the raw Ed25519 public key
    public_key: Mapped[str] = mapped_column(String(64))  # raw Ed25519 public key, hex
    signature: Mapped[str] = mapped_column(String(128))  # Ed25519 signature, hex


class AuditHead(Base):
    """The latest event's sequence number and hash (one row), so a cut tail is detected."""

    __tablename__ = "audit_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))


from openlfr.store import pipeline_models  # noqa: E402,F401  (the live pipeline's tables)
from openlfr.store import api_models  # noqa: E402,F401  (the HTTP API's tables)
from openlfr.store import rights_models  # noqa: E402,F401  (people's rights: requests, erasure keys, holds)
