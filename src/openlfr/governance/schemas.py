"""Service inputs: pydantic models that validate what callers (CLI, API) hand in."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Any, Self, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

from openlfr.errors import InputError


class Role(StrEnum):
    """The roles a user can hold (one each)."""

    ADMIN = "admin"  # an organisation's own user administrator: creates, deactivates, resets its users
    SUPPLIER = "supplier"
    OPERATOR_ADMIN = "operator_admin"
    AUTHORISING_OFFICER = "authorising_officer"
    REVIEWER = "reviewer"
    AUDITOR = "auditor"


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
                                     Role.REVIEWER, Role.AUDITOR}),
    OrgKind.SITE_OPERATOR: frozenset({Role.ADMIN, Role.OPERATOR_ADMIN, Role.REVIEWER, Role.AUDITOR}),
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
    allowed_categories: list[str] = Field(min_length=1)
    allow_under_18: bool = False

    @model_validator(mode="after")
    def _dates_in_order(self) -> Self:
        if self.valid_until <= self.valid_from:
            raise ValueError("valid_until must be after valid_from")
        if any(not c.strip() for c in self.allowed_categories):
            raise ValueError("categories must not be empty")
        return self


class ShareImage(_In):
    """Metadata of one image a supplier shares (the bytes are passed alongside)."""

    agreement_id: int
    category: str = Field(min_length=1, max_length=64)
    reason: str = Text
    subject_ref: str = Field(min_length=1, max_length=120, description="pseudonymous reference, not a name")
    image_date: date
    under_18: bool = False


class WatchlistCreate(_In):
    """A new governed watchlist."""

    name: str = Name
    criteria: str = Text
    size_cap: int = Field(gt=0)


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


class SignageCreate(_In):
    """A check of the public notice at a camera."""

    camera_id: int
    text: str = Text
    checked_on: date


class DeploymentKind(StrEnum):
    """Live cameras, or a search of recorded footage."""

    LIVE = "live"
    RETROSPECTIVE = "retrospective"


class DeploymentRequest(_In):
    """What an operator admin asks an authorising officer to approve."""

    kind: DeploymentKind = DeploymentKind.LIVE
    purpose: str = Text
    watchlist_id: int
    camera_ids: list[int] = Field(min_length=1)
    start: AwareDatetime
    end: AwareDatetime
    threshold: float | None = Field(None, gt=0, le=1)
    # instead of a raw threshold: tolerated false alerts per face seen; the threshold is then
    # calibrated for the watchlist (see openlfr.evaluation.calibration)
    target_false_alert_rate: float | None = Field(None, gt=0, lt=1)
    confirmations_required: int = Field(
        2, ge=1, le=5, description="different reviewers who must confirm an alert before it counts as verified")
    police_review_required: bool = Field(False, description="only police reviewers may confirm its alerts")
    dpia_ref: str = Field(min_length=1, max_length=200)
    necessity: str = Field(min_length=20, max_length=5000, description="necessity and proportionality statement")

    @model_validator(mode="after")
    def _window_in_order(self) -> Self:
        if (self.threshold is None) == (self.target_false_alert_rate is None):
            raise ValueError("give either a threshold or a target false-alert rate, not both")
        if self.end <= self.start:
            raise ValueError("end must be after start")
        if len(set(self.camera_ids)) != len(self.camera_ids):
            raise ValueError("a camera is listed twice")
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
