"""Governance policy defaults, each overridable as ``OPENLFR_<FIELD>``.

Suggested to move into :mod:`openlfr.config` once the settings there settle.
"""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Policy(BaseSettings):
    """Retention periods, limits and checks the services enforce."""

    model_config = SettingsConfigDict(env_prefix="OPENLFR_", extra="ignore")

    alert_retention_days: float = Field(31, ge=0, description="alerts and their crops/footage are kept this long")
    non_alert_retention_seconds: float = Field(0, ge=0, description="crops/footage not tied to an alert: 0 = next sweep")
    dismissed_alert_retention_hours: float = Field(
        0, ge=0, description="an alert dismissed as someone else (a false alert) is pseudonymised this long after its "
        "review: its crop, key and details go, the counts stay; 0 = at the next sweep")
    request_record_retention_days: float = Field(
        730, ge=0, description="a decided request's personal details (requester, evidence, note, letter) are erased "
        "this long after the decision; its kind, dates and decision stay for the public counts")
    snapshot_retention_hours: float = Field(
        24, ge=0, description="a deployment's watchlist snapshot is deleted this long after its end")
    signage_max_age_days: int = Field(90, ge=0, description="a signage check older than this is not current")
    watchlist_max_size: int = Field(2000, gt=0, description="no watchlist may have a size cap above this")
    min_authorising_rank: str = Field(
        "superintendent", description="lowest police rank that may approve agreements and authorise deployments")
    min_entry_quality: float = Field(
        0.1, ge=0, le=1, description="lowest face quality score an image may have to be shared or put on a watchlist "
        "(measured on the shared data: docs/governance.md, bench/quality_floor.py)")
    max_deployment_hours: float = Field(72, gt=0, description="longest window a deployment may be requested for")
    urgent_min_rank: str = Field(
        "inspector", description="lowest police rank that may authorise a deployment by the urgency route")
    urgent_review_hours: float = Field(
        24, gt=0, description="an urgent authority must be reviewed by an officer of the usual rank within this; "
        "unreviewed, the deployment ends")
    entry_review_warning_days: int = Field(7, ge=0, description="entries this close to review are flagged to the authoriser")
    signage_backdate_days: int = Field(
        2, ge=0, description="a signage check may be recorded at most this many days after it was made")
    checkpoint_interval_minutes: float = Field(
        15, gt=0, description="the audit chain's head is signed at least this often while anything is written")
    camera_claim_seconds: float = Field(
        30, gt=0, description="a camera worker's claim on its camera lasts this long unless renewed")
    login_attempts: int = Field(5, gt=0, description="failed logins allowed per user name and place...")
    login_window_seconds: float = Field(300, gt=0, description="...within this many seconds; then a lockout that doubles")
    login_place_attempts: int = Field(
        100, gt=0, description="failed logins allowed per place (client address) whatever the names, per window: "
                               "stops a spray of guesses across many names")

    @field_validator("min_authorising_rank", "urgent_min_rank")
    @classmethod
    def _known_rank(cls, value: str) -> str:
        from openlfr.governance.ranks import RANKS

        if value not in RANKS:
            raise ValueError(f"unknown police rank {value!r}; known ranks: {', '.join(RANKS)}")
        return value
