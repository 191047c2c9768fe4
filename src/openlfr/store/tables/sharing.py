"""Sharing: data-sharing agreements, the images shared under them and the append-only ledger.

Biometric data (images, templates) never sits in the database: rows hold the id of an
encrypted blob (see :mod:`openlfr.store.blobs`), set to ``None`` once the blob is deleted.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING

from sqlalchemy import JSON, Boolean, Date, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from openlfr.store.tables.base import Base
from openlfr.store.types import UTCDateTime

if TYPE_CHECKING:  # relationships name their targets by class name: no import at run time
    from openlfr.store.tables.parties import Organisation, User


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
    __table_args__ = (UniqueConstraint("agreement_id", "sha256"),)
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
