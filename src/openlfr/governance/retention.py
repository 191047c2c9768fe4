"""Retention: alerts, face crops and footage deleted when their time is up, every deletion audited.

Defaults (see :class:`~openlfr.config.Policy`): alerts and the crops/footage
attached to them 31 days; an alert dismissed as someone else (a false alert) only until the
next sweep after its review; crops/footage tied to no alert are due at once (the next sweep).
An alert whose retention has ended is pseudonymised (:func:`openlfr.rights.erasure.wipe_alert`):
its crop, key, details and notes go, the counts the reports need stay. An alert under a legal
hold (:mod:`openlfr.governance.alert_lifecycle`) is skipped, its crop kept, until the hold is
released. The sweep also expires agreements (purging their images) and ends overdue
deployments, deleting their watchlist snapshots 24 h after the end.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, and_, or_, select

from openlfr.errors import InputError
from openlfr.governance import agreements, deployments, outcomes
from openlfr.governance.context import Ctx
from openlfr.governance.errors import RuleViolation
from openlfr.rights.erasure import active_hold, wipe_alert
from openlfr.rights.keys import alert_ref, seal_bytes
from openlfr.rights import requests
from openlfr.store.models import Alert, Camera, Deployment, LegalHold, MediaItem

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
    alerts_pseudonymised: list[int] = field(default_factory=list)  # retention over: wiped to the counts
    media_deleted: list[int] = field(default_factory=list)
    alerts_held: list[int] = field(default_factory=list)  # retention over, kept under a legal hold
    holds_due_review: list[int] = field(default_factory=list)  # holds in force whose review date has come
    requests_erased: list[int] = field(default_factory=list)  # decided requests whose personal details went
    temp_files_removed: int = 0  # half-written files a crash left
    orphan_blobs_removed: int = 0  # files of transactions that never committed

    def summary(self) -> str:
        """One line for people."""
        text = (f"{len(self.agreements_expired)} agreements expired, {len(self.deployments_ended)} deployments ended, "
                f"{len(self.snapshots_deleted)} snapshots and {len(self.media_deleted)} crops/footage deleted, "
                f"{len(self.alerts_pseudonymised)} alerts pseudonymised")
        if self.alerts_held or self.holds_due_review:
            text += (f"; {len(self.alerts_held)} alerts past retention kept under legal hold, "
                     f"{len(self.holds_due_review)} holds due for review")
        if self.requests_erased:
            text += f"; {len(self.requests_erased)} decided requests' personal details erased"
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
    report.requests_erased = requests.erase_expired(ctx, SYSTEM)
    report.holds_due_review = list(ctx.session.execute(
        select(LegalHold.id).where(LegalHold.released_at.is_(None), LegalHold.review_date <= now.date())
        .order_by(LegalHold.id)).scalars())
    # crops/footage of an alert go with their alert (below), under its lock and hold check
    for media in ctx.session.execute(
        select(MediaItem).where(MediaItem.deleted_at.is_(None), MediaItem.retain_until <= now,
                                MediaItem.alert_id.is_(None)).order_by(MediaItem.id)
    ).scalars():
        _delete_media(ctx, media, "retention period over")
        report.media_deleted.append(media.id)
    # locked (PostgreSQL), so a hold placed meanwhile waits and then finds the alert wiped, or
    # is committed first and seen by the check below
    for alert in ctx.session.execute(select(Alert).where(Alert.pseudonymised_at.is_(None), retention_over(ctx))
                                     .order_by(Alert.id).with_for_update()).scalars():
        if active_hold(ctx, alert.id) is not None:  # a hold beats retention: the alert and its crop stay
            report.alerts_held.append(alert.id)
            continue
        if outcomes.outcome_due(ctx.session, alert):  # verified, yet nobody recorded what happened
            ctx.audit(SYSTEM, "alert.outcome_missing", "alert", alert.id, deployment=alert.deployment_id)
        dismissed = alert.retain_until > now  # only a dismissed alert is due before its own deadline
        wiped = wipe_alert(ctx, alert, actor=SYSTEM, action="alert.pseudonymise", what="pseudonymised",
                           reason="dismissed as a false alert: kept only to be counted" if dismissed
                           else "retention period over", retain_until=alert.retain_until)
        report.media_deleted.extend(wiped.media_deleted)
        report.alerts_pseudonymised.append(alert.id)
    report.temp_files_removed, report.orphan_blobs_removed = ctx.blobs.store.remove_orphans(
        referenced_blobs(ctx), orphan_grace_s)
    ctx.audit(SYSTEM, "retention.sweep", "store", "-", summary=report.summary())
    return report


def blob_columns() -> list[Any]:
    """Every column that holds a blob id: by convention named ``blob`` or ``*_blob``, in any table
    (images, templates, snapshots, crops and footage, signage photos, erasure keys, requesters'
    photos), so a new table's blobs are never taken for orphans."""
    from openlfr.store.models import Base

    return [column for table in Base.metadata.sorted_tables for column in table.columns
            if column.name == "blob" or column.name.endswith("_blob")]


def retention_over(ctx: Ctx) -> ColumnElement[bool]:
    """The SQL condition "this alert's retention has ended" at ``ctx.now()``, holds aside (as
    :func:`openlfr.governance.alert_lifecycle.unheld_retain_until`): its own deadline has
    passed, or it was dismissed as someone else longer ago than the dismissed-alert retention."""
    now = ctx.now()
    dismissed_before = now - timedelta(hours=ctx.policy.dismissed_alert_retention_hours)
    return or_(Alert.retain_until <= now,
               and_(Alert.review_outcome == "false", Alert.reviewed_at.is_not(None),
                    Alert.reviewed_at <= dismissed_before))


def referenced_blobs(ctx: Ctx) -> set[str]:
    """Every blob id a row refers to (see :func:`blob_columns`)."""
    ids: set[str] = set()
    for column in blob_columns():
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

    def start(self) -> RetentionSweeper:
        log.info("retention sweep every %.0f s", self.interval_s)
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
