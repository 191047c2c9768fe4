"""Parties: organisations, their users, the enrolment of a first admin, passwords, API tokens
and the login throttle.

Tokens are stored only as their SHA-256, so a copy of the database cannot be replayed as a
login; passwords only as argon2 hashes.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from openlfr.store.tables.base import Base
from openlfr.store.types import UTCDateTime


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


class RateLimit(Base):
    """Failures counted per key in a fixed window, shared by every API replica (enrolment
    guesses per client address, refused credentials written to the audit log per address):
    :mod:`openlfr.governance.rate_limits`."""

    __tablename__ = "rate_limits"
    key: Mapped[str] = mapped_column(String(300), primary_key=True)  # "<what>|<client address>"
    window_start: Mapped[datetime] = mapped_column(UTCDateTime())
    count: Mapped[int] = mapped_column(Integer, default=0)
