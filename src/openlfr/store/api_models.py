"""Tables of the HTTP API: password hashes, login sessions and API tokens, alert reviews.

Tokens are stored only as their SHA-256, so a copy of the database cannot be replayed as a
login; passwords only as argon2 hashes.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from openlfr.store.models import Base
from openlfr.store.types import UTCDateTime


class Credential(Base):
    """A user's password (argon2id hash)."""

    __tablename__ = "api_credentials"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ApiToken(Base):
    """A console session (cookie) or an API client token (bearer), until it expires or is revoked."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(16))  # "session" | "bearer"
    csrf: Mapped[str] = mapped_column(String(64))  # per-session CSRF secret (cookie sessions only)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


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


class LoginThrottle(Base):
    """Failed logins of one user name from one place (client address, or the CLI's machine
    user): counted before the password is checked, so concurrent guesses cannot overrun the
    limit (:mod:`openlfr.governance.throttle`)."""

    __tablename__ = "login_throttle"
    key: Mapped[str] = mapped_column(String(300), primary_key=True)  # "<name, lower case>|<place>"
    failures: Mapped[int] = mapped_column(Integer, default=0)  # attempts counted in this window
    window_start: Mapped[datetime] = mapped_column(UTCDateTime())
    lockouts: Mapped[int] = mapped_column(Integer, default=0)  # each doubles the next wait
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
