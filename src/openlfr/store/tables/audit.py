"""The hash-chained audit log: its events, its head and the signed checkpoints of it."""

from __future__ import annotations

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from openlfr.store.tables.base import Base


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
