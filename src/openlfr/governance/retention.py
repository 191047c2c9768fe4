"""Retention: alerts, face crops and footage deleted when their time is up, every deletion audited.

Defaults (see :class:`~openlfr.governance.settings.Policy`): alerts and the crops/footage
attached to them 31 days; crops/footage tied to no alert are due at once (the next sweep).
The sweep also expires agreements (purging their images) and ends overdue deployments,
deleting their watchlist snapshots 24 h after the end.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select

from openlfr.errors import InputError
from openlfr.governance import agreements, deployments, outcomes
from openlfr.governance.context import Ctx
from openlfr.governance.errors import RuleViolation
from openlfr.rights.keys import alert_ref, seal_bytes
from openlfr.store.models import Alert, Camera, Deployment, MediaItem

if TYPE_CHECKING:
    from openlfr.governance.context import Governance

SYSTEM = "system:retention"
log = logging.getLogger(__name__)


def record_alert(ctx: Ctx, deployment_id: int, camera_id: int, score: float, at: datetime,
                 entry_id: int | None = None, worker: str = "matcher") -> Alert:
    """Store an alert of a live deployment with its retention deadline."""
    ctx.attempt = (worker, "alert.record", "deployment", str(deployment_id))
    dep = ctx.get(Deployment, deployment_id, "deployment")
    ctx.get(Camera, camera_id, "camera")
    if dep.status != "live" or not dep.start <= at < dep.end:
        raise RuleViolation(f"deployment {deployment_id} is not live at {at:%Y-%m-%d %H:%M}: alert refused")
    row = Alert(deployment_id=dep.id, camera_id=camera_id, entry_id=entry_id, score=score, at=at,
                retain_until=at + timedelta(days=ctx.policy.alert_retention_days))
    ctx.session.add(row)
    ctx.session.flush()
    # which watchlist entry a passer-by's face matched, and how closely, is personal data of both:
    # sealed under the alert's erasure key (openlfr.rights.keys), so erasing the alert erases it here too
    ctx.audit(worker, "alert.record", "alert", row.id, deployment=dep.id, camera=camera_id,
              retain_until=row.retain_until, personal={"entry": entry_id, "score": round(score, 4)},
              subject=alert_ref(row.id))
    return row


def record_media(ctx: Ctx, kind: str, deployment_id: int, camera_id: int, data: bytes, at: datetime,
                 alert_id: int | None = None, worker: str = "matcher") -> MediaItem:
    """Store an encrypted face crop or footage clip; kept as long as its alert, else due at once."""
    if kind not in ("crop", "footage"):
        raise InputError(f"media kind must be crop or footage, not {kind!r}")
    ctx.attempt = (worker, f"{kind}.record", "deployment", str(deployment_id))
    ctx.get(Deployment, deployment_id, "deployment")
    ctx.get(Camera, camera_id, "camera")
    if alert_id is not None:
        alert = ctx.get(Alert, alert_id, "alert")
        until = alert.retain_until
    else:
        until = at + timedelta(seconds=ctx.policy.non_alert_retention_seconds)
    if alert_id is not None:  # under the alert's own key too: erasing the alert makes every copy unreadable
        data = seal_bytes(ctx, alert_ref(alert_id), data)
    row = MediaItem(kind=kind, deployment_id=deployment_id, camera_id=camera_id, alert_id=alert_id,
                    blob=ctx.blobs.put(data), created_at=at, retain_until=until)
    ctx.session.add(row)
    ctx.session.flush()
    ctx.audit(worker, f"{kind}.record", "media", row.id, deployment=deployment_id, alert=alert_id, retain_until=until)
    return row


@dataclass
class SweepReport:
    """What one sweep deleted or closed."""

    agreements_expired: list[int] = field(default_factory=list)
    deployments_ended: list[int] = field(default_factory=list)
    snapshots_deleted: list[int] = field(default_factory=list)
    alerts_deleted: list[int] = field(default_factory=list)
    media_deleted: list[int] = field(default_factory=list)
    temp_files_removed: int = 0  # half-written files a crash left
    orphan_blobs_removed: int = 0  # files of transactions that never committed

    def summary(self) -> str:
        """One line for people."""
        text = (f"{len(self.agreements_expired)} agreements expired, {len(self.deployments_ended)} deployments ended, "
                f"{len(self.snapshots_deleted)} snapshots, {len(self.alerts_deleted)} alerts and "
                f"{len(self.media_deleted)} crops/footage deleted")
        if self.temp_files_removed or self.orphan_blobs_removed:
            text += (f"; {self.temp_files_removed} half-written and {self.orphan_blobs_removed} unreferenced "
                     "files left by interrupted writes removed")
        return text


def sweep(ctx: Ctx, orphan_grace_s: float = 3600.0) -> SweepReport:
    """Apply every retention rule due at ``ctx.now()``; each deletion is an audit event. Also
    removes what a crash left in the blob folder (half-written files, files of transactions
    that never committed) older than ``orphan_grace_s`` seconds."""
    now = ctx.now()
    report = SweepReport()
    report.agreements_expired = [a.id for a in agreements.expire_due(ctx, SYSTEM)]
    report.deployments_ended, report.snapshots_deleted = deployments.sweep(ctx, SYSTEM)
    for media in ctx.session.execute(
        select(MediaItem).where(MediaItem.deleted_at.is_(None), MediaItem.retain_until <= now).order_by(MediaItem.id)
    ).scalars():
        _delete_media(ctx, media, "retention period over")
        report.media_deleted.append(media.id)
    for alert in ctx.session.execute(
        select(Alert).where(Alert.deleted_at.is_(None), Alert.retain_until <= now).order_by(Alert.id)
    ).scalars():
        for media in ctx.session.execute(
            select(MediaItem).where(MediaItem.alert_id == alert.id, MediaItem.deleted_at.is_(None))
        ).scalars():
            _delete_media(ctx, media, f"alert {alert.id} deleted")
            report.media_deleted.append(media.id)
        if outcomes.outcome_due(ctx.session, alert):  # verified, yet nobody recorded what happened
            ctx.audit(SYSTEM, "alert.outcome_missing", "alert", alert.id, deployment=alert.deployment_id)
        alert.deleted_at = now
        ctx.audit(SYSTEM, "alert.delete", "alert", alert.id, retain_until=alert.retain_until)
        report.alerts_deleted.append(alert.id)
    report.temp_files_removed, report.orphan_blobs_removed = ctx.blobs.store.remove_orphans(
        referenced_blobs(ctx), orphan_grace_s)
    ctx.audit(SYSTEM, "retention.sweep", "store", "-", summary=report.summary())
    return report


def referenced_blobs(ctx: Ctx) -> set[str]:
    """Every blob id a row refers to (images, templates, snapshots, crops and footage)."""
    from openlfr.store.models import Deployment, SharedImage

    ids: set[str] = set()
    for column in (SharedImage.image_blob, SharedImage.template_blob, Deployment.snapshot_blob, MediaItem.blob):
        ids.update(b for b in ctx.session.execute(select(column).where(column.is_not(None))).scalars())
    return ids


def _delete_media(ctx: Ctx, media: MediaItem, reason: str) -> None:
    if media.blob:
        ctx.blobs.delete(media.blob)
    media.blob, media.deleted_at = None, ctx.now()
    ctx.audit(SYSTEM, f"{media.kind}.delete", "media", media.id, reason=reason)


class RetentionSweeper:
    """Runs :func:`sweep` at once and then every ``interval_s`` seconds on a background thread,
    so that retention is enforced by the running service, not by someone remembering a cron job."""

    def __init__(self, gov: Governance, interval_s: float = 300.0) -> None:
        if interval_s <= 0:
            raise InputError("the retention sweep interval must be positive")
        self.gov = gov
        self.interval_s = interval_s
        self.sweeps = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="retention-sweeper", daemon=True)

    def start(self) -> "RetentionSweeper":
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                with self.gov.transaction() as ctx:
                    report = sweep(ctx)
                self.sweeps += 1
                log.info("retention sweep: %s", report.summary())
            except Exception:  # noqa: BLE001 - a failed sweep is retried at the next interval
                log.exception("retention sweep failed; retrying in %.0f s", self.interval_s)
            self._stop.wait(self.interval_s)
