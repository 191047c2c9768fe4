"""The staff read model of a deployment: every fact an officer authorises, and what happened
since. Shared by the HTTP API (its response models, re-exported by :mod:`openlfr.api.defs`)
and the command line (``openlfr deployment show``), so that neither door depends on the other.
"""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import object_session

from openlfr.governance.composition import deployment_composition
from openlfr.governance.context import Ctx
from openlfr.governance.grounds import LegalBasis
from openlfr.governance.schemas import DeploymentKind
from openlfr.store.models import Deployment, Organisation, WatchlistEntry


class _Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class CameraBriefOut(_Out):
    id: int
    name: str
    location: str
    zone: str


class WatchlistBriefOut(_Out):
    id: int
    name: str
    criteria: str = Field(description="who may be put on it")
    entries: int = Field(description="entries on it now")
    size_cap: int
    categories: dict[str, int] = Field(description="entries per sharing category")
    under_18: int = Field(description="entries flagged as under 18")


class CategoryCountOut(_Out):
    category: str
    words: str
    seriousness: str
    entries: int


class ReviewDueOut(_Out):
    entry_id: int
    review_date: date


class CompositionOut(_Out):
    """A watchlist's composition: counts and dates only, no labels, reasons or images."""

    at: datetime = Field(description="when it was computed (for an authorised deployment: at authorisation)")
    watchlist_id: int
    entries: int
    under_18: int
    oldest_image: date | None = Field(description="the date of the oldest image on it")
    categories: list[CategoryCountOut]
    review_warning_days: int
    review_due: list[ReviewDueOut] = Field(description="entries due for review within review_warning_days")


class DeploymentOut(_Out):
    """Everything an officer authorises, and what happened since."""

    id: int
    kind: DeploymentKind
    organisation: str = Field(description="the operator organisation that runs it")
    purpose: str
    necessity: str = Field("", description="the necessity and proportionality statement")
    watchlist_id: int
    watchlist: WatchlistBriefOut | None = None
    camera_ids: list[int]
    cameras: list[CameraBriefOut] = Field(default_factory=list)
    start: datetime
    end: datetime
    threshold: float
    threshold_basis: str = Field("", description="where the threshold comes from")
    model_id: str | None = Field(None, description="the face model (frozen at authorisation)")
    dpia_ref: str
    status: str
    confirmations_required: int
    police_review_required: bool = Field(description="only police reviewers may confirm its alerts")
    snapshot_hash: str | None
    snapshot_size: int | None
    legal_basis: str = Field("", description="the legal basis's code (empty on deployments requested before it was "
                                             "asked for)")
    legal_basis_words: str = Field("", description="the legal basis in words")
    dpia_date: date | None = None
    eia_ref: str = Field("", description="the equality impact assessment")
    eia_date: date | None = None
    proportionality: str = Field("", description="why its intrusion is proportionate to its aim")
    urgent: bool = Field(False, description="requested by the urgency route (a lower rank may authorise it)")
    urgency_reason: str = ""
    retro_review_due: datetime | None = Field(None, description="an urgent authority's review is due by then, "
                                              "else the deployment ends")
    retro_review_outcome: str | None = Field(None, description="upheld or ended, once reviewed")
    composition: CompositionOut | None = Field(
        None, description="what the watchlist is made of: live while requested, frozen at authorisation")


def _org_name(dep: Deployment) -> str:
    session = object_session(dep)
    org = session.get(Organisation, dep.organisation_id) if session is not None and dep.organisation_id else None
    return org.name if org is not None else ""


def _watchlist_brief(dep: Deployment) -> WatchlistBriefOut | None:
    wl = dep.watchlist
    session = object_session(dep)
    if wl is None or session is None:
        return None
    live = session.execute(select(WatchlistEntry).where(WatchlistEntry.watchlist_id == wl.id,
                                                        WatchlistEntry.removed_at.is_(None))).scalars().all()
    categories: dict[str, int] = {}
    for e in live:
        categories[e.shared_image.category] = categories.get(e.shared_image.category, 0) + 1
    return WatchlistBriefOut(id=wl.id, name=wl.name, criteria=wl.criteria, entries=len(live), size_cap=wl.size_cap,
                                  categories=categories, under_18=sum(1 for e in live if e.under_18))


def threshold_basis(dep: Deployment) -> str:
    """Where a deployment's threshold comes from, in words."""
    calibration = dep.calibration or {}
    if dep.target_false_alert_rate is not None:
        cohort = calibration.get("cohort") or calibration.get("source") or "the configured cohort"
        return (f"calibrated for {dep.target_false_alert_rate:g} false alerts per passer-by on no list "
                f"({cohort})")
    return "set by hand (no calibration)"


def basis_words(code: str) -> str:
    """A legal basis's code in words (empty for a code from before the fixed list)."""
    try:
        return LegalBasis(code).words
    except ValueError:  # requested before the basis was a fixed list
        return ""


def deployment_out(dep: Deployment, ctx: Ctx | None = None) -> DeploymentOut:
    """A deployment for staff: every fact an officer authorises (with ``ctx``, the watchlist's
    composition of a requested deployment, as the authoriser sees it before authorising)."""
    return DeploymentOut(
        id=dep.id, kind=dep.kind, organisation=_org_name(dep), purpose=dep.purpose, necessity=dep.necessity,
        watchlist_id=dep.watchlist_id, watchlist=_watchlist_brief(dep),
        camera_ids=[c.id for c in dep.cameras],
        cameras=[CameraBriefOut.model_validate(c) for c in dep.cameras],
        start=dep.start, end=dep.end, threshold=dep.threshold, threshold_basis=threshold_basis(dep),
        model_id=dep.model_id, dpia_ref=dep.dpia_ref, status=dep.status,
        confirmations_required=dep.confirmations_required,
        police_review_required=dep.police_review_required, snapshot_hash=dep.snapshot_hash,
        snapshot_size=dep.snapshot_size, legal_basis=dep.legal_basis, legal_basis_words=basis_words(dep.legal_basis),
        dpia_date=dep.dpia_date, eia_ref=dep.eia_ref, eia_date=dep.eia_date, proportionality=dep.proportionality,
        urgent=dep.urgent, urgency_reason=dep.urgency_reason, retro_review_due=dep.retro_review_due,
        retro_review_outcome=dep.retro_review_outcome, composition=deployment_composition(dep, ctx))
