"""The force-wide central view: everything that involves a police force's images.

For the force's own central team (its suppliers, auditors and authorising officers) and for
an oversight body's auditors: every agreement the force is party to, every image it shared
(whoever in the force shared it) with its history — the watchlists it was put on, the
deployments whose frozen watchlist held it, the alerts it raised, and when it was deleted —
and every deployment and alert that used its images. This is the record the Met's central
imagery team never had for King's Cross.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select

from openlfr.governance.context import Ctx
from openlfr.governance.credentials import Actor
from openlfr.governance.sharing import LedgerView, force_ledger, force_of_viewer
from openlfr.store.models import Agreement, Alert, Deployment, Organisation, SnapshotItem, Watchlist
from openlfr.store.models import WatchlistEntry


@dataclass(frozen=True)
class Use:
    """One use of an image: on a watchlist, in a deployment's snapshot, or in an alert."""

    kind: str  # "watchlist" | "deployment" | "alert"
    id: int
    organisation: str
    at: datetime | None
    detail: str


@dataclass
class ImageHistory:
    """A shared image as its force sees it, with every use."""

    image: LedgerView
    uses: list[Use] = field(default_factory=list)


@dataclass
class ForceView:
    """What the force's central team sees."""

    force: str
    agreements: list[Agreement]
    images: list[ImageHistory]
    deployments: list[Deployment]
    alerts: list[Alert]


def force_view(ctx: Ctx, actor: Actor, force: str | None = None) -> ForceView:
    """The central view of ``force`` (the actor's own force unless an oversight auditor names one)."""
    org = force_of_viewer(ctx, actor, "force.view", force)
    ledger = force_ledger(ctx, actor, org.name)
    agreements = list(ctx.session.execute(
        select(Agreement).where(Agreement.supplier_org_id == org.id).order_by(Agreement.id)).scalars())
    image_ids = [v.image_id for v in ledger]
    org_names: dict[int | None, str] = dict(ctx.session.execute(select(Organisation.id, Organisation.name)).all())
    uses: dict[int, list[Use]] = {i: [] for i in image_ids}
    for entry, wl in ctx.session.execute(
            select(WatchlistEntry, Watchlist).join(Watchlist, Watchlist.id == WatchlistEntry.watchlist_id)
            .where(WatchlistEntry.shared_image_id.in_(image_ids)).order_by(WatchlistEntry.id)).all():
        state = f"removed {entry.removed_at:%Y-%m-%d %H:%M}" if entry.removed_at else "on the list"
        uses[entry.shared_image_id].append(Use("watchlist", wl.id, org_names.get(wl.organisation_id, "?"),
                                               entry.added_at, f"{wl.name}: entry {entry.id}, {state}"))
    dep_ids: set[int] = set()
    for item, dep in ctx.session.execute(
            select(SnapshotItem, Deployment).join(Deployment, Deployment.id == SnapshotItem.deployment_id)
            .where(SnapshotItem.shared_image_id.in_(image_ids)).order_by(Deployment.id)).all():
        dep_ids.add(dep.id)
        uses[item.shared_image_id].append(Use("deployment", dep.id, org_names.get(dep.organisation_id, "?"),
                                              dep.authorised_at, f"{dep.kind} deployment, {dep.status}: {dep.purpose}"))
    alert_rows = ctx.session.execute(
        select(Alert, WatchlistEntry.shared_image_id).join(WatchlistEntry, WatchlistEntry.id == Alert.entry_id)
        .where(WatchlistEntry.shared_image_id.in_(image_ids)).order_by(Alert.id)).all()
    for alert, image_id in alert_rows:
        dep_ids.add(alert.deployment_id)
        outcome = {"true": "verified", "false": "false alert"}.get(alert.review_outcome or "", "not settled")
        deleted = f", deleted {alert.deleted_at:%Y-%m-%d}" if alert.deleted_at else ""
        uses[image_id].append(Use("alert", alert.id, "", alert.at,
                                  f"deployment {alert.deployment_id}, score {alert.score:.3f}, {outcome}{deleted}"))
    deployments = list(ctx.session.execute(
        select(Deployment).where(Deployment.id.in_(dep_ids)).order_by(Deployment.id)).scalars()) if dep_ids else []
    images = [ImageHistory(v, uses[v.image_id]) for v in ledger]
    ctx.audit(actor, "force.view", "organisation", org.id, images=len(images), agreements=len(agreements))
    return ForceView(org.name, agreements, images, deployments, [a for a, _ in alert_rows])

