"""Camera workers: one process per camera, supervised and restarted if it dies.

:func:`run_camera` is the whole life of one camera's analysis (open the source, resume a
recording where it stopped, run the :class:`~openlfr.pipeline.camera.CameraPipeline`,
record stream gaps). :class:`Supervisor` runs one worker process per :class:`CameraJob`,
forwards their alerts to an :class:`~openlfr.pipeline.events.EventBus` and restarts any
worker that dies (with backoff); a worker that ends normally (recording finished,
deployment no longer live, lease lost) is not restarted. Alerts are committed by the worker
before they are sent, so killing any process at any moment loses no announced alert.

A job with a ``lease_epoch`` runs under a host agent (:mod:`openlfr.pipeline.host`), which
holds the camera's lease; every write of the worker is fenced with that epoch
(:func:`openlfr.pipeline.leases.fence`). Without one, the worker takes the lease itself.
"""

from __future__ import annotations

import base64
import logging
import multiprocessing as mp
import os
import queue
import signal
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any

from openlfr.governance import Governance
from openlfr.pipeline.events import EventBus, StatusEvent
from openlfr.pipeline.settings import CameraSettings
from openlfr.video.stream_source import Backoff

log = logging.getLogger(__name__)

EXIT_DONE = 0  # the recording ended or the worker was asked to stop
EXIT_NOT_LIVE = 3  # the deployment is not live (ended, outside its window): nothing to do
EXIT_BAD_SOURCE = 4  # the camera's address cannot be used (no such file, not a video...): restarting will not help
EXIT_CAMERA_TAKEN = 5  # another holds the camera's lease, or this worker lost it: a duplicate must not run


@dataclass(frozen=True)
class StoreConfig:
    """What a worker process needs to act on the same store as its parent: database URL, blob
    folder, key, and the parent's setting overrides (the command line's ``--data-dir``,
    ``--detector``...: a spawned process reads only the environment)."""

    database_url: str
    blob_root: str
    key_b64: str
    settings: dict[str, Any] = field(default_factory=dict)
    blobs: str = ""  # where the blobs are: "files" or "database" as the parent resolved it ("": the settings)

    @classmethod
    def from_settings(cls) -> StoreConfig:
        """The store the settings point at (:class:`openlfr.config.StoreSettings`, the data directory).

        A fixed key (``OPENLFR_KEY``) is handed over as it is; a key file
        (``OPENLFR_KEY_FILE``) is created here if missing and then read by each worker itself
        (``key_b64`` empty), so workers follow a key rotation done while they run."""
        from openlfr.config import overrides
        from openlfr.store import blob_dir
        from openlfr.store.keys import open_keyring
        from openlfr.store.settings import database_url

        ring = open_keyring()
        key_b64 = base64.b64encode(ring.primary_key).decode() if ring.source == "env" else ""
        from openlfr.store.db_blobs import blob_backend

        url = database_url()
        return cls(url, str(blob_dir()), key_b64, overrides(), blob_backend(url))

    def governance(self) -> Governance:
        """A :class:`Governance` on this store (schema already migrated by the parent)."""
        from pathlib import Path

        from openlfr.store import make_engine  # a camera worker's own small pool (cluster.worker_pool_size)

        return Governance(self.database_url, blob_root=Path(self.blob_root), key=base64.b64decode(self.key_b64),
                          migrate=False, engine=make_engine(self.database_url, worker=True), blobs=self.blobs or None)


@dataclass(frozen=True)
class CameraJob:
    """One camera of one live deployment, and how to read it."""

    deployment_id: int
    camera_id: int
    camera_name: str
    source: str
    settings: dict[str, Any] = field(default_factory=dict)
    paced: bool = False  # play a recording at real time, dropping late frames, as a camera would
    lease_epoch: int | None = None  # the host agent's lease on the camera; None: the worker takes its own

    def same_work(self, other: CameraJob) -> bool:
        """Whether ``other`` is this job under another lease epoch (same camera, source, settings)."""
        return replace(self, lease_epoch=None) == replace(other, lease_epoch=None)


def _source_refusal(gov: Governance, job: CameraJob) -> str:
    """Why the camera's address may not be opened now (its organisation's networks, the
    recording folders: :mod:`openlfr.governance.camera_sources`), audited; "" when it may."""
    from openlfr.errors import InputError
    from openlfr.governance.cameras import check_camera
    from openlfr.store.models import Camera

    def check(ctx: Any) -> str:
        camera = ctx.get(Camera, job.camera_id, "camera")
        try:
            if camera.stream_url != job.source:
                raise InputError("the job's address is not the camera's registered address")
            check_camera(ctx, camera)
        except InputError as err:
            return str(err)
        return ""

    reason = gov.run(check)
    if reason:
        gov.run(lambda ctx: ctx.audit(f"pipeline:{job.camera_name}", "camera.source.refused", "camera",
                                      job.camera_id, deployment=job.deployment_id, reason=reason))
    return reason


def _record_failure(gov: Governance, job: CameraJob, reason: str) -> None:
    """The camera failed: its status, a ``camera.failed`` audit event and an open gap (fenced by
    the host agent's lease, where it has one)."""
    from openlfr.pipeline.leases import fence
    from openlfr.pipeline.status import record_failure

    worker = f"pipeline:{job.camera_name}"

    def record(ctx: Any) -> None:
        fence(ctx, job.camera_id, job.lease_epoch, worker, "camera.failed", deployment_id=job.deployment_id,
              after_end=True)
        record_failure(ctx, job.camera_id, job.deployment_id, worker, reason)

    gov.run(record)


def _record_stopped(gov: Governance, job: CameraJob, epoch: int | None, why: str) -> None:
    """The camera's status: stopped, and why (its deployment is no longer live)."""
    from openlfr.pipeline.leases import fence
    from openlfr.pipeline.status import write_status

    worker = f"pipeline:{job.camera_name}"

    def record(ctx: Any) -> None:
        fence(ctx, job.camera_id, epoch, worker, "pipeline.status", deployment_id=job.deployment_id, after_end=True)
        write_status(ctx, job.camera_id, job.deployment_id, worker, "stopped", error=why)

    gov.run(record)


def _lease_lost(err: BaseException) -> BaseException | None:
    """The lease error behind ``err`` (itself, or what a refused alert was turned into), if any."""
    from openlfr.pipeline.leases import CameraTaken

    for e in (err, err.__cause__):
        if isinstance(e, CameraTaken):
            return e
    return None


def run_camera(job: CameraJob, store: StoreConfig, stop: Any = None, publish: Any = None,
               gov: Governance | None = None) -> int:
    """Analyse one camera until its recording ends, ``stop`` is set or the deployment ends.

    Returns :data:`EXIT_DONE`, :data:`EXIT_NOT_LIVE`, :data:`EXIT_BAD_SOURCE` or
    :data:`EXIT_CAMERA_TAKEN` (another holds the camera's lease: the refusal is audited and
    published as a ``refused`` status; or this worker's lease was lost: its refused write is
    audited and a ``lost`` status published); other errors propagate (and the supervisor
    restarts the worker). A camera that cannot be read, or whose worker crashes, is recorded
    as failed (:mod:`openlfr.pipeline.status`: status, audit event, gap).
    """
    try:
        return _run_camera(job, store, stop, publish, gov)
    except Exception as err:
        lost = _lease_lost(err)
        if lost is None:
            raise
        log.error("camera %s: %s", job.camera_name, lost)
        if publish is not None:
            publish(StatusEvent(job.camera_id, job.deployment_id, "lost", str(lost)))
        return EXIT_CAMERA_TAKEN


def _run_camera(job: CameraJob, store: StoreConfig, stop: Any, publish: Any, gov: Governance | None) -> int:
    from openlfr.pipeline.camera import CameraPipeline, DeploymentNotLive
    from openlfr.pipeline.leases import CameraTaken, LeaseLost
    from openlfr.pipeline.reader import LatestFrameReader, Prefetcher
    from openlfr.pipeline.records import checkpoint_origin, load_checkpoint
    from openlfr.video.pacing import PacedSource
    from openlfr.video.sources import open_source, source_kind

    from openlfr.errors import InputError

    stop = stop or threading.Event()
    gov = gov or store.governance()
    settings = CameraSettings(**job.settings)
    worker = f"pipeline:{job.camera_name}"
    try:
        kind = source_kind(job.source)
    except InputError as err:
        log.error("camera %s: %s", job.camera_name, err)
        _record_failure(gov, job, str(err))
        return EXIT_BAD_SOURCE
    refusal = _source_refusal(gov, job)
    if refusal:
        log.error("camera %s: %s", job.camera_name, refusal)
        _record_failure(gov, job, refusal)
        return EXIT_BAD_SOURCE
    recorded = kind in ("file", "folder")
    start_frame, origin = 0, None
    if recorded:
        with gov.transaction() as ctx:
            start_frame, finished = load_checkpoint(ctx, job.deployment_id, job.camera_id, job.source)
            origin = checkpoint_origin(ctx, job.deployment_id, job.camera_id, job.source)
        if finished:
            log.info("camera %s: %s already processed", job.camera_name, job.source)
            return EXIT_DONE
    pipe = CameraPipeline(gov, job.deployment_id, job.camera_id, settings, publish=publish,
                          worker=worker, source_label=job.source if recorded else None, lease_epoch=job.lease_epoch,
                          origin=origin)
    try:
        pipe.start()
    except DeploymentNotLive as err:
        if _lease_lost(err):
            raise
        log.warning("camera %s: %s", job.camera_name, err)
        _record_stopped(gov, job, job.lease_epoch, str(err))
        return EXIT_NOT_LIVE
    except CameraTaken as err:
        if isinstance(err, LeaseLost):  # its first status write refused: the lease is already gone
            raise
        log.error("camera %s: %s", job.camera_name, err)
        if publish is not None:
            publish(StatusEvent(job.camera_id, job.deployment_id, "refused", str(err)))
        return EXIT_CAMERA_TAKEN
    try:
        _, frames = open_source(job.source, settings.analyse_fps, start_frame=start_frame, on_gap=pipe.record_gap,
                                stop=stop, backoff=Backoff(), loop=settings.loop)
    except InputError as err:
        log.error("camera %s: %s", job.camera_name, err)
        pipe.finish()
        _record_failure(gov, job, str(err))
        return EXIT_BAD_SOURCE
    if publish is not None:
        publish(StatusEvent(job.camera_id, job.deployment_id, "started", f"{kind} from frame {start_frame}"))
    reader: LatestFrameReader | Prefetcher
    if recorded and (job.paced or settings.paced):
        reader = LatestFrameReader(PacedSource(frames), stop=stop)
    elif recorded:
        reader = Prefetcher(frames, stop=stop)
    else:
        reader = LatestFrameReader(frames, stop=stop)
    try:
        pipe.run(reader, stop=stop, finished_source=recorded)
    except DeploymentNotLive as err:
        if _lease_lost(err):
            raise
        log.warning("camera %s: %s", job.camera_name, err)
        _record_stopped(gov, job, job.lease_epoch, str(err))
        return EXIT_NOT_LIVE
    except CameraTaken:  # its lease was lost (expired, taken over): run_camera says so
        raise
    except Exception as err:  # a crash: recorded, then the supervisor restarts the worker
        _record_failure(gov, job, f"{type(err).__name__}: {err}")
        raise
    finally:
        stop.set()
        reader.close()  # (the reading thread out of OpenCV before this process may exit)
        source = reader.source
        gap = getattr(getattr(source, "source", source), "open_gap", None)
        if gap is not None:  # stopped while the stream was down: record the gap as open-ended
            pipe.record_gap(gap)
    return EXIT_DONE


def _worker_main(job: CameraJob, store: StoreConfig, events: Any, shared: Any = None) -> None:
    """Entry point of a worker process; SIGTERM asks it to stop cleanly. ``shared``: the host's
    decoded snapshot of the job's deployment (:mod:`openlfr.pipeline.shared_snapshots`), if any."""
    from openlfr.config import configure

    configure(**store.settings)  # the parent's settings: its environment (inherited) and its overrides
    if shared is not None:
        from openlfr.pipeline.shared_snapshots import adopt

        adopt(shared)
    from openlfr.logs import configure_logging

    configure_logging(context={"camera": job.camera_name})
    stop = threading.Event()
    # (Not a multiprocessing.Event: a worker killed while waiting on one can deadlock the
    # supervisor's set(); a signal cannot.)
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor decides when to stop
    parent = os.getppid()

    def orphaned() -> None:  # its host agent was killed alone: stop (its lease lapses, another host takes over)
        while not stop.wait(1.0):
            if os.getppid() != parent:
                log.warning("camera %s: the supervising process is gone; stopping", job.camera_name)
                stop.set()

    threading.Thread(target=orphaned, name="orphan-watch", daemon=True).start()
    code = run_camera(job, store, stop, events.put)
    raise SystemExit(code)


@dataclass
class _Worker:
    job: CameraJob
    process: Any = None
    events: Any = None  # this process's own queue: a worker killed mid-put can only break its own
    restarts: int = 0
    next_start: float = 0.0
    done: bool = False
    exit_codes: list[int] = field(default_factory=list)
    outcome: str = ""  # how it ended: finished, not live, failed, refused, stopped


class Supervisor:
    """Runs one process per camera job; restarts crashed ones; forwards events to ``bus``."""

    def __init__(self, jobs: list[CameraJob], store: StoreConfig, bus: EventBus | None = None,
                 backoff: Backoff = Backoff(1.0, 2.0, 30.0), max_restarts: int | None = None,
                 snapshots: dict[int, Any] | None = None) -> None:
        self.ctx = mp.get_context("spawn")
        self.store = store
        self.snapshots = snapshots or {}  # deployment id -> the host's SharedSnapshot, handed to each worker
        self.bus = bus or EventBus()
        self.backoff = backoff
        self.max_restarts = max_restarts
        self.stop_event = threading.Event()
        self.workers = {job.camera_id: _Worker(job) for job in jobs}
        self._pump: threading.Thread | None = None
        self._pumping = threading.Event()

    def _spawn(self, w: _Worker) -> None:
        w.events = self.ctx.Queue()
        w.outcome = ""
        shared = self.snapshots.get(w.job.deployment_id)
        w.process = self.ctx.Process(target=_worker_main, args=(w.job, self.store, w.events, shared),
                                     name=f"openlfr-camera-{w.job.camera_name}", daemon=False)
        w.process.start()

    def start(self) -> None:
        """Start every worker and the event pump."""
        self._pumping.set()
        self._pump = threading.Thread(target=self._pump_events, name="event-pump", daemon=True)
        self._pump.start()
        for w in self.workers.values():
            self._spawn(w)

    def _pump_events(self) -> None:
        while self._pumping.is_set():
            idle = True
            for w in list(self.workers.values()):
                q = w.events
                while q is not None:
                    try:
                        event = q.get_nowait()
                    except (queue.Empty, EOFError, OSError):
                        break
                    idle = False
                    self.bus.publish(event)
            if idle:
                time.sleep(0.05)

    def poll(self) -> bool:
        """Restart dead workers whose backoff has passed; ``True`` while any worker has work."""
        now = time.monotonic()
        for w in self.workers.values():
            if w.done:
                continue
            p = w.process
            if p is not None and p.is_alive():
                continue
            if p is not None:
                code = p.exitcode
                w.exit_codes.append(code)
                w.process = None
                if code in (EXIT_DONE, EXIT_NOT_LIVE, EXIT_BAD_SOURCE, EXIT_CAMERA_TAKEN) or self.stop_event.is_set():
                    w.done = True  # (a duplicate worker is not restarted: the camera has its worker)
                    kind = {EXIT_BAD_SOURCE: "failed", EXIT_CAMERA_TAKEN: "refused"}.get(code, "finished")
                    w.outcome = "stopped" if self.stop_event.is_set() and code not in (
                        EXIT_BAD_SOURCE, EXIT_CAMERA_TAKEN) else {EXIT_NOT_LIVE: "not live"}.get(code, kind)
                    self.bus.publish(StatusEvent(w.job.camera_id, w.job.deployment_id, kind, f"exit {code}"))
                    continue
                if self.max_restarts is not None and w.restarts >= self.max_restarts:
                    w.done, w.outcome = True, "failed"
                    self.bus.publish(StatusEvent(w.job.camera_id, w.job.deployment_id, "failed", f"exit {code}"))
                    continue
                w.restarts += 1
                w.outcome = "failed"  # until its restart begins (a shutdown before then leaves it failed)
                w.next_start = now + self.backoff.delay(w.restarts)
                self.bus.publish(StatusEvent(w.job.camera_id, w.job.deployment_id, "died",
                                             f"exit {code}; restart {w.restarts} in {w.next_start - now:.1f} s"))
            if now >= w.next_start and not self.stop_event.is_set():
                self._spawn(w)
        return any(not w.done for w in self.workers.values())

    def run(self, stop: threading.Event | None = None, poll_s: float = 0.25) -> None:
        """Start, supervise until every worker is done or ``stop`` is set, then shut down."""
        self.start()
        try:
            while self.poll():
                if stop is not None and stop.wait(poll_s):
                    break
                if stop is None:
                    time.sleep(poll_s)
        finally:
            self.shutdown()

    def shutdown(self, timeout: float = 15.0) -> None:
        """Ask every worker to stop (they flush counters), wait, then terminate stragglers."""
        self.terminate()
        deadline = time.monotonic() + timeout
        for w in self.workers.values():
            if w.process is not None:
                w.process.join(max(0.1, deadline - time.monotonic()))
        self.reap(deadline=0.0)

    def terminate(self) -> None:
        """Ask every worker to stop (SIGTERM: after the current frame, counters flushed), without waiting."""
        self.stop_event.set()
        for w in self.workers.values():
            if w.process is not None and w.process.is_alive():
                w.process.terminate()

    def reap(self, deadline: float) -> bool:
        """After :meth:`terminate`: ``True`` once every worker has ended (then the event pump is
        stopped); a worker still running past ``deadline`` (``time.monotonic()``) is killed."""
        for w in self.workers.values():
            p = w.process
            if p is None:
                continue
            if p.is_alive() and time.monotonic() < deadline:
                return False
            if p.is_alive():
                p.kill()
                p.join(2)
            w.process = None
            w.exit_codes.append(p.exitcode)
            w.done = True
            w.outcome = w.outcome or {EXIT_BAD_SOURCE: "failed", EXIT_CAMERA_TAKEN: "refused"}.get(
                p.exitcode, "stopped")
        if self._pumping.is_set():
            time.sleep(0.3)  # let the pump deliver what the workers sent last
            self._pumping.clear()
            if self._pump is not None:
                self._pump.join(2)
        return True

    def outcomes(self) -> list[tuple[CameraJob, str, list[int]]]:
        """(job, how it ended, exit codes) per camera, after :meth:`run` or :meth:`shutdown`."""
        return [(w.job, w.outcome or "stopped", list(w.exit_codes)) for w in self.workers.values()]

    def failed(self) -> list[CameraJob]:
        """The cameras that failed (unusable address, or out of restarts)."""
        return [w.job for w in self.workers.values() if w.outcome == "failed"]

    def pids(self) -> dict[int, int]:
        """Camera id -> pid of its live worker."""
        return {cid: w.process.pid for cid, w in self.workers.items() if w.process is not None and w.process.is_alive()}


def jobs_for_live_deployments(gov: Governance, settings: dict[str, dict[str, Any]] | None = None,
                              cameras: list[str] | None = None, paced: bool = False) -> list[CameraJob]:
    """A job for every camera (with a stream address) of every deployment live now, with the
    camera's own settings from the store; ``settings`` overrides them (``{"*": {...}}`` for
    every camera, ``{name: {...}}`` for one)."""
    from sqlalchemy import select

    from openlfr.store.models import Deployment

    settings = settings or {}
    jobs = []
    with gov.transaction() as ctx:
        now = ctx.now()
        # retrospective deployments search recorded footage with 'openlfr scan', not cameras
        for dep in ctx.session.execute(select(Deployment).where(Deployment.status == "live",
                                                                Deployment.kind == "live")).scalars():
            if not dep.start <= now < dep.end:
                continue
            for cam in dep.cameras:
                if not cam.stream_url or (cameras and cam.name not in cameras and str(cam.id) not in cameras):
                    continue
                jobs.append(CameraJob(dep.id, cam.id, cam.name, cam.stream_url, job_settings(cam, settings), paced))
    return jobs


def job_settings(camera: Any, overrides: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A camera's analysis settings: its own from the store, under the command line's overrides
    (``{"*": {...}}`` for every camera, ``{name: {...}}`` for one)."""
    return {**(camera.settings or {}), **overrides.get("*", {}), **overrides.get(camera.name, {})}
