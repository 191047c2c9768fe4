"""The host agent: this machine's share of the cameras of the live deployments.

:class:`HostAgent` runs one loop on a thread. Every ``renew_seconds`` (``cluster`` settings), or
at once when a ``LEASES`` notification says a deployment went live or ended, it does one round
in one transaction: mark itself seen, bring the lease rows in line with the deployments live
now, renew the leases it holds, claim free or expired ones up to its capacity
(:mod:`openlfr.pipeline.leases`). Then, outside the transaction, it runs one supervised worker
process per lease held (:class:`~openlfr.pipeline.worker.Supervisor`; the job carries the
lease epoch, which fences every write of the worker), stops the workers of leases it lost or
whose deployment ended, and restarts a worker whose camera's address or settings changed.

A worker that crashes is restarted under the same epoch; one whose recording finished keeps
its lease (renewed, not restarted), so no other host runs it again. ``service=False`` is
``openlfr run`` on one machine: it claims once, at the start, and :attr:`done` turns true when
every camera it holds has finished.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select

from openlfr.governance import Governance
from openlfr.pipeline import leases
from openlfr.pipeline.events import EventBus, StatusEvent
from openlfr.pipeline.shared_snapshots import HostSnapshots
from openlfr.pipeline.worker import EXIT_CAMERA_TAKEN, CameraJob, StoreConfig, Supervisor, job_settings
from openlfr.store.models import Camera, CameraLease, Deployment
from openlfr.store.notify import LEASES, Listener

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 15.0  # a worker asked to stop is killed after this long


@dataclass
class _Held:
    """A lease this host holds, the job it runs, and its supervisor (None until started)."""

    lease: leases.Lease
    job: CameraJob
    sup: Supervisor | None = None
    snapshot_hash: str = ""  # of the snapshot shared with its worker ("" if none)


def default_host_id() -> str:
    """``cluster.host_id``, else the machine's host name."""
    from openlfr.config import get_settings

    return get_settings().cluster.host_id or socket.gethostname()


class HostAgent:
    """Claims, renews and runs camera leases until :meth:`stop` (see the module docstring).

    ``cameras`` (names or ids): only those; ``settings`` override the cameras' stored ones
    (``{"*": {...}}`` for every camera, ``{name: {...}}`` for one); ``paced`` plays recordings
    at real time. ``lease_s``/``renew_s``/``capacity`` default to the ``cluster`` settings.
    """

    def __init__(self, gov: Governance, store: StoreConfig, bus: EventBus | None = None, host_id: str | None = None,
                 capacity: int | None = None, *, service: bool = True, cameras: list[str] | None = None,
                 settings: dict[str, dict[str, Any]] | None = None, paced: bool = False,
                 lease_s: float | None = None, renew_s: float | None = None, listen_url: str | None = None,
                 poll_s: float = 0.25, supervisor: type[Supervisor] = Supervisor) -> None:
        from openlfr.config import get_settings

        cluster = get_settings().cluster
        self.gov, self.store, self.bus = gov, store, bus or EventBus()
        self.host_id = host_id or default_host_id()
        self.capacity = cluster.capacity if capacity is None else capacity
        self.lease_s = lease_s or cluster.lease_seconds
        self.renew_s = renew_s or cluster.renew_seconds
        self.service, self.camera_names, self.paced = service, cameras, paced
        self.overrides = settings or {}
        self.listen_url = listen_url or cluster.listen_url or store.database_url
        self.poll_s = poll_s
        self.supervisor = supervisor
        self.snapshots = HostSnapshots()  # decoded once per host, handed to the workers
        self.holder = leases.holder_name(f"host:{self.host_id}")
        self.held: dict[int, _Held] = {}
        # camera -> (deployment, name, why): held elsewhere when 'openlfr run' started
        self.refused: dict[int, tuple[int, str, str]] = {}
        self._retiring: list[tuple[int, Supervisor, float]] = []  # (camera, supervisor asked to stop, deadline)
        self._all: list[Supervisor] = []  # every supervisor started, for outcomes()
        self._camera_ids: set[int] | None = None
        self._claimed_once = False
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._stopped = False
        self._thread: threading.Thread | None = None
        self._listener: Listener | None = None
        self._lock = threading.RLock()  # held/_retiring, read by other threads (describe, outcomes)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> HostAgent:
        """Register, do a first round (so :attr:`held` is known on return), start the loop and
        listen for ``LEASES`` notifications."""
        self._listener = Listener(self.listen_url, (LEASES,), lambda *_: self._wake.set()).start()
        self._round(first=True)
        self._poll()
        self._thread = threading.Thread(target=self._loop, name=f"host-agent-{self.host_id}", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        next_round = time.monotonic() + self.renew_s
        while not self._stop.is_set():
            woke = self._wake.wait(self.poll_s)
            if self._stop.is_set():
                break
            if woke or time.monotonic() >= next_round:
                self._wake.clear()
                try:
                    self._round()
                except Exception:  # the store busy or away: keep what runs; leases may lapse meanwhile
                    log.exception("host agent %s: round failed; trying again", self.host_id)
                next_round = time.monotonic() + self.renew_s
            try:
                self._poll()
            except Exception:  # pragma: no cover - a supervisor error must not end the agent
                log.exception("host agent %s: supervising failed", self.host_id)

    @property
    def done(self) -> bool:
        """(``service=False``) every camera held has finished (or none was held)."""
        with self._lock:
            if self.service or self._retiring:
                return False
            return all(h.sup is not None and not any(not w.done for w in h.sup.workers.values())
                       for h in self.held.values())

    @property
    def running(self) -> bool:
        """Whether it holds any camera."""
        return bool(self.held)

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Stop the loop, every worker (they flush their counters), give the leases back and
        mark the host stopped. A second call does nothing."""
        if self._stopped:
            return
        self._stopped = True
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(30)
        if self._listener is not None:
            self._listener.stop()
        deadline = time.monotonic() + timeout
        with self._lock:
            for h in self.held.values():
                if h.sup is not None:
                    h.sup.terminate()
                    self._retiring.append((h.lease.camera_id, h.sup, deadline))
            while self._retiring:
                self._reap()
                if self._retiring:
                    time.sleep(0.1)
            held = [h.lease for h in self.held.values()]
            self.held.clear()
            self.snapshots.close()

        def give_back(ctx: Any) -> None:
            for lease in held:
                leases.release(ctx, self.host_id, lease.camera_id, lease.epoch)
            leases.host_stopped(ctx, self.host_id)

        try:
            self.gov.run(give_back)
        except Exception:  # the store away: the leases lapse by themselves
            log.exception("host agent %s: could not give its leases back", self.host_id)

    # ------------------------------------------------------------------ one round (one transaction)

    def _round(self, first: bool = False) -> None:
        with self._lock:
            held = {cam: h.lease.epoch for cam, h in self.held.items()}
        claiming = self.service or not self._claimed_once

        def work(ctx: Any) -> tuple[set[int], dict[int, str], list[leases.Lease], dict[int, CameraJob],
                                    dict[int, tuple[int, str, str]]]:
            if first:
                leases.register_host(ctx, self.host_id, self.capacity)
            if self._camera_ids is None and self.camera_names is not None:
                self._camera_ids = self._resolve(ctx, self.camera_names)
            leases.sync_rows(ctx)
            still = leases.renew(ctx, self.host_id, held, self.lease_s)
            rows = leases.holders(ctx, set(held) - still)
            lost = {cam: _why_lost(held[cam], rows.get(cam)) for cam in set(held) - still}
            new: list[leases.Lease] = []
            refused: dict[int, tuple[int, str, str]] = {}
            if claiming:
                room = None if not self.capacity else self.capacity - len(still)
                new = leases.claim(ctx, self.host_id, self.holder, room, self.lease_s, cameras=self._camera_ids)
                if not self.service:
                    refused = self._refusals(ctx, set(held) | {lease.camera_id for lease in new})
            epochs = {cam: held[cam] for cam in still} | {lease.camera_id: lease.epoch for lease in new}
            deps = {cam: h.lease.deployment_id for cam, h in self.held.items() if cam in still}
            deps |= {lease.camera_id: lease.deployment_id for lease in new}
            return still, lost, new, self._jobs(ctx, epochs, deps), refused

        still, lost, new, jobs, refused = self.gov.run(work)
        self._claimed_once = True
        for cam, (dep, name, why) in refused.items():
            self.refused[cam] = (dep, name, why)
            self.bus.publish(StatusEvent(cam, dep, "refused", why))
        with self._lock:
            for cam, why in lost.items():
                h = self.held.pop(cam)
                self.bus.publish(StatusEvent(cam, h.lease.deployment_id, "ended" if "ended" in why else "lost", why))
                self._retire(cam, h)
            for cam in still:
                h = self.held[cam]
                job = jobs.get(cam)
                if job is not None and not h.job.same_work(job):
                    log.info("camera %s changed: restarting its worker", job.camera_name)
                    self._retire(cam, h)
                    h.job, h.sup = job, None
            for lease in new:
                job = jobs[lease.camera_id]
                self.held[lease.camera_id] = _Held(lease, job)
                self.bus.publish(StatusEvent(lease.camera_id, lease.deployment_id, "leased",
                                             f"epoch {lease.epoch} on host {self.host_id}"))

    def _resolve(self, ctx: Any, names: list[str]) -> set[int]:
        ids = [int(n) for n in names if n.isdigit()]
        query = select(Camera.id).where(or_(Camera.name.in_(names), Camera.id.in_(ids)))
        return set(ctx.session.execute(query).scalars())

    def _jobs(self, ctx: Any, epochs: dict[int, int], deps: dict[int, int]) -> dict[int, CameraJob]:
        """The job of each camera held, with its settings and address as the store has them now."""
        if not epochs:
            return {}
        jobs = {}
        for cam in ctx.session.execute(select(Camera).where(Camera.id.in_(list(epochs)))).scalars():
            jobs[cam.id] = CameraJob(deps[cam.id], cam.id, cam.name, cam.stream_url or "",
                                     job_settings(cam, self.overrides), self.paced, lease_epoch=epochs[cam.id])
        return jobs

    def _refusals(self, ctx: Any, mine: set[int]) -> dict[int, tuple[int, str, str]]:
        """(``openlfr run`` on one machine) the live cameras asked for that another holder has:
        camera -> (deployment, name, why), each audited ``camera.claim.refused``."""
        now = ctx.now()
        out = {}
        query = (select(CameraLease).join(Deployment, Deployment.id == CameraLease.deployment_id)
                 .join(Camera, Camera.id == CameraLease.camera_id)
                 .where(Deployment.status == "live", Deployment.kind == "live", Deployment.start <= now,
                        Deployment.end > now, Camera.stream_url != "", CameraLease.host_id.is_not(None)))
        if self._camera_ids is not None:
            query = query.where(CameraLease.camera_id.in_(list(self._camera_ids)))
        for row in ctx.session.execute(query).scalars():
            if row.camera_id in mine:
                continue
            why = (f"camera {row.camera_id} is already analysed by {row.holder} (deployment {row.deployment_id}, "
                   f"host {row.host_id}): one worker per camera")
            ctx.audit(f"host:{self.host_id}", "camera.claim.refused", "camera", row.camera_id, reason=why)
            out[row.camera_id] = (row.deployment_id, ctx.get(Camera, row.camera_id, "camera").name, why)
        return out

    # ------------------------------------------------------------------ supervising (no transaction)

    def _retire(self, cam: int, h: _Held) -> None:
        if h.sup is not None:
            h.sup.terminate()
            self._retiring.append((cam, h.sup, time.monotonic() + STOP_TIMEOUT_S))
            h.sup = None

    def _reap(self) -> None:
        self._retiring = [(cam, sup, deadline) for cam, sup, deadline in self._retiring if not sup.reap(deadline)]

    def _poll(self) -> None:
        with self._lock:
            self._reap()
            stopping = {cam for cam, _, _ in self._retiring}
            for cam, h in self.held.items():
                if h.sup is None:
                    if cam not in stopping and not self._stop.is_set():  # (a worker of this camera still stopping)
                        shared = self.snapshots.for_deployment(self.gov, h.job.deployment_id)
                        h.snapshot_hash = shared.snapshot_hash if shared is not None else ""
                        h.sup = self.supervisor([h.job], self.store, self.bus,
                                                snapshots={h.job.deployment_id: shared} if shared else None)
                        self._all.append(h.sup)
                        h.sup.start()
                    continue
                h.sup.poll()  # restarts a crashed worker (same epoch); marks an ended one done
                if any(w.done and w.exit_codes[-1:] == [EXIT_CAMERA_TAKEN] for w in h.sup.workers.values()):
                    self._wake.set()  # its write was refused: the lease is gone; the round will say
            self.snapshots.keep_only({h.snapshot_hash for h in self.held.values() if h.snapshot_hash})

    # ------------------------------------------------------------------ reports

    def held_cameras(self) -> list[int]:
        """The cameras whose leases it holds now."""
        with self._lock:
            return list(self.held)

    def describe(self) -> list[dict[str, Any]]:
        """The cameras held: name, deployment, source, lease epoch."""
        with self._lock:
            return [{"camera": h.job.camera_name, "deployment": h.job.deployment_id, "source": h.job.source,
                     "epoch": h.lease.epoch} for h in self.held.values()]

    def outcomes(self) -> list[tuple[CameraJob, str, list[int]]]:
        """(job, how it ended, exit codes) of every worker started, and ``refused`` for the
        cameras another holder had (``service=False``)."""
        with self._lock:
            out = [o for sup in self._all for o in sup.outcomes()]
        for cam, (dep, name, _) in self.refused.items():
            out.append((CameraJob(dep, cam, name, ""), "refused", []))
        return out

    def started(self) -> set[int]:
        """The cameras a worker was started for."""
        with self._lock:
            return {cam for sup in self._all for cam in sup.workers}

    def failed(self) -> list[CameraJob]:
        """The cameras whose worker failed (unusable address, or out of restarts)."""
        with self._lock:
            return [job for sup in self._all for job in sup.failed()]


def _why_lost(epoch: int, row: CameraLease | None) -> str:
    """Why a renewal of lease ``epoch`` failed, from the camera's lease row now."""
    if row is None:
        return "its deployment ended: no lease any more"
    if row.epoch != epoch:
        held = f", held by host {row.host_id}" if row.host_id else ""
        return f"lease lost: epoch {epoch} is now {row.epoch}{held}"
    return f"lease lost: epoch {epoch} expired before it was renewed"


__all__ = ["HostAgent", "default_host_id"]
