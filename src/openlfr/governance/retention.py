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
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import ColumnElement, and_, delete, func, or_, select
from sqlalchemy.engine import CursorResult

from openlfr.errors import InputError
from openlfr.governance import agreements, deployments, outcomes
from openlfr.governance.context import Ctx
from openlfr.governance.errors import RuleViolation
from openlfr.rights.erasure import active_hold, wipe_alert
from openlfr.rights.keys import alert_ref, seal_bytes
from openlfr.rights import requests
from openlfr.store.models import Alert, AlertPass, AuditHead, Camera, Deployment, LegalHold, MediaItem
from openlfr.store.notify import ALERTS, notify
from openlfr.store.inserts import dialect_insert

if TYPE_CHECKING:
    from openlfr.governance.context import Governance

SYSTEM = "system:retention"
log = logging.getLogger(__name__)


def record_alert(ctx: Ctx, deployment_id: int, camera_id: int, score: float, at: datetime,
                 entry_id: int | None = None, worker: str = "matcher", attempt_key: str | None = None) -> Alert:
    """Store an alert of a live deployment with its retention deadline (see :func:`record_alert_once`)."""
    return record_alert_once(ctx, deployment_id, camera_id, score, at, entry_id=entry_id, worker=worker,
                             attempt_key=attempt_key)[0]


def record_alert_once(ctx: Ctx, deployment_id: int, camera_id: int, score: float, at: datetime,
                      entry_id: int | None = None, worker: str = "matcher",
                      attempt_key: str | None = None) -> tuple[Alert, bool]:
    """Store an alert of a live deployment with its retention deadline; ``(alert, True)``.

    Every door stores alerts here: each gets as ``cursor`` the sequence number of its
    ``alert.record`` audit event, taken under the audit head's lock and so in commit order
    (reviewers' streams resume after a cursor and never skip one), and a notification on
    :data:`~openlfr.store.notify.ALERTS` at commit. With ``attempt_key``, an alert another try of
    the same attempt already stored is returned as it is: ``(that alert, False)``, nothing new
    stored or audited (``INSERT ... ON CONFLICT (attempt_key) DO NOTHING RETURNING``).
    """
    ctx.attempt = (worker, "alert.record", "deployment", str(deployment_id))
    dep = ctx.get(Deployment, deployment_id, "deployment")
    ctx.get(Camera, camera_id, "camera")
    if dep.status != "live" or not dep.start <= at < dep.end:
        raise RuleViolation(f"deployment {deployment_id} is not live at {at:%Y-%m-%d %H:%M}: alert refused")
    values = {"deployment_id": dep.id, "camera_id": camera_id, "entry_id": entry_id, "score": score, "at": at,
              "retain_until": at + timedelta(days=ctx.policy.alert_retention_days), "attempt_key": attempt_key}
    new_id = ctx.session.execute(dialect_insert(ctx.session, Alert).values(**values).on_conflict_do_nothing(
        index_elements=["attempt_key"]).returning(Alert.id)).scalar_one_or_none()
    if new_id is None:  # (only with a key: NULLs never conflict) another try of this attempt committed
        return ctx.session.execute(select(Alert).where(Alert.attempt_key == attempt_key)).scalar_one(), False
    row = ctx.session.get(Alert, new_id)
    assert row is not None
    # which watchlist entry a passer-by's face matched, and how closely, is personal data of both:
    # sealed under the alert's erasure key (openlfr.rights.keys), so erasing the alert erases it here too
    ctx.audit(worker, "alert.record", "alert", row.id, deployment=dep.id, camera=camera_id,
              retain_until=row.retain_until, personal={"entry": entry_id, "score": round(score, 4)},
              subject=alert_ref(row.id))
    head = ctx.session.get(AuditHead, 1)  # locked by the append above until this transaction ends
    assert head is not None
    row.cursor = head.seq  # the alert.record event just appended
    ctx.session.flush()
    notify(ctx.session, ALERTS, str(row.cursor))
    return row, True


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
    report.temp_files_removed, report.orphan_blobs_removed = ctx.blobs.remove_orphans(
        referenced_blobs(ctx), orphan_grace_s)
    # a pass row without an alert is a bare sighting (entry, zone, times): kept a day at most (one
    # with an alert goes when the alert is wiped: openlfr.rights.erasure)
    passes_deleted = cast(CursorResult[Any], ctx.session.execute(delete(AlertPass).where(
        AlertPass.alert_id.is_(None), AlertPass.last_seen < now - timedelta(days=1)))).rowcount or 0
    ctx.audit(SYSTEM, "retention.sweep", "store", "-", summary=report.summary(), passes_deleted=passes_deleted)
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


#: the advisory lock one sweep holds on PostgreSQL, so that of many API replicas one sweeps at a
#: time: a fixed 64-bit key, the first 8 bytes of sha256(b"openlfr.retention.sweep"), signed
SWEEP_LOCK_KEY = 4439307878748636730
#: rate-limit rows (client addresses) are deleted this long after their window opened
RATE_LIMITS_KEPT = timedelta(days=1)


def sweep_lock(ctx: Ctx) -> bool:
    """Take the sweep's lock for this transaction: False if another replica holds it
    (PostgreSQL's ``pg_try_advisory_xact_lock``, released at commit or rollback, so it works
    through PgBouncer in transaction mode too). On SQLite the transaction already holds the
    write lock (``BEGIN IMMEDIATE``): one machine, one sweep at a time."""
    if ctx.session.get_bind().dialect.name != "postgresql":
        ctx.session.connection()  # begins the transaction now: SQLite's write lock (waits for a sweep under way)
        return True
    return bool(ctx.session.execute(select(func.pg_try_advisory_xact_lock(SWEEP_LOCK_KEY))).scalar_one())


class RetentionSweeper:
    """Runs :func:`sweep` at once and then every ``interval_s`` seconds on a background thread,
    so that retention is enforced by the running service, not by someone remembering a cron job.
    Every API replica runs one; a sweep that finds another replica's sweep under way (its
    advisory lock, :func:`sweep_lock`) is skipped, and the next interval tries again."""

    def __init__(self, gov: Governance, interval_s: float = 300.0) -> None:
        if interval_s <= 0:
            raise InputError("the retention sweep interval must be positive")
        self.gov = gov
        self.interval_s = interval_s
        self.sweeps = 0
        self.skipped = 0  # sweeps left to another replica that was sweeping
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="retention-sweeper", daemon=True)

    def start(self) -> RetentionSweeper:
        log.info("retention sweep every %.0f s", self.interval_s)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def sweep_once(self) -> SweepReport | None:
        """One sweep in one transaction, under the sweep lock; None when another replica held it."""
        from openlfr.governance import rate_limits

        with self.gov.transaction() as ctx:
            if not sweep_lock(ctx):
                log.debug("retention sweep skipped: another replica is sweeping")
                self.skipped += 1
                return None
            report = sweep(ctx)
            rate_limits.prune(ctx, RATE_LIMITS_KEPT)
        self.sweeps += 1
        log.info("retention sweep: %s", report.summary())
        return report

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.sweep_once()
            except Exception:  # noqa: BLE001 - a failed sweep is retried at the next interval
                log.exception("retention sweep failed; retrying in %.0f s", self.interval_s)
            self._stop.wait(self.interval_s)
