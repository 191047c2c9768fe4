"""People's rights: erasure keys, requests and what a search found for them, legal holds.

Personal data here is sealed: a requester's name, contact, identity evidence and photo are
encrypted under the request's own erasure key (:mod:`openlfr.rights.keys`), so closing or
erasing a request destroys one key and leaves nothing readable, in the database, its backups
or the audit log.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Date, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from openlfr.store.tables.base import Base
from openlfr.store.types import UTCDateTime


class ErasureKey(Base):
    """A random key that seals one subject's (a request's) or one alert's personal data.

    The key itself is an encrypted blob; destroying it (``blob`` None, ``destroyed_at`` set)
    makes everything sealed under it unreadable, while the ciphertext (in audit events, which
    are hash-chained and never rewritten) stays where it is, so the chain still verifies."""

    __tablename__ = "erasure_keys"
    ref: Mapped[str] = mapped_column(String(80), primary_key=True)  # "alert:17", "request:3"
    blob: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    destroyed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    destroyed_reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class RightsRequest(Base):
    """A request from a member of the public to one organisation (the controller): access,
    erasure, restriction, objection or a complaint, with its statutory clock and decision."""

    __tablename__ = "rights_requests"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # access | erasure | restriction | objection | complaint
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    # the law the controller answers under: "uk_gdpr" (a site operator) or "dpa_part3" (a police force)
    regime: Mapped[str] = mapped_column(String(16))
    # an earlier request this one follows (an erasure after an access request)
    follows_id: Mapped[int | None] = mapped_column(ForeignKey("rights_requests.id"), nullable=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    extended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    extension_reason: Mapped[str] = mapped_column(Text, default="")
    # sealed under the request's key: {"name", "contact", "details"}
    requester_sealed: Mapped[str] = mapped_column(Text)
    identity_evidence_sealed: Mapped[str | None] = mapped_column(Text, nullable=True)
    identity_verified_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    identity_verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # the requester's photo for the search by face: an encrypted blob, its content sealed under
    # the request's key; deleted when the request is decided
    photo_blob: Mapped[str | None] = mapped_column(String(64), nullable=True)
    searched_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # received -> (verified) -> (searched) -> decided ; erased (the request's own data erased)
    status: Mapped[str] = mapped_column(String(16), default="received")
    decision: Mapped[str | None] = mapped_column(String(24), nullable=True)  # granted | partly | refused | nothing_held
    decision_reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    decision_note_sealed: Mapped[str | None] = mapped_column(Text, nullable=True)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # the outcome letter as sent, sealed; its SHA-256 is in the audit log
    letter_sealed: Mapped[str | None] = mapped_column(Text, nullable=True)
    recorded_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RequestFinding(Base):
    """A record a search by face found for a request, until a person says whether it is the
    requester's (``verdict``): only confirmed findings are ever named in an answer."""

    __tablename__ = "request_findings"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("rights_requests.id"))
    kind: Mapped[str] = mapped_column(String(24))  # alert | watchlist_entry | shared_image
    object_id: Mapped[int] = mapped_column(Integer)
    score: Mapped[float] = mapped_column(Float)
    threshold: Mapped[float] = mapped_column(Float)
    model_id: Mapped[str] = mapped_column(String(80))
    found_at: Mapped[datetime] = mapped_column(UTCDateTime())
    verdict: Mapped[str | None] = mapped_column(String(16), nullable=True)  # requester | someone_else
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class LegalHold(Base):
    """An alert kept past its retention for a named proceeding, until released; reviewed by a date."""

    __tablename__ = "legal_holds"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"))
    proceeding: Mapped[str] = mapped_column(Text)
    review_date: Mapped[date] = mapped_column(Date)
    placed_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    placed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    released_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    release_reason: Mapped[str] = mapped_column(Text, default="")
