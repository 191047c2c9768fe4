"""Request and response models of the HTTP API (what the OpenAPI schema shows).

Requests that create governance objects reuse the services' own input models
(:mod:`openlfr.governance.schemas`); the models here are the API's own inputs and every
response, so no database row is ever serialised as is.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field, field_validator

from openlfr.governance.credentials import MIN_PASSWORD
from openlfr.governance.grounds import EngagementResult
from openlfr.governance.schemas import OrgKind, Role
from openlfr.rights.requests import Decision as RequestDecision
from openlfr.rights.requests import Reason, RequestKind
from openlfr.governance.deployment_view import (  # the staff read model of a deployment, shared with the CLI
    CameraBriefOut as CameraBriefOut,
    WatchlistBriefOut as WatchlistBriefOut,
    CategoryCountOut as CategoryCountOut,
    ReviewDueOut as ReviewDueOut,
    CompositionOut as CompositionOut,
    DeploymentOut as DeploymentOut,
)


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
    organisation: str


class MeOut(_Out):
    name: str
    role: Role
    organisation: str
    organisation_kind: OrgKind | None
    rank: str | None
    via: str
    csrf_token: str | None = Field(None, description="for cookie sessions: send as X-CSRF-Token")


Password = Field(min_length=MIN_PASSWORD, max_length=1000)
Rank = Field(None, max_length=40, description="police rank (police users only), e.g. superintendent")


class UserIn(_In):
    """A new user of the calling admin's own organisation."""

    name: str = Field(min_length=1, max_length=120)
    role: Role
    rank: str | None = Rank
    password: str = Password


class UserOut(_Out):
    id: int
    name: str
    role: Role
    organisation: str
    rank: str | None
    active: bool


class RoleIn(_In):
    role: Role
    rank: str | None = Rank


class PasswordIn(_In):
    """An admin's reset of a user's password (every token of that user is revoked)."""

    password: str = Password


class OwnPasswordIn(_In):
    old: str = Field(min_length=1, max_length=1000)
    new: str = Password


class EnrolIn(_In):
    """Redeem a one-time enrolment token: become the organisation's first admin."""

    token: str = Field(min_length=1, max_length=200)
    name: str = Field(min_length=1, max_length=120)
    password: str = Password
    rank: str | None = Rank


class OrganisationOut(_Out):
    """A party, as the public sees it (no users)."""

    name: str
    kind: OrgKind
    host: bool = Field(description="the organisation that runs this installation")
    created_at: datetime = Field(description="when it was registered")
    enrolled_at: datetime | None = Field(None, description="when its first admin enrolled")


# --- agreements and sharing --------------------------------------------------------------
class ReasonIn(_In):
    reason: str = Field(min_length=1, max_length=2000)


class NoteIn(_In):
    note: str = Field("", max_length=2000)


class RetroReviewIn(_In):
    outcome: Literal["upheld", "ended"] = Field(description="upheld: it runs on; ended: it ends now")
    note: str = Field(min_length=1, max_length=2000, description="the reviewer's reasons")


class AuthoriseIn(_In):
    note: str = Field("", max_length=2000)
    require_police_review: bool = Field(False, description="only police reviewers may confirm its alerts")
    threshold_reason: str = Field("", max_length=2000, description="why a threshold looser than the model's "
                                  "FPIR-1% point is needed (refused without one)")


class AgreementOut(_Out):
    id: int
    force: str = Field(description="the supplying police force")
    operator: str = Field(description="the operator organisation the images are shared with")
    purpose: str
    lawful_basis: str
    valid_from: datetime
    valid_until: datetime
    image_limit: int
    allowed_categories: list[str]
    allow_under_18: bool
    status: str
    supplier_id: int = Field(description="the supplier (a user of the force) who offered it")
    supplier_name: str = Field("", description="that supplier's user name")


class SharedImageOut(_Out):
    id: int
    agreement_id: int
    sha256: str
    category: str
    warrant_ref: str = Field("", description="the warrant or court reference recorded with it ('' if none)")
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
class RetemplateOut(_Out):
    retemplated: int = Field(description="templates re-made with the server's face model")
    unchanged: int = Field(description="templates already of that model")


class EntryIn(_In):
    """A watchlist entry (the watchlist is in the path)."""

    shared_image_id: int = Field(ge=1, le=2**31 - 1)
    label: str = Field(min_length=1, max_length=120)
    reason: str = Field(min_length=1, max_length=2000)
    review_date: date
    under_18: bool = False


class SignageIn(_In):
    """A signage check (the camera is in the path)."""

    text: str = Field(min_length=1, max_length=2000,
                      description="the notice's text: it must say that facial recognition is in use")
    checked_on: date = Field(description="when the notice was checked: not after today, nor more than "
                             "OPENLFR_SIGNAGE_BACKDATE_DAYS before")
    deployment_id: int | None = Field(None, ge=1, le=2**31 - 1, description="the deployment the check is for "
                                      "(a deployment starts only on checks recorded for it)")


class WatchlistOut(_Out):
    id: int
    name: str
    criteria: str
    categories: list[str] = Field([], description="the composition criteria: the categories its entries may have "
                                  "(empty on watchlists made before categories were a fixed list)")
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
    stream_url: str = Field("", description="where the camera is read from; any password shown as ***")
    settings: dict[str, Any] = Field(default_factory=dict, description="analysis settings that differ from the "
                                     "defaults (see docs/pipeline.md); {}: all defaults")

    @field_validator("stream_url", mode="before")
    @classmethod
    def _masked(cls, v: Any) -> str:
        from openlfr.governance.cameras import mask_address

        return mask_address(v)

    @field_validator("settings", mode="before")
    @classmethod
    def _settings(cls, v: Any) -> dict[str, Any]:
        return dict(v or {})


class CameraGapOut(_Out):
    started_at: datetime
    ended_at: datetime | None = Field(None, description="null: not over (or the worker stopped during it)")
    attempts: int
    reason: str


class CameraStatusOut(BaseModel):
    camera_id: int
    name: str
    location: str
    state: str = Field(description="starting, running, stopped, failed, 'not responding' (said running, then "
                                   "nothing for 30 s) or 'never run'")
    deployment_id: int | None = None
    fps: float = Field(0.0, description="frames analysed per second, lately")
    frames_analysed: int = Field(0, description="frames analysed since the worker started")
    last_frame_at: datetime | None = None
    started_at: datetime | None = None
    updated_at: datetime | None = None
    error: str = ""
    gaps: list[CameraGapOut] = Field(default_factory=list, description="the latest times it delivered nothing")

    @classmethod
    def of(cls, h: Any) -> CameraStatusOut:
        """From a :class:`openlfr.governance.cameras.CameraHealth`."""
        st = h.status
        extra = {} if st is None else dict(
            deployment_id=st.deployment_id, fps=st.fps, frames_analysed=st.frames_analysed,
            last_frame_at=st.last_frame_at, started_at=st.started_at, updated_at=st.updated_at, error=st.error)
        return cls(camera_id=h.camera.id, name=h.camera.name, location=h.camera.location, state=h.state,
                   gaps=[CameraGapOut.model_validate(g) for g in h.gaps], **extra)


class SignageOut(_Out):
    id: int
    camera_id: int
    deployment_id: int | None = None
    text: str
    checked_on: date
    photo_sha256: str | None = Field(None, description="SHA-256 of the photo of the notice (stored encrypted), if any")


class ThresholdIn(_In):
    threshold: float = Field(gt=0, le=1)


class UseOut(_Out):
    """One use of a shared image: on a watchlist, in a deployment's snapshot, or in an alert."""

    kind: Literal["watchlist", "deployment", "alert"]
    id: int
    organisation: str
    at: datetime | None
    detail: str


class ImageHistoryOut(LedgerRowOut):
    uses: list[UseOut]


class ForceAlertOut(_Out):
    id: int
    deployment_id: int
    camera_id: int
    at: datetime
    score: float
    outcome: Literal["verified", "false alert", "not settled"]
    deleted_at: datetime | None


class ForceOut(_Out):
    """A police force's central view: every agreement it is party to, every image it shared
    (whoever in the force shared it) with each use, and the deployments and alerts that used
    them. No image bytes or templates."""

    force: str
    agreements: list[AgreementOut]
    images: list[ImageHistoryOut]
    deployments: list[DeploymentOut]
    alerts: list[ForceAlertOut]


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


class CameraNetworksIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    networks: list[str] = Field(max_length=100, description="CIDR blocks, e.g. 10.20.0.0/16")


class CameraNetworksOut(BaseModel):
    networks: list[str]


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
    outcome_due: bool = Field(False, description="verified, and nobody has yet recorded what happened")
    outcome: OutcomeOut | None = Field(None, description="what happened after the verified alert, once recorded")


class OutcomeIn(_In):
    result: EngagementResult = Field(description="what happened when officers acted on the verified alert")
    note: str = Field("", max_length=2000)
    officer: str = Field(min_length=1, max_length=120, description="who engaged: a name or collar number")


class OutcomeOut(_Out):
    result: str
    note: str
    officer: str
    recorded_by: str
    recorded_at: datetime


class OutcomeDueOut(_Out):
    alert_id: int
    deployment_id: int
    camera_id: int
    at: datetime
    score: float
    verified_at: datetime | None


class ResolveIn(_In):
    decision: Literal["confirm", "dismiss"]
    note: str = Field("", max_length=2000)


class EscalationOut(_Out):
    id: int
    alert_id: int
    deployment_id: int
    score: float
    alert_at: datetime
    owner_role: str = Field(description="the role that owns it (of the owning organisation)")
    owner: str = Field(description="the owning organisation")
    opened_by: str
    opened_at: datetime
    reason: str
    status: Literal["open", "confirmed", "dismissed"]
    resolved_by: str | None
    resolved_at: datetime | None
    resolution_note: str


# --- audit and public ---------------------------------------------------------------------
class VerifyOut(_Out):
    ok: bool = Field(description="the chain is intact and the store matches it")
    count: int
    head_seq: int
    head_hash: str
    detail: str = ""
    store_problems: list[str] = Field(default_factory=list, description="where the store differs from the log")


class AuditEventOut(_Out):
    seq: int
    at: str
    actor: str
    action: str
    object_type: str
    object_id: str
    details: str = Field(description="the details exactly as hashed (canonical JSON; a personal part sealed)")
    personal: dict[str, Any] | str | None = Field(
        None, description="the sealed personal part opened: its fields while the subject's erasure key lives, "
                          "'[erased] ...' (when, by which event) after; null when the event has none")


class PublicCategory(_Out):
    """A watchlist category and how many entries had it (no entry, label or image)."""

    category: str
    words: str
    seriousness: str
    entries: int


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
    face_model: str | None = Field(None, description="the face model (name:weight digest) whose scale the threshold "
                                                     "is on")
    target_false_alert_rate: float | None = None  # when the threshold was calibrated for a target
    predicted_fnir: float | None = None  # the calibration's predicted share of listed faces missed
    watchlist_size: int | None
    people_passes: int = Field(description="people passes: faces followed over two or more analysed frames for 0.3 s "
                                           "or more (one per person walking through)")
    faces_searched: int = Field(description="faces compared against the watchlist: the unit of the false-alert rates")
    alerts: int
    verified_alerts: int
    false_alerts: int
    signage: list[str]
    report_url: str  # the deployment's effectiveness report (HTML; JSON at /api/public/deployments/{id}/report)
    forces: list[str] = Field(default_factory=list,
                              description="the police force(s) that supplied the watchlist's images")
    legal_basis: str = Field("", description="the legal basis's code ('' when recorded before the bases were a fixed "
                                             "list)")
    legal_basis_words: str = Field("", description="the legal basis in words")
    dpia_ref: str = ""
    dpia_date: date | None = None
    eia_ref: str = Field("", description="the equality impact assessment's reference")
    eia_date: date | None = None
    urgent: bool = Field(False, description="authorised by the urgency route (reviewed afterwards)")
    retro_review: str | None = Field(None,
                                     description="an urgent authority's retrospective review: upheld, ended or due")
    watchlist_categories: list[PublicCategory] = Field(
        default_factory=list, description="entries per category, as frozen when the deployment was authorised")
    outcomes: dict[str, int] = Field(
        default_factory=dict, description="verified alerts by what happened next ('not recorded' while none is)")
    decided_at: datetime | None = Field(None, description="when it was authorised, refused or cancelled")


class PublicRequestCounts(_Out):
    """People's requests across the installation (access, erasure, restriction, objection,
    complaints): counts only (openlfr.rights.requests.public_counts)."""

    received: int = Field(description="requests recorded")
    answered: int = Field(description="requests decided and answered")
    answered_in_time: int = Field(description="answered by their due date (one month, or as lawfully extended)")
    refused: int = Field(description="answered with a refusal")
    open_overdue: int = Field(description="not yet answered and past their due date")


class TransparencyOut(_Out):
    operator_notice: str = ("This page lists every decided use of live facial recognition by this operator: "
                            "authorised, refused or cancelled.")
    how_to_complain: str
    deployments: list[PublicDeployment]
    organisations: list[OrganisationOut] = Field(
        default_factory=list, description="every party registered on this installation")
    latest_checkpoint: CheckpointOut | None = Field(
        None, description="the newest signed audit checkpoint (all of them: /api/public/checkpoints)")
    requests: PublicRequestCounts | None = Field(
        None, description="people's requests received, answered, answered in time and refused "
                          "(how to make one: /transparency/requests)")


class CheckpointOut(_Out):
    seq: int = Field(description="the audit event number signed (the chain's head then)")
    head_hash: str = Field(description="that event's hash (64 hex digits)")
    at: str = Field(description="when it was signed: the exact ISO 8601 text in the signed message")
    reason: str = Field(description="why: interval, or a deployment's start, end or expiry")
    key_id: str = Field(description="SHA-256 (hex) of the raw public key")
    public_key: str = Field(description="raw Ed25519 public key, hex")
    signature: str = Field(description="Ed25519 signature (hex) of "
                           "'openlfr-checkpoint/1\\n<seq>\\n<head_hash>\\n<at>\\n<reason>\\n' (UTF-8)")


class CheckpointsOut(_Out):
    """The ``openlfr-checkpoints/1`` document (the same as ``openlfr audit checkpoints`` writes):
    keep a copy; ``openlfr audit verify --checkpoints FILE`` later shows any rewrite before the last one."""

    format: Literal["openlfr-checkpoints/1"]
    public_key: str | None = Field(description="this installation's signing key (raw Ed25519, hex); none before the "
                                               "first checkpoint")
    key_id: str | None
    exported_at: str
    message: str = Field(description="what is signed")
    checkpoints: list[CheckpointOut]


class ErrorOut(BaseModel):
    """Every error answer: one line saying why."""

    detail: str


#: the errors any API operation may answer with (documented on every route of the JSON API)
# errors are JSON even on routes that answer HTML (FastAPI would document the route's own type)
_JSON: dict[str, Any] = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}}
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, **_JSON, "description": "a body that cannot be parsed (not JSON, or a broken form)"},
    401: {"model": ErrorOut, **_JSON, "description": "not logged in, or the session or token expired or was revoked"},
    403: {"model": ErrorOut, **_JSON, "description": "wrong role or organisation, rank too low, or CSRF token missing"},
    404: {"model": ErrorOut, **_JSON, "description": "no such object"},
    409: {"model": ErrorOut, **_JSON, "description": "a governance rule refuses it, or a duplicate"},
    413: {"model": ErrorOut, **_JSON, "description": "request body or image too large"},
    415: {"model": ErrorOut, **_JSON, "description": "not a JPEG or PNG image"},
    422: {"model": ErrorOut, **_JSON, "description": "invalid input (one line naming the field)"},
    429: {"model": ErrorOut, **_JSON, "description": "too many failed attempts: see Retry-After"},
}


class HealthOut(_Out):
    status: Literal["ok"]
    database: bool
    audit_events: int


# --- one alert's early deletion and legal holds (openlfr.governance.alert_lifecycle) ---------
class AlertDeleteIn(_In):
    reason: str = Field(min_length=1, max_length=2000,
                        description="why this alert is deleted before its retention ends")


class AlertDeletedOut(_Out):
    """What deleting one alert removed; its deployment, camera, hour, score and review outcome stay (counted)."""

    alert_id: int
    media_deleted: list[int] = Field(description="ids of the crops/footage deleted")
    key_destroyed: bool = Field(description="its erasure key was destroyed: sealed copies are unreadable")
    details_deleted: bool


class HoldIn(_In):
    proceeding: str = Field(min_length=1, max_length=300, description="the proceeding the alert is kept for")
    review_date: date = Field(description="when the hold must be reviewed (a day in the future)")


class HoldOut(_Out):
    """A legal hold: the alert is kept past its retention until the hold is released."""

    id: int
    alert_id: int
    deployment_id: int
    proceeding: str
    review_date: date
    placed_by: str
    placed_at: datetime
    released_at: datetime | None
    release_reason: str
    due: bool = Field(description="in force and its review date has come")


# --- people's requests (openlfr.rights.requests) ---------------------------------------------
class RequestOpenIn(_In):
    kind: RequestKind = Field(description="what the person asks for")
    name: str = Field(min_length=1, max_length=200, description="the requester's name (kept encrypted)")
    contact: str = Field(min_length=1, max_length=500,
                         description="where to send the answer: a postal or email address")
    details: str = Field("", max_length=5000, description="what the person said (where, when, what they ask)")
    received_at: datetime | None = Field(None, description="when it was received (the clock starts then); default now")
    follows_id: int | None = Field(None, ge=1, le=2**31 - 1, description=(
        "an earlier, decided request of the same person (an erasure after an access request): its confirmed "
        "findings are copied"))


class EvidenceIn(_In):
    evidence_ref: str = Field(min_length=1, max_length=200, description=(
        "a short reference to the identity evidence seen, e.g. 'passport seen by J. Smith, ref V-123' (never a scan)"))


class ExtendIn(_In):
    reason: str = Field(min_length=1, max_length=1000, description="why the request is complex or numerous")


class DecideIn(_In):
    decision: RequestDecision
    reasons: list[Reason] = Field(
        default_factory=list, max_length=len(Reason),
        description="needed to refuse or grant in part; the s.45(4)(a)-(d) restrictions only for a police force's "
                    "(Part 3) requests")
    note: str = Field("", max_length=5000, description="words to the requester, included in the letter")


class VerdictIn(_In):
    verdict: Literal["requester", "someone_else"] = Field(description="whose record the finding is")


class FindingOut(_Out):
    """A record the search by face found; only those confirmed as the requester's are ever named in an answer."""

    id: int
    kind: str = Field(description="alert, watchlist_entry or shared_image")
    object_id: int
    score: float = Field(description="cosine similarity with the requester's photo (the record's own face model)")
    threshold: float = Field(description="that model's calibrated threshold (about 1 false match in 10,000)")
    model_id: str
    verdict: str | None = Field(description="null until a person reviews it: requester or someone_else")
    summary: str | None = Field(None, description="what the record is (camera, time, review state), naming nobody")
    held: bool = Field(True, description="whether the record's face is still held (GET /api/findings/{id}/image "
                                         "serves it while the request is open)")


class RequestOut(_Out):
    """A request as its DPO sees it (an oversight auditor sees '[withheld]' for the requester's fields)."""

    id: int
    kind: str
    organisation: str
    regime: str = Field(description="uk_gdpr (a site operator) or dpa_part3 (a police force)")
    status: str = Field(description="received, verified, searched, decided")
    received_at: datetime
    due_at: datetime
    days_left: int = Field(description="whole days to the due date (negative: past it)")
    overdue: bool
    extended: bool
    requester_name: str
    contact: str
    details: str
    identity_verified: bool
    has_photo: bool
    decision: str | None
    reasons: list[str]
    decision_note: str
    decided_at: datetime | None
    answered_in_time: bool | None
    follows_id: int | None
    findings: list[FindingOut]
