"""Camera leases: which host agent (or standalone worker) analyses each camera of a live
deployment, fenced by an epoch.

One ``camera_leases`` row per camera while a live-kind deployment with it is live:
:func:`open_leases` inserts them when it goes live, :func:`close_leases` deletes them when it
ends (both with a ``LEASES`` notification, so host agents act within about a second).

* A host agent :func:`claim`\\ s free or expired rows (``FOR UPDATE SKIP LOCKED`` on
  PostgreSQL; SQLite's write lock serialises claimers), bumping the epoch, and :func:`renew`\\ s
  them (database time) while it holds them; a renewal of a lease that expired or was claimed
  by someone else fails, and the host then stops that worker.
* Every write of a camera's worker checks its epoch in the same transaction (:func:`fence`,
  the row locked shared): a paused or partitioned host's late commits are refused and audited.
* Taking over a lease whose holder stopped renewing (or whose process on this machine is gone)
  records a camera gap with reason ``failover``: nobody analysed the camera in between.
* A :class:`~openlfr.pipeline.camera.CameraPipeline` run without a host agent (tests, benches,
  a :class:`~openlfr.pipeline.worker.Supervisor` used directly) takes its own lease with
  :func:`acquire`, keeps it with a :class:`LeaseKeeper` and gives it back with :func:`release`.

Expiry is database time (:func:`db_now`), so hosts need not agree on their clocks; whether a
deployment is live now is the services' clock, as everywhere else.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, or_, select, text, update
from sqlalchemy.orm import Session

from openlfr.governance.context import Ctx
from openlfr.governance.errors import RuleViolation
from openlfr.store.models import Camera, CameraLease, Deployment, HostAgent
from openlfr.store.notify import LEASES, notify
from openlfr.store.inserts import dialect_insert

log = logging.getLogger(__name__)

FAILOVER = "failover"  # the reason of the camera gap a takeover records


class CameraTaken(RuleViolation):
    """Another host or worker holds this camera's lease (or took it over from this one)."""


class LeaseLost(CameraTaken):
    """This worker's lease epoch is no longer the camera's: its write is refused (and audited)."""


class NoLease(RuleViolation):
    """The deployment is not live now (or the camera is not in it): its camera has no lease to take."""


@dataclass(frozen=True)
class Lease:
    """A lease held: the camera, its deployment and the epoch every write is fenced with."""

    camera_id: int
    deployment_id: int
    epoch: int


def db_now(session: Session) -> datetime:
    """The database's time now (PostgreSQL ``clock_timestamp()``; SQLite: this machine's UTC
    time, one machine), timezone-aware UTC: lease expiry is measured by it."""
    if session.get_bind().dialect.name == "postgresql":
        now = session.execute(text("SELECT clock_timestamp()")).scalar_one()
        return now.astimezone(UTC) if now.tzinfo else now.replace(tzinfo=UTC)
    return datetime.now(UTC)


def lease_seconds() -> float:
    """How long a lease lasts unless renewed (``cluster.lease_seconds``)."""
    from openlfr.config import get_settings

    return get_settings().cluster.lease_seconds


def holder_name(worker: str) -> str:
    """``<worker>@<machine>:<pid>``: who holds a lease, for messages, the audit and :func:`_holder_gone`."""
    return f"{worker}@{socket.gethostname()}:{os.getpid()}"[:200]


def _holder_gone(holder: str) -> bool:
    """Whether ``holder`` (``<worker>@<machine>:<pid>``) was a process on this machine that has ended."""
    where = holder.rpartition("@")[2]
    machine, _, pid = where.rpartition(":")
    if machine != socket.gethostname() or not pid.isdigit():
        return False  # another machine's: only its lease's expiry tells
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # exists, someone else's
        return False
    return False


def _is_pg(ctx: Ctx) -> bool:
    return ctx.session.get_bind().dialect.name == "postgresql"


def _insert(ctx: Ctx, table: type[Any] = CameraLease) -> Any:
    """The dialect's ``INSERT`` with ``ON CONFLICT``."""
    return dialect_insert(ctx.session, table)


def _live_now(dep: Deployment, now: datetime) -> bool:
    return dep.status == "live" and dep.kind == "live" and dep.start <= now < dep.end


# ------------------------------------------------------------------ rows: a deployment goes live or ends

def open_leases(ctx: Ctx, deployment: Deployment) -> None:
    """A free lease row for each camera of a live-kind ``deployment`` going live; a camera's
    stale row of an earlier deployment is taken over (epoch + 1, so its holder's writes are
    refused). Notifies the host agents."""
    if deployment.kind != "live":
        return  # retrospective deployments search recordings with 'openlfr scan', not cameras
    for cam in deployment.cameras:
        stmt = _insert(ctx).values(camera_id=cam.id, deployment_id=deployment.id, host_id=None, holder="", epoch=0,
                                   claimed_at=None, expires_at=None)
        ctx.session.execute(stmt.on_conflict_do_update(
            index_elements=["camera_id"],
            set_={"deployment_id": stmt.excluded.deployment_id, "epoch": CameraLease.epoch + 1, "host_id": None,
                  "holder": "", "claimed_at": None, "expires_at": None},
            where=CameraLease.deployment_id != stmt.excluded.deployment_id))
    notify(ctx.session, LEASES, str(deployment.id))


def close_leases(ctx: Ctx, deployment_id: int) -> None:
    """Delete the lease rows of a deployment that ended (or was cancelled); notifies the host
    agents, which stop its cameras' workers. Call it before the transaction's audit events: the
    rows are locked before the audit head, as a worker's fenced write locks them."""
    ctx.session.execute(delete(CameraLease).where(CameraLease.deployment_id == deployment_id))
    notify(ctx.session, LEASES, str(deployment_id))


def sync_rows(ctx: Ctx) -> tuple[list[int], list[int]]:
    """Make the rows match the deployments live now: rows of deployments no longer live (ended,
    window passed) deleted, missing rows of live ones (a store upgraded while they were live)
    inserted. Returns (deployments whose rows were deleted, those whose rows were opened)."""
    now = ctx.now()
    rows = ctx.session.execute(
        select(CameraLease.deployment_id, Deployment).join(Deployment, Deployment.id == CameraLease.deployment_id)
    ).all()
    stale = sorted({dep_id for dep_id, dep in rows if not _live_now(dep, now)})
    for dep_id in stale:
        close_leases(ctx, dep_id)
    leased = set(ctx.session.execute(select(CameraLease.camera_id)).scalars())
    opened = []
    live = select(Deployment).where(Deployment.status == "live", Deployment.kind == "live",
                                    Deployment.start <= now, Deployment.end > now)
    for dep in ctx.session.execute(live).scalars():
        if any(cam.id not in leased for cam in dep.cameras):
            open_leases(ctx, dep)
            opened.append(dep.id)
    return stale, opened


# ------------------------------------------------------------------ host agents

def _gap_after(ctx: Ctx, row: CameraLease, now: datetime, lease_s: float, actor: str) -> dict[str, Any]:
    """A lease taken from a holder that stopped renewing: record the time nobody analysed the
    camera (from its last renewal to now) as a ``failover`` gap. Returns the audit details."""
    from openlfr.pipeline.records import store_gap

    last = (row.expires_at or now) - timedelta(seconds=lease_s)
    if row.claimed_at is not None:
        last = max(last, row.claimed_at)
    last = min(last, now)
    store_gap(ctx, row.camera_id, row.deployment_id, last, now, 0, FAILOVER, actor)
    return {"taken_over_from": row.holder, "previous_host": row.host_id, "previous_epoch": row.epoch,
            "unanalysed_from": last}


def _take(ctx: Ctx, row: CameraLease, host_id: str, holder: str, now: datetime, lease_s: float, action: str,
          actor: str) -> Lease:
    """``row`` (locked) becomes this holder's, epoch + 1; audited as ``action`` (a failover gap first
    where it was taken from another holder)."""
    taken = _gap_after(ctx, row, now, lease_s, actor) if row.host_id is not None else {}
    row.epoch += 1
    row.host_id, row.holder, row.claimed_at = host_id, holder, now
    row.expires_at = now + timedelta(seconds=lease_s)
    ctx.audit(actor, action, "camera", row.camera_id, deployment=row.deployment_id, host=host_id, holder=holder,
              epoch=row.epoch, expires_at=row.expires_at, **taken)
    return Lease(row.camera_id, row.deployment_id, row.epoch)


def _claimable(ctx: Ctx, wall: datetime, cameras: Collection[int] | None) -> Any:
    """Lease rows of deployments live now whose camera has a stream address (``cameras``: only those)."""
    query = (select(CameraLease).join(Deployment, Deployment.id == CameraLease.deployment_id)
             .join(Camera, Camera.id == CameraLease.camera_id)
             .where(Deployment.status == "live", Deployment.kind == "live", Deployment.start <= wall,
                    Deployment.end > wall, Camera.stream_url.is_not(None), Camera.stream_url != ""))
    if cameras is not None:
        query = query.where(CameraLease.camera_id.in_(list(cameras)))
    return query.order_by(CameraLease.camera_id)


def claim(ctx: Ctx, host_id: str, holder: str, n: int | None, lease_s: float, *,
          cameras: Collection[int] | None = None) -> list[Lease]:
    """Claim up to ``n`` (None: any number) free or expired leases of deployments live now
    (``cameras``: only those cameras) for host ``host_id``; each claim bumps the epoch and is
    audited ``camera.lease.claim``. A lease whose holder was a process on this machine that no
    longer exists is taken at once (a host agent restarted after ``kill -9`` need not wait for
    its own leases to expire); a takeover records a ``failover`` gap."""
    if n is not None and n <= 0:
        return []
    now = db_now(ctx.session)
    wall = ctx.now()
    actor = f"host:{host_id}"
    free = _claimable(ctx, wall, cameras).where(
        or_(CameraLease.host_id.is_(None), CameraLease.expires_at.is_(None), CameraLease.expires_at <= now))
    if n is not None:
        free = free.limit(n)
    # (of=: lock the lease rows only, never the deployments or cameras joined to them)
    rows = list(ctx.session.execute(free.with_for_update(skip_locked=True, of=CameraLease)).scalars())
    if n is None or len(rows) < n:
        # unexpired leases of holders on this machine: taken where that process is gone
        here = _claimable(ctx, wall, cameras).where(
            CameraLease.host_id.is_not(None), CameraLease.expires_at > now,
            CameraLease.holder.like(f"%@{socket.gethostname()}:%"))
        for row in ctx.session.execute(here.with_for_update(skip_locked=True, of=CameraLease)).scalars():
            if row not in rows and row.holder != holder and _holder_gone(row.holder):
                rows.append(row)
            if n is not None and len(rows) >= n:
                break
    return [_take(ctx, row, host_id, holder, now, lease_s, "camera.lease.claim", actor) for row in rows]


def renew(ctx: Ctx, host_id: str, held: dict[int, int], lease_s: float) -> set[int]:
    """Extend the leases ``held`` (camera id -> epoch) of ``host_id`` by ``lease_s`` from now
    (database time), in one ``UPDATE``, and mark the host seen; returns the cameras still held.
    A lease that expired, was taken over or whose row is gone (its deployment ended) is lost:
    the host must stop that camera's worker. Not audited (every few seconds per camera)."""
    now = db_now(ctx.session)
    ctx.session.execute(update(HostAgent).where(HostAgent.host_id == host_id).values(seen_at=now))
    if not held:
        return set()
    stmt = (update(CameraLease)
            .where(CameraLease.host_id == host_id, CameraLease.expires_at > now,
                   or_(*(and_(CameraLease.camera_id == cam, CameraLease.epoch == epoch)
                         for cam, epoch in held.items())))
            .values(expires_at=now + timedelta(seconds=lease_s))
            .returning(CameraLease.camera_id)
            .execution_options(synchronize_session=False))
    return set(ctx.session.execute(stmt).scalars())


def release(ctx: Ctx, host_id: str, camera_id: int, epoch: int, *, actor: str | None = None,
            action: str = "camera.lease.release") -> bool:
    """Give up the lease (only this epoch of this host's: one taken over is left alone), so
    another host may claim it at once, without a gap. Audited ``action``; whether it was held."""
    row = ctx.session.execute(select(CameraLease).where(
        CameraLease.camera_id == camera_id, CameraLease.epoch == epoch, CameraLease.host_id == host_id)
        .with_for_update().execution_options(populate_existing=True)).scalar_one_or_none()
    if row is None:
        return False
    row.host_id, row.holder, row.expires_at = None, "", None
    ctx.audit(actor or f"host:{host_id}", action, "camera", camera_id, deployment=row.deployment_id, host=host_id,
              epoch=epoch)
    return True


def register_host(ctx: Ctx, host_id: str, capacity: int) -> None:
    """The host agent's row: (re)started now, on this machine, with this capacity."""
    now = db_now(ctx.session)
    values = {"host_id": host_id, "capacity": capacity, "machine": f"{socket.gethostname()}:{os.getpid()}"[:200],
              "started_at": now, "seen_at": now, "stopped_at": None}
    stmt = _insert(ctx, HostAgent).values(**values)
    ctx.session.execute(stmt.on_conflict_do_update(
        index_elements=["host_id"], set_={k: v for k, v in values.items() if k != "host_id"}))


def host_stopped(ctx: Ctx, host_id: str) -> None:
    """The host agent stopped cleanly."""
    ctx.session.execute(update(HostAgent).where(HostAgent.host_id == host_id)
                        .values(stopped_at=db_now(ctx.session), seen_at=db_now(ctx.session)))


def holders(ctx: Ctx, camera_ids: Iterable[int]) -> dict[int, CameraLease]:
    """The lease rows of these cameras (for messages about who holds what)."""
    ids = list(camera_ids)
    if not ids:
        return {}
    return {r.camera_id: r for r in ctx.session.execute(select(CameraLease).where(CameraLease.camera_id.in_(ids)))
            .scalars()}


# ------------------------------------------------------------------ a worker without a host agent

def acquire(ctx: Ctx, camera_id: int, deployment_id: int, worker: str, lease_s: float) -> int | None:
    """Take the camera's lease for a worker run without a host agent; returns its epoch, or None
    for a retrospective deployment (a search of recordings holds no lease).

    The row is created if the deployment is live and has none. :class:`NoLease` when the
    deployment is not live now; refused with :class:`CameraTaken` (audited
    ``camera.claim.refused``) while another holder's lease is unexpired, unless that holder was
    a process on this machine that no longer exists."""
    dep = ctx.session.get(Deployment, deployment_id)
    if dep is not None and dep.kind != "live":
        return None
    if dep is None or not _live_now(dep, ctx.now()) or camera_id not in {c.id for c in dep.cameras}:
        raise NoLease(f"deployment {deployment_id} is not live now (or camera {camera_id} is not in it): "
                      "no lease for its camera")
    ctx.attempt = (worker, "camera.claim", "camera", str(camera_id))  # a refusal is audited
    holder = holder_name(worker)
    now = db_now(ctx.session)
    stmt = _insert(ctx).values(camera_id=camera_id, deployment_id=deployment_id, host_id=None, holder="", epoch=0)
    ctx.session.execute(stmt.on_conflict_do_nothing(index_elements=["camera_id"]))
    row = ctx.session.execute(select(CameraLease).where(CameraLease.camera_id == camera_id)
                              .with_for_update().execution_options(populate_existing=True)).scalar_one()
    if row.deployment_id != deployment_id:  # a stale row of an earlier deployment: no holder of it counts
        row.deployment_id, row.epoch, row.host_id, row.holder, row.expires_at = (
            deployment_id, row.epoch + 1, None, "", None)
    if (row.host_id is not None and row.expires_at is not None and row.expires_at > now
            and not _holder_gone(row.holder)):
        raise CameraTaken(f"camera {camera_id} is already analysed by {row.holder} (deployment {row.deployment_id}, "
                          f"host {row.host_id}); its lease runs until "
                          f"{row.expires_at.isoformat(timespec='seconds')} unless renewed: one worker per camera")
    return _take(ctx, row, holder, holder, now, lease_s, "camera.claim", worker).epoch


class LeaseKeeper:
    """Renews a standalone worker's lease every ``lease_s / 5`` seconds of wall time on a daemon
    thread (so a stream outage does not let it lapse); :attr:`lost` is set with :attr:`reason`
    once a renewal finds it gone."""

    def __init__(self, gov: Any, camera_id: int, host_id: str, epoch: int, lease_s: float) -> None:
        self.gov, self.camera_id, self.host_id, self.epoch, self.lease_s = gov, camera_id, host_id, epoch, lease_s
        self.lost = threading.Event()
        self.reason = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-{camera_id}", daemon=True)

    def start(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def _run(self) -> None:
        failures = 0
        while not self._stop.wait(self.lease_s / 5):
            try:
                held = self.gov.run(lambda ctx: renew(ctx, self.host_id, {self.camera_id: self.epoch}, self.lease_s))
                failures = 0
            except Exception as err:  # the store busy or away: try again (the lease may lapse meanwhile)
                failures += 1
                log.warning("camera %s: could not renew its lease (%s)", self.camera_id, str(err).splitlines()[0])
                if failures >= 20:  # (a store closed under a forgotten pipeline: give up)
                    return
                continue
            if self.camera_id not in held and not self._stop.is_set():
                self.reason = (f"lease lost: camera {self.camera_id}'s lease (epoch {self.epoch}) expired or was "
                               "taken over; stopping")
                self.lost.set()
                return

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(5)


# ------------------------------------------------------------------ fencing

def fence(ctx: Ctx, camera_id: int, epoch: int | None, worker: str, action: str = "alert.record", *,
          deployment_id: int | None = None, after_end: bool = False) -> None:
    """Refuse (:class:`LeaseLost`, audited as ``<action>.refused``) unless ``epoch`` is the
    camera's current lease epoch and the lease is unexpired by database time; the lease row is
    locked (shared) until the caller's transaction ends, so no claim can slip in between.
    ``epoch=None``: the caller holds no lease (a one-off search): nothing to check.

    ``deployment_id``: the lease must also be of that deployment. ``after_end``: a worker's last
    writes as it stops (counters, status, an open gap) pass when the row is gone because that
    deployment is no longer live (nobody else can hold its camera for it)."""
    if epoch is None:
        return
    row = ctx.session.execute(select(CameraLease).where(CameraLease.camera_id == camera_id)
                              .with_for_update(read=True)  # FOR SHARE on PostgreSQL
                              .execution_options(populate_existing=True)).scalar_one_or_none()
    now = db_now(ctx.session)
    reason = ""
    if row is None:
        if after_end and deployment_id is not None:
            dep = ctx.session.get(Deployment, deployment_id)
            if dep is None or not _live_now(dep, ctx.now()):
                return
        reason = f"lease lost: camera {camera_id} has no lease any more (its deployment ended)"
    elif deployment_id is not None and row.deployment_id != deployment_id:
        reason = (f"lease lost: camera {camera_id} is leased for deployment {row.deployment_id}, "
                  f"not {deployment_id}")
    elif row.epoch != epoch:
        reason = (f"lease lost: epoch {epoch} is now {row.epoch}, "
                  + (f"held by host {row.host_id}" if row.host_id else "free"))
    elif row.host_id is None or row.expires_at is None:
        reason = f"lease lost: epoch {epoch} of camera {camera_id} was released"
    elif row.expires_at <= now:
        reason = (f"lease lost: epoch {epoch} of camera {camera_id} expired "
                  f"{(now - row.expires_at).total_seconds():.1f} s ago (not renewed in time)")
    if reason:
        ctx.attempt = (worker, action, "camera", str(camera_id))
        raise LeaseLost(f"{reason}; write refused from {holder_name(worker)}")  # (which process: machine, pid)


__all__ = [
    "FAILOVER", "CameraTaken", "Lease", "LeaseKeeper", "LeaseLost", "NoLease", "acquire", "claim", "close_leases",
    "db_now", "fence", "holder_name", "holders", "host_stopped", "lease_seconds", "open_leases", "register_host",
    "release", "renew", "sync_rows",
]
