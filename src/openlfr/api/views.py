"""Read models shared by the JSON routes and the console pages."""

from __future__ import annotations

from sqlalchemy import select

from openlfr.api import defs, reviews
from openlfr.errors import NotFoundError
from openlfr.evaluation import deployment_report
from openlfr.governance import Ctx
from openlfr.governance.cameras import current_signage
from openlfr.store.models import Alert, Camera, Deployment, WatchlistEntry

PUBLIC_STATUSES = ("authorised", "live", "ended")


def alert_out(ctx: Ctx, alert: Alert) -> defs.AlertOut:
    """An alert as reviewers see it."""
    entry = ctx.session.get(WatchlistEntry, alert.entry_id) if alert.entry_id is not None else None
    camera = ctx.session.get(Camera, alert.camera_id)
    rows = reviews.reviews_of(ctx, alert.id)
    return defs.AlertOut(
        id=alert.id, deployment_id=alert.deployment_id, camera_id=alert.camera_id,
        camera=camera.name if camera else "?", at=alert.at, score=alert.score,
        label=entry.label if entry else None, reason=entry.reason if entry else None,
        status=reviews.status(alert, rows), confirmations=reviews.confirmations(rows),
        reviews=[defs.ReviewOut(reviewer=name, decision=r.decision, note=r.note, at=r.at) for r, name in rows],
    )


def list_alerts(ctx: Ctx, limit: int = 200) -> list[defs.AlertOut]:
    """Newest alerts still held, newest first."""
    rows = ctx.session.execute(
        select(Alert).where(Alert.deleted_at.is_(None)).order_by(Alert.id.desc()).limit(limit)).scalars()
    return [alert_out(ctx, a) for a in rows]


def deployment_out(dep: Deployment) -> defs.DeploymentOut:
    """A deployment for staff."""
    return defs.DeploymentOut(
        id=dep.id, purpose=dep.purpose, watchlist_id=dep.watchlist_id, camera_ids=[c.id for c in dep.cameras],
        start=dep.start, end=dep.end, threshold=dep.threshold, dpia_ref=dep.dpia_ref, status=dep.status,
        snapshot_hash=dep.snapshot_hash, snapshot_size=dep.snapshot_size)


def public_report(ctx: Ctx, deployment_id: int) -> deployment_report.DeploymentEffectiveness:
    """A public deployment's effectiveness report (counts and rates only)."""
    dep = ctx.session.get(Deployment, deployment_id)
    if dep is None or dep.status not in PUBLIC_STATUSES:
        raise NotFoundError(f"no public deployment {deployment_id}")
    return deployment_report.for_deployment(ctx.session, deployment_id)


def transparency(ctx: Ctx, complaints: str) -> defs.TransparencyOut:
    """What the public may know: where, when, why, how many; never images, templates or names."""
    deps = ctx.session.execute(
        select(Deployment).where(Deployment.status.in_(PUBLIC_STATUSES)).order_by(Deployment.start.desc())).scalars()
    out = []
    for dep in deps:
        report = deployment_report.for_deployment(ctx.session, dep.id)
        signs = [s.text for c in dep.cameras if (s := current_signage(ctx, c.id, dep.start.date())) is not None]
        out.append(defs.PublicDeployment(
            id=dep.id, status=dep.status, purpose=dep.purpose, cameras=[c.name for c in dep.cameras],
            locations=[c.location for c in dep.cameras], start=dep.start, end=dep.end, threshold=dep.threshold,
            threshold_source="calibrated" if dep.target_false_alert_rate else "set directly",
            target_false_alert_rate=report.target_false_alert_rate, predicted_fnir=report.predicted_fnir,
            watchlist_size=dep.snapshot_size, faces_seen=report.faces_seen, alerts=report.alerts,
            verified_alerts=report.verified_true, false_alerts=report.verified_false,
            signage=sorted(set(signs)), report_url=f"/transparency/deployments/{dep.id}/report"))
    return defs.TransparencyOut(how_to_complain=complaints, deployments=out)
