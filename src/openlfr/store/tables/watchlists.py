"""Watchlists and their entries, built only from shared images."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING

from sqlalchemy import JSON, Boolean, Date, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from openlfr.store.tables.base import Base
from openlfr.store.types import UTCDateTime

if TYPE_CHECKING:  # relationships name their targets by class name: no import at run time
    from openlfr.store.tables.sharing import SharedImage


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
    __table_args__ = (UniqueConstraint("watchlist_id", "shared_image_id"),)
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
