"""Request and response models of the HTTP API (what the OpenAPI schema shows).

Requests that create governance objects reuse the services' own input models
(:mod:`openlfr.governance.schemas`); the models here are the API's own inputs and every
response, so no database row is ever serialised as is.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field

from openlfr.governance.schemas import Role


# ids in paths: positive and within a 32-bit INTEGER column (PostgreSQL), so a huge id is a 422, not a crash
Id = Annotated[int, Path(ge=1, le=2**31 - 1)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# --- authentication and users -------------------------------------------------------------
class LoginIn(_In):
    name: str = Field(min_length=1, max_length=120)
    password: str = Field(min_length=1, max_length=1000)


class TokenOut(_Out):
    token: str = Field(description="send as 'Authorization: Bearer <token>'")
    expires_at: datetime
    user: str
    role: Role


class MeOut(_Out):
    name: str
    role: Role
    organisation: str
    via: str
    csrf_token: str | None = Field(None, description="for cookie sessions: send as X-CSRF-Token")


class UserIn(_In):
    name: str = Field(min_length=1, max_length=120)
    role: Role
    organisation: str = Field("", max_length=200)
    password: str = Field(min_length=10, max_length=1000)


class UserOut(_Out):
    id: int
    name: str
    role: Role
    organisation: str
    active: bool


# --- agreements and sharing --------------------------------------------------------------
class ReasonIn(_In):
    reason: str = Field(min_length=1, max_length=2000)


class NoteIn(_In):
    note: str = Field("", max_length=2000)


class AgreementOut(_Out):
    id: int
    operator: str
    purpose: str
    lawful_basis: str
    valid_from: datetime
    valid_until: datetime
    image_limit: int
    allowed_categories: list[str]
    allow_under_18: bool
    status: str
    supplier_id: int


class SharedImageOut(_Out):
    id: int
    agreement_id: int
    sha256: str
    category: str
    image_date: date
    shared_at: datetime


class LedgerRowOut(_Out):
    image_id: int
    agreement_id: int
    operator: str
    sha256: str
    category: str
    reason: str
    subject_ref: str
    image_date: date
    shared_by: str
    shared_at: datetime
    status: str
    deleted_at: datetime | None
    deleted_by: str | None
    deletion_reason: str | None


# --- watchlists, cameras, deployments -----------------------------------------------------
class EntryIn(_In):
    """A watchlist entry (the watchlist is in the path)."""

    shared_image_id: int = Field(ge=1, le=2**31 - 1)
    label: str = Field(min_length=1, max_length=120)
    reason: str = Field(min_length=1, max_length=2000)
    review_date: date
    under_18: bool = False


class SignageIn(_In):
    """A signage check (the camera is in the path)."""

    text: str = Field(min_length=1, max_length=2000)
    checked_on: date


class WatchlistOut(_Out):
    id: int
    name: str
    criteria: str
    size_cap: int
    entries: int


class EntryOut(_Out):
    id: int
    watchlist_id: int
    shared_image_id: int
    label: str
    review_date: date


class CameraOut(_Out):
    id: int
    name: str
    location: str
    zone: str


class SignageOut(_Out):
    id: int
    camera_id: int
    text: str
    checked_on: date


class ThresholdIn(_In):
    threshold: float = Field(gt=0, le=1)


class DeploymentOut(_Out):
    id: int
    purpose: str
    watchlist_id: int
    camera_ids: list[int]
    start: datetime
    end: datetime
    threshold: float
    dpia_ref: str
    status: str
    snapshot_hash: str | None
    snapshot_size: int | None


# --- alerts and reviews -------------------------------------------------------------------
Decision = Literal["confirm", "dismiss", "escalate"]


class ReviewIn(_In):
    decision: Decision
    note: str = Field("", max_length=2000)


class ReviewOut(_Out):
    reviewer: str
    decision: str
    note: str
    at: datetime


class AlertOut(_Out):
    id: int
    deployment_id: int
    camera_id: int
    camera: str
    at: datetime
    score: float
    label: str | None = Field(description="the watchlist entry's label (reviewers only)")
    reason: str | None = Field(description="why the entry is on the watchlist")
    status: Literal["pending", "confirmed_once", "verified", "dismissed", "escalated", "deleted"]
    confirmations: int
    reviews: list[ReviewOut]


# --- audit and public ---------------------------------------------------------------------
class VerifyOut(_Out):
    ok: bool
    count: int
    head_seq: int
    head_hash: str
    detail: str = ""


class AuditEventOut(_Out):
    seq: int
    at: str
    actor: str
    action: str
    object_type: str
    object_id: str
    details: str


class PublicDeployment(_Out):
    id: int
    status: str
    purpose: str
    cameras: list[str]
    locations: list[str]
    start: datetime
    end: datetime
    threshold: float
    threshold_source: str
    target_false_alert_rate: float | None = None  # when the threshold was calibrated for a target
    predicted_fnir: float | None = None  # the calibration's predicted share of listed faces missed
    watchlist_size: int | None
    faces_seen: int
    alerts: int
    verified_alerts: int
    false_alerts: int
    signage: list[str]
    report_url: str  # the deployment's effectiveness report (HTML; JSON at /api/public/deployments/{id}/report)


class TransparencyOut(_Out):
    operator_notice: str = "This page lists every authorised use of live facial recognition by this operator."
    how_to_complain: str
    deployments: list[PublicDeployment]


class HealthOut(_Out):
    status: Literal["ok"]
    database: bool
    audit_events: int
