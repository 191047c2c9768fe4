"""Service inputs: pydantic models that validate what callers (CLI, API) hand in."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Any, Self, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

from openlfr.errors import InputError
from openlfr.governance.grounds import WatchlistCategory
from openlfr.governance.grounds import LegalBasis


class Role(StrEnum):
    """The roles a user can hold (one each)."""

    ADMIN = "admin"  # an organisation's own user administrator: creates, deactivates, resets its users
    SUPPLIER = "supplier"
    OPERATOR_ADMIN = "operator_admin"
    AUTHORISING_OFFICER = "authorising_officer"
    REVIEWER = "reviewer"
    AUDITOR = "auditor"
    DPO = "dpo"  # data protection officer: people's requests (access, erasure, objection, complaints)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)


Text = Field(min_length=1, max_length=2000)
Name = Field(min_length=1, max_length=120)


class OrgKind(StrEnum):
    """The kinds of party."""

    POLICE_FORCE = "police_force"
    SITE_OPERATOR = "site_operator"
    OVERSIGHT_BODY = "oversight_body"


# which roles each kind of organisation may give its users
ROLES_BY_KIND: dict[OrgKind, frozenset[Role]] = {
    OrgKind.POLICE_FORCE: frozenset({Role.ADMIN, Role.SUPPLIER, Role.AUTHORISING_OFFICER, Role.OPERATOR_ADMIN,
                                     Role.REVIEWER, Role.AUDITOR, Role.DPO}),
    OrgKind.SITE_OPERATOR: frozenset({Role.ADMIN, Role.OPERATOR_ADMIN, Role.REVIEWER, Role.AUDITOR, Role.DPO}),
    OrgKind.OVERSIGHT_BODY: frozenset({Role.ADMIN, Role.AUDITOR}),
}


class OrganisationCreate(_In):
    """A new party."""

    name: str = Field(min_length=1, max_length=200)
    kind: OrgKind


class UserCreate(_In):
    """A new user of the acting admin's own organisation."""

    name: str = Name
    role: Role
    rank: str | None = Field(None, max_length=40, description="police rank (police users only)")


class AgreementCreate(_In):
    """A data-sharing agreement offered by the acting supplier to an operator."""

    operator: str = Field(min_length=1, max_length=200)
    purpose: str = Text
    lawful_basis: str = Text
    valid_from: AwareDatetime
    valid_until: AwareDatetime
    image_limit: int = Field(gt=0, le=1_000_000)
    allowed_categories: list[WatchlistCategory] = Field(
        min_length=1, description="the watchlist categories images may be shared for (fixed list)")
    allow_under_18: bool = False

    @model_validator(mode="after")
    def _dates_in_order(self) -> Self:
        if self.valid_until <= self.valid_from:
            raise ValueError("valid_until must be after valid_from")
        if len(set(self.allowed_categories)) != len(self.allowed_categories):
            raise ValueError("a category is listed twice")
        return self


class ShareImage(_In):
    """Metadata of one image a supplier shares (the bytes are passed alongside)."""

    agreement_id: int
    category: WatchlistCategory
    reason: str = Text
    subject_ref: str = Field(min_length=1, max_length=120,
                             description="pseudonymous code, never a name or a date of birth "
                                         "(see openlfr.governance.pseudonyms)")
    image_date: date
    under_18: bool = False
    warrant_ref: str = Field("", max_length=120, description="the warrant or court reference; required for the "
                             "categories that need one (the wanted ones and court orders)")


class WatchlistCreate(_In):
    """A new governed watchlist."""

    name: str = Name
    criteria: str = Text
    categories: list[WatchlistCategory] = Field(
        min_length=1, description="the composition criteria: the only categories its entries may have")
    size_cap: int = Field(gt=0)

    @model_validator(mode="after")
    def _no_repeats(self) -> Self:
        if len(set(self.categories)) != len(self.categories):
            raise ValueError("a category is listed twice")
        return self


class WatchlistAdd(_In):
    """Put one shared image on a watchlist."""

    watchlist_id: int
    shared_image_id: int
    label: str = Name
    reason: str = Text
    review_date: date
    under_18: bool = False


class CameraCreate(_In):
    """A new camera."""

    name: str = Name
    location: str = Text
    zone: str = Field("", max_length=120)
    stream_url: str = Field("", max_length=2000)


class CameraUpdate(_In):
    """Changes to a camera: only the fields given change.

    ``settings`` changes the named analysis settings (``openlfr.pipeline.settings.CameraSettings``,
    e.g. ``{"analyse_fps": 4, "roi": [0, 200, 1919, 1079]}``); a setting given as ``null`` goes
    back to its default."""

    location: str | None = Field(None, min_length=1, max_length=2000)
    zone: str | None = Field(None, max_length=120)
    stream_url: str | None = Field(None, max_length=2000, description="the camera's address; '' removes it")
    settings: dict[str, Any] | None = Field(None, description="analysis settings to change (null: default)")


class SignageCreate(_In):
    """A check of the public notice at a camera."""

    camera_id: int
    text: str = Text
    checked_on: date
    deployment_id: int | None = Field(
        None, description="the deployment the check was made for; a deployment starts only on checks made for it")


class DeploymentKind(StrEnum):
    """Live cameras, or a search of recorded footage."""

    LIVE = "live"
    RETROSPECTIVE = "retrospective"


# What a reference or statement may not be: words that stand in for a document or an argument
# that does not exist yet (compared case-insensitively, ignoring spaces, dots and dashes at the ends)
PLACEHOLDERS = frozenset({
    "", "none", "n/a", "na", "nil", "null", "tbc", "tba", "tbd", "to be confirmed", "to follow", "pending", "todo",
    "unknown", "not applicable", "not yet", "see dpia", "see the dpia", "as above", "as per dpia", "x", "xx", "xxx",
    "?", "-", "--", "...", "same", "ditto", "n a",
})
# A necessity or proportionality statement must say what pressing need (or what balance of
# intrusion and benefit) justifies the deployment and why less intrusive means will not do: a
# sentence with a subject, an aim and a reason. Ten words is the shortest such sentence in
# practice ("Violent robberies here rose; patrols and CCTV review have not identified suspects"
# is 12), and at least seven distinct words stops padding by repetition.
MIN_STATEMENT_WORDS = 10
MIN_STATEMENT_DISTINCT = 7
# A DPIA exists in UK law from 25 May 2018 (UK GDPR Art. 35 / DPA 2018 s.64); the public-sector
# equality duty an equality impact assessment records, from 5 April 2011 (Equality Act 2010
# s.149). A date before either is a typing error.
DPIA_EARLIEST = date(2018, 5, 25)
EIA_EARLIEST = date(2011, 4, 5)


def placeholder(text: str) -> bool:
    """Whether ``text`` stands in for something missing ("none", "n/a", "tbc", "see DPIA", ...)."""
    core = " ".join(text.lower().split()).strip(" .-_/")
    return core in PLACEHOLDERS or not any(ch.isalnum() for ch in text)


def _reference(what: str, value: str) -> str:
    if placeholder(value):
        raise ValueError(f"{what} {value!r} is not a reference: give the document's reference")
    return value


def _statement(what: str, value: str) -> str:
    words = [w for w in (w.strip(".,;:!?()\"'") for w in value.lower().split()) if any(c.isalpha() for c in w)]
    if placeholder(value) or len(words) < MIN_STATEMENT_WORDS or len(set(words)) < MIN_STATEMENT_DISTINCT:
        raise ValueError(f"the {what} statement must say why, in at least {MIN_STATEMENT_WORDS} words "
                         f"({len(words)} given); a placeholder or a repeated word is not a statement")
    return value


class DeploymentRequest(_In):
    """What an operator admin asks an authorising officer to approve, with its legal grounds."""

    kind: DeploymentKind = DeploymentKind.LIVE
    purpose: str = Text
    watchlist_id: int
    camera_ids: list[int] = Field(min_length=1)
    start: AwareDatetime
    end: AwareDatetime
    threshold: float | None = Field(None, gt=0, le=1)
    # instead of a raw threshold: tolerated false alerts per face searched; the threshold is then
    # calibrated for the watchlist (see openlfr.evaluation.calibration)
    target_false_alert_rate: float | None = Field(None, gt=0, lt=1)
    confirmations_required: int = Field(
        2, ge=1, le=5, description="different reviewers who must confirm an alert before it counts as verified")
    police_review_required: bool = Field(False, description="only police reviewers may confirm its alerts")
    legal_basis: LegalBasis = Field(description="a police force's: a DPA 2018 s.35 / Schedule 8 basis; anyone "
                                    "else's: a UK GDPR Art. 6 / Art. 9 basis")
    dpia_ref: str = Field(min_length=1, max_length=200, description="the data protection impact assessment")
    dpia_date: date = Field(description="when the DPIA was signed off (not after the request)")
    eia_ref: str = Field(min_length=1, max_length=200, description="the equality impact assessment")
    eia_date: date = Field(description="when the equality impact assessment was signed off (not after the request)")
    necessity: str = Field(min_length=1, max_length=5000, description="why the deployment is necessary "
                           f"(at least {MIN_STATEMENT_WORDS} words)")
    proportionality: str = Field(min_length=1, max_length=5000, description="why its intrusion is proportionate "
                                 f"to its aim (at least {MIN_STATEMENT_WORDS} words)")
    urgent: bool = Field(False, description="the urgency route: authorised by a lower rank, reviewed afterwards")
    urgency_reason: str = Field("", max_length=2000, description="why it cannot wait (required when urgent)")

    @model_validator(mode="after")
    def _window_in_order(self) -> Self:
        if (self.threshold is None) == (self.target_false_alert_rate is None):
            raise ValueError("give either a threshold or a target false-alert rate, not both")
        if self.end <= self.start:
            raise ValueError("end must be after start")
        if len(set(self.camera_ids)) != len(self.camera_ids):
            raise ValueError("a camera is listed twice")
        _reference("the DPIA reference", self.dpia_ref)
        _reference("the equality impact assessment reference", self.eia_ref)
        if self.dpia_date < DPIA_EARLIEST:
            raise ValueError(f"a DPIA dated {self.dpia_date} predates UK GDPR DPIAs ({DPIA_EARLIEST})")
        if self.eia_date < EIA_EARLIEST:
            raise ValueError(f"an equality impact assessment dated {self.eia_date} predates the public-sector "
                             f"equality duty ({EIA_EARLIEST})")
        _statement("necessity", self.necessity)
        _statement("proportionality", self.proportionality)
        if self.urgent and placeholder(self.urgency_reason):
            raise ValueError("an urgent deployment needs the reason it cannot wait (urgency_reason)")
        if not self.urgent and self.urgency_reason:
            raise ValueError("an urgency reason was given but the deployment is not marked urgent")
        return self


M = TypeVar("M", bound=BaseModel)


def parse(model: type[M], **fields: Any) -> M:
    """Build ``model`` from ``fields``, turning validation errors into one :class:`InputError` line."""
    try:
        return model(**fields)
    except ValidationError as err:
        parts = []
        for e in err.errors():
            where = ".".join(str(p) for p in e["loc"]) or model.__name__
            parts.append(f"{where}: {e['msg']}")
        raise InputError("invalid input: " + "; ".join(parts)) from None
