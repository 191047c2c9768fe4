"""The chaos harness of issue 16: host agents, API replicas and a reviewer's stream on one
PostgreSQL, with faults, and the checks of what must survive them.

* **Clips** (:func:`chaos_clips`): one paced recording per camera, written with OpenCV into a
  temporary folder (never into the repository): grey, face-free frames with scripted *passes*
  of Lin-Manuel Miranda (3.6 s of ``short_hamilton_clip.mp4`` in which his face is alone and
  80-87 px wide), on a known schedule. He is enrolled from his reference photo
  (``video/references/lin-manuel-miranda.png``), never from a frame the cameras see.
* **World** (:func:`build_world`): a fresh PostgreSQL database with the usual parties
  (``govkit.Estate``), an approved agreement, his shared image on a watchlist, the cameras
  (with the clips' paths, paced, a re-alert window longer than a failover), their signage and one live
  deployment authorised by the police; a reviewer's credential for the stream.
* **Processes** (:class:`Cluster`): host agents (``openlfr run --host-id H --capacity N``)
  and API replicas (``openlfr serve --no-cameras``), each in its own process group, on
  loopback, with short leases; a :class:`LeaseWatch` that records who holds each camera; a
  :class:`SseClient` on the first replica that moves to the other with ``Last-Event-ID``
  when its connection drops.
* **Faults** (:func:`run_chaos`): ``SIGSTOP`` of the host that has just announced an alert,
  past its leases' expiry, then ``SIGCONT``; ``SIGKILL`` of the API replica the stream is on
  meanwhile; ``SIGKILL`` of another host's whole group as it announces an alert. Faults are
  triggered by announcements, so a pass is in flight on a camera of the host hit.
* **Checks** (:class:`ChaosResult`): every announced alert stored with its crop and details;
  exactly one alert per scripted pass; the resumed host's late writes refused and audited;
  every camera of a dead host re-owned within 15 s, with a "failover" gap; the stream got
  every stored alert exactly once across the replicas; ``openlfr audit verify`` passes.

Why the re-alert window is longer than a failover: a recording resumes on its new host from
its last checkpoint (saved with every alert), so the new host sees the end of a pass whose
alert the dead host committed. Those frames get the new host's clock, so they belong to the
same pass, and raise no second alert, only if the sightings are less than the window apart:
the window must exceed the time from an alert to the takeover's first frame (lease expiry,
claim, worker start: 10-15 s here), twice over when a camera is taken over again before its
new host saved a checkpoint past that pass. The host killed is one holding no camera just
taken over, where there is one, and the window (30 s) covers two takeovers where there is not.
Scripted passes are further apart than the window, so each is its own.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
from sqlalchemy import make_url, select, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "governance"))
from govkit import KEY, Clock, Estate, token_for  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SOURCE_CLIP = Path("video") / "short_hamilton_clip.mp4"
REFERENCE = Path("video") / "references" / "lin-manuel-miranda.png"
PERSON_FROM_S, PERSON_TO_S = 3.0, 6.6  # of the source clip: Miranda at the microphone, alone in the frame
CLIP_FPS = 10.0
FRAME_SIZE = (640, 360)  # the source clip's own size (w, h)
GREY = 96
MATCH_SLACK_S = 1.0  # an alert's video time may lie this far outside its pass (best shot, frame thinning)
MIN_PASS_LEFT_S = 1.0  # a pass with less than this left after a resume point cannot be expected to alert
Log = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


# --------------------------------------------------------------------------- clips
@dataclass(frozen=True)
class Pass:
    """A scripted pass of the enrolled person on one camera, in the clip's own time."""

    camera: str
    start_s: float
    end_s: float

    def __str__(self) -> str:
        return f"{self.camera} {self.start_s:.1f}-{self.end_s:.1f} s"


@dataclass(frozen=True)
class Clip:
    """A camera's recording and the passes scripted in it."""

    camera: str
    path: Path
    duration_s: float
    passes: tuple[Pass, ...]


@lru_cache(maxsize=2)
def person_frames(data_dir: Path) -> tuple[np.ndarray, ...]:
    """The pass's frames (BGR) at :data:`CLIP_FPS`, read from the shared source clip."""
    cap = cv2.VideoCapture(str(data_dir / SOURCE_CLIP))
    fps = cap.get(cv2.CAP_PROP_FPS)
    wanted = [PERSON_FROM_S + i / CLIP_FPS for i in range(int(round((PERSON_TO_S - PERSON_FROM_S) * CLIP_FPS)))]
    out: list[np.ndarray] = []
    index = 0
    try:
        while wanted:
            ok, bgr = cap.read()
            if not ok:
                break
            if index / fps >= wanted[0] - 0.5 / fps:
                out.append(cv2.resize(bgr, FRAME_SIZE) if bgr.shape[1::-1] != FRAME_SIZE else bgr)
                wanted.pop(0)
            index += 1
    finally:
        cap.release()
    if wanted:
        raise RuntimeError(f"{data_dir / SOURCE_CLIP}: too short for the scripted pass")
    return tuple(out)


def write_clip(path: Path, camera: str, starts: list[float], duration_s: float, data_dir: Path) -> Clip:
    """An mp4 of ``duration_s`` grey seconds with a pass of the person starting at each of ``starts``."""
    person = person_frames(data_dir)
    length = len(person) / CLIP_FPS
    grey = np.full((FRAME_SIZE[1], FRAME_SIZE[0], 3), GREY, np.uint8)
    first = [int(round(s * CLIP_FPS)) for s in starts]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), CLIP_FPS, FRAME_SIZE)
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {path}")
    try:
        for i in range(int(round(duration_s * CLIP_FPS))):
            frame = grey
            for f in first:
                if f <= i < f + len(person):
                    frame = person[i - f]
            writer.write(frame)
    finally:
        writer.release()
    passes = tuple(Pass(camera, f / CLIP_FPS, f / CLIP_FPS + length) for f in first)
    return Clip(camera, path, duration_s, passes)


def chaos_clips(data_dir: Path, folder: Path, *, cameras: int = 4, passes: int = 2, spacing_s: float = 26.0,
                first_s: float = 5.0, stagger_s: float = 2.5, tail_s: float = 4.0) -> list[Clip]:
    """One clip per camera (``cam1``...): ``passes`` passes ``spacing_s`` apart (start to
    start), the first at ``first_s`` plus ``stagger_s`` per camera, so the cameras' passes do
    not all fall at once."""
    folder.mkdir(parents=True, exist_ok=True)
    length = len(person_frames(data_dir)) / CLIP_FPS
    last = first_s + stagger_s * (cameras - 1) + spacing_s * (passes - 1)
    duration = last + length + tail_s
    out = []
    for k in range(cameras):
        starts = [first_s + stagger_s * k + spacing_s * i for i in range(passes)]
        out.append(write_clip(folder / f"cam{k + 1}.mp4", f"cam{k + 1}", starts, duration, data_dir))
    return out


# --------------------------------------------------------------------------- database and world
@contextmanager
def fresh_database(base_url: str) -> Iterator[str]:
    """A new, empty PostgreSQL database on the server of ``base_url``, dropped afterwards."""
    from openlfr.store import make_engine

    name = f"openlfr_chaos_{uuid.uuid4().hex[:10]}"
    admin = make_engine(base_url).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(base_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def _environ(**values: str) -> Iterator[None]:
    """``os.environ`` with ``values`` set, the settings re-read, both restored after."""
    from openlfr.config import get_settings

    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    get_settings.cache_clear()
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        get_settings.cache_clear()


@dataclass
class World:
    """A live deployment on the clips' cameras, and how other processes open the same store."""

    url: str
    data: Path  # the data directory every process shares (keys, file blobs)
    clip_dir: Path
    deployment_id: int
    clips: dict[int, Clip]  # camera id -> its clip
    reviewer_token: str
    lease_seconds: float
    renew_seconds: float

    def governance(self) -> Any:
        """A :class:`~openlfr.governance.Governance` on the store (as the CLI would open it)."""
        from openlfr.governance import Governance, Policy

        with _environ(**self.env_overrides()):
            return Governance(self.url, blob_root=self.data / "blobs", key=KEY, policy=Policy(), migrate=False)

    def env_overrides(self) -> dict[str, str]:
        return {"OPENLFR_DATABASE_URL": self.url, "OPENLFR_DATA_DIR": str(self.data),
                "OPENLFR_KEY": base64.b64encode(KEY).decode(), "OPENLFR_CAMERA_FILE_ROOTS": str(self.clip_dir),
                "OPENLFR_LEASE_SECONDS": f"{self.lease_seconds:g}", "OPENLFR_RENEW_SECONDS": f"{self.renew_seconds:g}"}

    def env(self) -> dict[str, str]:
        """The environment of an ``openlfr`` process on this store: this one's, less any other
        store's settings, with one thread per process (many share two cores)."""
        keep = ("OPENLFR_DATA", "OPENLFR_MODEL_CACHE_DIR")
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPENLFR_") or k in keep}
        return env | self.env_overrides() | {"OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def build_world(url: str, data: Path, clips: list[Clip], camera_settings: dict[str, Any], reference: Path, *,
                lease_seconds: float = 4.0, renew_seconds: float = 1.0) -> World:
    """Parties, agreement, the person's shared image, watchlist, one camera per clip (with
    ``camera_settings``), signage, and a deployment of them authorised and started; through the
    governance services, as the pipeline tests build theirs. ``reference``: the person's photo."""
    from openlfr.face.analyzer import enrolment_template
    from openlfr.face.registry import model_threshold
    from openlfr.governance import Governance, Policy, cameras, deployments, parse, sharing
    from openlfr.governance.schemas import CameraCreate, CameraUpdate, ShareImage

    data.mkdir(parents=True, exist_ok=True)
    clip_dir = clips[0].path.parent
    shell = World(url, data, clip_dir, 0, {}, "", lease_seconds, renew_seconds)
    with _environ(**shell.env_overrides()):
        gov = Governance(url, blob_root=data / "blobs", key=KEY, policy=Policy(), template_fn=enrolment_template)
        try:
            estate = Estate(gov, Clock(datetime.now(UTC)))
            estate.setup_users()
            agreement = estate.agreement()
            share = ShareImage(agreement_id=agreement, category="wanted_by_court", warrant_ref="WA-2029-00123",
                               reason="warrant 123", subject_ref="SUBJ-0001",
                               image_date=(estate.clock.now - timedelta(days=30)).date())
            with gov.transaction() as ctx:
                image = sharing.share_image(ctx, estate.supplier, share, reference.read_bytes())
            watchlist = estate.watchlist([image.id])
            ids: dict[int, Clip] = {}
            with gov.transaction() as ctx:
                for clip in clips:
                    cam = cameras.add_camera(ctx, estate.admin, parse(
                        CameraCreate, name=clip.camera, location=f"chaos {clip.camera}", stream_url=str(clip.path)))
                    cameras.update_camera(ctx, estate.admin, cam.id, CameraUpdate(settings=camera_settings))
                    ids[cam.id] = clip
            dep = estate.request(watchlist, list(ids), hours=3, threshold=model_threshold())
            estate.signage(dep, list(ids))
            with gov.transaction() as ctx:
                deployments.authorise(ctx, estate.officer2, dep)
                deployments.start(ctx, estate.admin, dep)
            reviewer = token_for(gov, "reviewer").token
        finally:
            gov.engine.dispose()
    return World(url, data, clip_dir, dep, ids, reviewer, lease_seconds, renew_seconds)


# --------------------------------------------------------------------------- processes
@dataclass
class Announced:
    """An alert a host agent printed on stdout (after its commit)."""

    host: str
    alert_id: int
    camera_id: int
    video_time: float
    at: str
    latency_ms: float | None
    seen: float  # time.time() when the harness read the line


@dataclass
class Proc:
    """One process group of the cluster: a host agent or an API replica."""

    name: str
    popen: subprocess.Popen[str]
    log: Path
    port: int | None = None
    announced: list[Announced] = field(default_factory=list)
    resumes: list[tuple[float, int, int]] = field(default_factory=list)  # (time, camera id, start frame)
    killed: bool = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def pids(self) -> list[int]:
        """Every live process in this group (the agent or server and its workers)."""
        return group_pids(self.popen.pid)


def group_pids(pgid: int) -> list[int]:
    """Pids of the processes whose process group is ``pgid`` (from /proc)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid:
            out.append(int(stat.parent.name))
    return sorted(out)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_STARTED = re.compile(r"camera (\d+): started \S+ from frame (\d+)")


class Cluster:
    """The world's processes: start, signal, stop; each in its own process group, logs in ``logs``."""

    def __init__(self, world: World, logs: Path, log: Log = _quiet) -> None:
        self.world = world
        self.logs = logs
        self.say = log
        self.procs: dict[str, Proc] = {}
        self._lock = threading.Lock()
        logs.mkdir(parents=True, exist_ok=True)

    def _popen(self, name: str, args: list[str]) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, "-m", "openlfr.cli", *args], env=self.world.env(), cwd=REPO,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1,
                                start_new_session=True)

    def _pump(self, proc: Proc, stream: Any, tag: str) -> None:
        """Copy a pipe into the process's log with times; read announcements and resumes."""
        with proc.log.open("a") as out:
            for line in stream:
                now = time.time()
                out.write(f"{now:.3f} {tag} {line}")
                out.flush()
                if tag == "out" and line.startswith("{"):
                    try:
                        a = json.loads(line)["alert"]
                        with self._lock:
                            proc.announced.append(Announced(proc.name, int(a["alert_id"]), int(a["camera_id"]),
                                                            float(a["video_time"]), str(a["at"]),
                                                            a.get("latency_ms"), now))
                    except (ValueError, KeyError, TypeError):
                        pass
                elif tag == "err" and (m := _STARTED.search(line)):
                    with self._lock:
                        proc.resumes.append((now, int(m.group(1)), int(m.group(2))))

    def _start(self, name: str, args: list[str], port: int | None = None) -> Proc:
        popen = self._popen(name, args)
        proc = Proc(name, popen, self.logs / f"{name}.log", port)
        for stream, tag in ((popen.stdout, "out"), (popen.stderr, "err")):
            threading.Thread(target=self._pump, args=(proc, stream, tag), name=f"pump-{name}-{tag}",
                             daemon=True).start()
        self.procs[name] = proc
        return proc

    def start_api(self, name: str) -> Proc:
        """``openlfr serve --no-cameras`` on a free loopback port (call :meth:`wait_api`)."""
        port = free_port()
        return self._start(name, ["serve", "--no-cameras", "--host", "127.0.0.1", "--port", str(port)], port)

    def wait_api(self, proc: Proc, timeout_s: float = 90.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if proc.popen.poll() is not None:
                raise RuntimeError(f"{proc.name} exited {proc.popen.returncode}:\n{tail(proc.log)}")
            try:
                if httpx.get(f"{proc.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"{proc.name} did not answer within {timeout_s:.0f} s:\n{tail(proc.log)}")

    def start_host(self, host_id: str, capacity: int) -> Proc:
        """A host agent: ``openlfr run --host-id H --capacity N``, a service until SIGTERM."""
        return self._start(host_id, ["run", "--host-id", host_id, "--capacity", str(capacity)])

    def signal(self, proc: Proc, sig: signal.Signals) -> list[int]:
        """Send ``sig`` to the whole group; returns the pids it reached."""
        pids = proc.pids()
        try:
            os.killpg(proc.popen.pid, sig)
        except ProcessLookupError:
            return []
        if sig == signal.SIGKILL:
            proc.killed = True
        self.say(f"{sig.name} {proc.name} (pids {pids})")
        return pids

    def announced(self) -> list[Announced]:
        with self._lock:
            return sorted((a for p in self.procs.values() for a in p.announced), key=lambda a: a.seen)

    def resumes(self) -> list[tuple[float, int, int]]:
        with self._lock:
            return sorted(r for p in self.procs.values() for r in p.resumes)

    def stop(self, proc: Proc, timeout_s: float = 30.0) -> int | None:
        """SIGTERM the group (SIGCONT first, in case it is stopped), then SIGKILL what is left."""
        if proc.popen.poll() is None:
            for sig in (signal.SIGCONT, signal.SIGTERM):
                try:
                    os.killpg(proc.popen.pid, sig)
                except ProcessLookupError:
                    break
            try:
                proc.popen.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.say(f"{proc.name} ignored SIGTERM for {timeout_s:.0f} s: SIGKILL")
        try:  # workers left behind by a killed parent, too
            os.killpg(proc.popen.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            proc.popen.wait(10)
        except subprocess.TimeoutExpired:
            pass
        return proc.popen.returncode

    def close(self) -> None:
        for proc in list(self.procs.values()):
            self.stop(proc, timeout_s=20)


def tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


# --------------------------------------------------------------------------- observers
class LeaseWatch(threading.Thread):
    """Reads ``camera_leases`` every ``every_s`` and keeps each change: (time, camera, host, epoch)."""

    def __init__(self, url: str, every_s: float = 0.2) -> None:
        super().__init__(name="lease-watch", daemon=True)
        from openlfr.store import make_engine

        self.engine = make_engine(url)
        self.every_s = every_s
        self.changes: list[tuple[float, int, str | None, int]] = []
        self.errors: list[str] = []
        self._now: dict[int, tuple[str | None, int]] = {}
        self._stop_event = threading.Event()
        self._lock = threading.Lock()

    def run(self) -> None:
        from openlfr.store.models import CameraLease

        while not self._stop_event.is_set():
            try:
                with self.engine.connect() as conn:
                    rows = conn.execute(select(CameraLease.camera_id, CameraLease.host_id, CameraLease.epoch)).all()
                now = time.time()
                with self._lock:
                    for cam, host, epoch in rows:
                        if self._now.get(cam) != (host, epoch):
                            self._now[cam] = (host, epoch)
                            self.changes.append((now, cam, host, epoch))
            except Exception as err:  # the store busy or restarting: the next read will tell
                self.errors.append(f"{type(err).__name__}: {err}")
            self._stop_event.wait(self.every_s)

    def holders(self) -> dict[int, str | None]:
        """Each camera's lease holder now (None: free)."""
        with self._lock:
            return {cam: host for cam, (host, _) in self._now.items()}

    def held_by(self, host_id: str) -> dict[int, int]:
        """The cameras ``host_id`` holds now, with their lease epochs."""
        with self._lock:
            return {cam: epoch for cam, (host, epoch) in self._now.items() if host == host_id}

    def reowned(self, camera: int, dead: str, since: float) -> float | None:
        """When (time.time()) another host first held ``camera`` after ``since``; None: never yet."""
        with self._lock:
            for t, cam, host, _ in self.changes:
                if cam == camera and t >= since and host is not None and host != dead:
                    return t
        return None

    def stop(self) -> None:
        self._stop_event.set()
        self.join(5)
        self.engine.dispose()


@dataclass
class SseEvent:
    """An ``event: alert`` the client received."""

    event_id: str
    alert_id: int
    replica: int
    received: float  # time.time()
    data: dict[str, Any]


class SseClient(threading.Thread):
    """A reviewer's stream (``/api/alerts/stream``) on ``urls[0]``; when a connection drops it
    reconnects to the next replica with ``Last-Event-ID`` (the last ``id:`` it received)."""

    def __init__(self, urls: list[str], token: str, name: str = "sse") -> None:
        super().__init__(name=name, daemon=True)
        self.urls = urls
        self.token = token
        self.events: list[SseEvent] = []
        self.connections: list[tuple[float, int, str | None]] = []  # (time, replica, Last-Event-ID sent)
        self.errors: list[str] = []
        self.last_id: str | None = None
        self.connected = threading.Event()
        self._stop_event = threading.Event()
        self._lock = threading.Lock()

    def run(self) -> None:
        replica = 0
        while not self._stop_event.is_set():
            headers = {"Authorization": f"Bearer {self.token}", "Accept": "text/event-stream"}
            params: dict[str, str] = {}
            if self.last_id is not None:
                headers["Last-Event-ID"] = self.last_id
            else:
                params["after"] = "0"  # from the first alert: none is missed while connecting
            try:
                with httpx.stream("GET", f"{self.urls[replica]}/api/alerts/stream", headers=headers, params=params,
                                  timeout=httpx.Timeout(5.0, read=40.0)) as resp:
                    if resp.status_code != 200:
                        self.errors.append(f"replica {replica}: HTTP {resp.status_code}")
                    else:
                        self.connections.append((time.time(), replica, self.last_id))
                        self._read(resp, replica)
            except httpx.HTTPError as err:
                self.errors.append(f"replica {replica}: {type(err).__name__}: {err}")
            if self._stop_event.is_set():
                break
            replica = (replica + 1) % len(self.urls)  # the other replica
            time.sleep(0.2)

    def _read(self, resp: httpx.Response, replica: int) -> None:
        ident, kind, data = None, "message", ""
        for line in resp.iter_lines():
            if self._stop_event.is_set():
                return
            if line.startswith(":"):
                self.connected.set()
                continue
            if line:
                name, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if name == "id":
                    ident = value
                elif name == "event":
                    kind = value
                elif name == "data":
                    data += value
                continue
            if kind == "alert" and data:  # a blank line ends an event
                body = json.loads(data)
                with self._lock:
                    self.events.append(SseEvent(ident or "", int(body["alert_id"]), replica, time.time(), body))
            if ident is not None:
                self.last_id = ident
            ident, kind, data = None, "message", ""

    def received(self) -> list[SseEvent]:
        with self._lock:
            return list(self.events)

    def stop(self) -> None:
        self._stop_event.set()


# --------------------------------------------------------------------------- the run
@dataclass
class ChaosConfig:
    """The shape of one chaos run (defaults: the issue's set-up, sized for 2 cores)."""

    cameras: int = 4
    hosts: int = 3
    capacity: int = 2
    replicas: int = 2
    passes_per_camera: int = 2
    analyse_fps: float = 4.0
    realert_after_s: float = 30.0  # longer than two failovers in a row (module docstring)
    lease_seconds: float = 4.0
    renew_seconds: float = 1.0
    reown_limit_s: float = 15.0
    start_timeout_s: float = 120.0  # every camera leased and analysing
    fault_wait_s: float = 60.0  # for the announcement that triggers a fault
    finish_timeout_s: float = 180.0  # every recording analysed to its end
    checkpoint_every_s: float = 5.0  # recordings save their position this often (the default)
    faults: bool = True

    def camera_settings(self) -> dict[str, Any]:
        return {"paced": True, "analyse_fps": self.analyse_fps, "realert_after_s": self.realert_after_s,
                "status_every_s": 2.0, "checkpoint_every_s": self.checkpoint_every_s}

    def spacing_s(self) -> float:
        """Pass starts on a camera: the window, the pass itself and a margin apart."""
        return self.realert_after_s + (PERSON_TO_S - PERSON_FROM_S) + 2.0


@dataclass
class Fault:
    kind: str  # "SIGSTOP host", "SIGKILL host", "SIGKILL replica"
    target: str
    at: float  # time.time()
    epochs: dict[int, int]  # the cameras the target held, with their lease epochs
    pids: list[int]
    resumed_at: float | None = None  # SIGCONT

    @property
    def cameras(self) -> list[int]:
        return sorted(self.epochs)

    def __str__(self) -> str:
        cams = f" holding cameras {self.cameras}" if self.cameras else ""
        return f"{self.kind} {self.target}{cams}"


@dataclass
class StoredAlert:
    alert_id: int
    camera_id: int
    video_time: float | None
    cursor: int | None
    crop_ok: bool
    detail_ok: bool


@dataclass
class ChaosResult:
    """What a run found; :meth:`failures` lists every broken guarantee in words."""

    world: World
    logs: Path
    faults: list[Fault]
    timeline: list[str]
    announced: list[Announced]
    stored: dict[int, StoredAlert]
    passes: dict[Pass, list[int]]  # scripted pass -> the stored alerts matched to it
    allowed_lost: dict[Pass, str]  # passes whose frames died in a dead host's memory, and why that is allowed
    strays: list[StoredAlert]  # stored alerts matching no scripted pass
    refused: list[str]  # late writes of the resumed host refused (audit events)
    refused_other: list[str]  # '.refused' audit events of others (for the record)
    reown_s: dict[tuple[str, int], float | None]  # (fault, camera) -> seconds to another host
    failover_gaps: dict[int, int]  # camera -> failover gaps recorded
    sse: list[SseEvent]
    sse_errors: list[str]
    sse_connections: list[tuple[float, int, str | None]]
    audit_rc: int
    audit_output: str
    reown_limit_s: float
    errors: list[str] = field(default_factory=list)  # the harness's own trouble (a process would not start...)

    # -- the guarantees
    def incomplete(self) -> list[str]:
        """Announced alerts not in the store, or without their crop or details."""
        out = []
        for a in self.announced:
            s = self.stored.get(a.alert_id)
            if s is None:
                out.append(f"alert {a.alert_id} announced by {a.host} is not in the store")
            elif not (s.crop_ok and s.detail_ok):
                out.append(f"alert {a.alert_id} announced by {a.host} lacks its "
                           + " and ".join(w for w, ok in (("crop", s.crop_ok), ("details", s.detail_ok)) if not ok))
        return out

    def lost(self) -> list[Pass]:
        return [p for p, ids in self.passes.items() if not ids and p not in self.allowed_lost]

    def duplicates(self) -> dict[Pass, list[int]]:
        return {p: ids for p, ids in self.passes.items() if len(ids) > 1}

    def slow_reown(self) -> dict[tuple[str, int], float | None]:
        return {k: v for k, v in self.reown_s.items() if v is None or v > self.reown_limit_s}

    def missing_gaps(self) -> list[int]:
        need = Counter(cam for (_, cam) in self.reown_s)
        return sorted(cam for cam, n in need.items() if self.failover_gaps.get(cam, 0) < n)

    def sse_counts(self) -> Counter[int]:
        return Counter(e.alert_id for e in self.sse)

    def sse_missing(self) -> list[int]:
        got = self.sse_counts()
        return sorted(a for a in self.stored if a not in got)

    def sse_duplicates(self) -> list[int]:
        return sorted(a for a, n in self.sse_counts().items() if n > 1)

    def sse_unknown(self) -> list[int]:
        return sorted(a for a in self.sse_counts() if a not in self.stored)

    def sse_wrong_ids(self) -> list[str]:
        """Events whose ``id:`` is not their alert's cursor (what a replica resumes after)."""
        return [f"alert {e.alert_id} sent with id {e.event_id!r}, its cursor is {self.stored[e.alert_id].cursor}"
                for e in self.sse if e.alert_id in self.stored and e.event_id != str(self.stored[e.alert_id].cursor)]

    def failures(self) -> list[str]:
        """Every broken guarantee, in words (empty: the run passed)."""
        out = list(self.errors)
        out += self.incomplete()
        out += [f"no alert for the scripted pass {p}" for p in self.lost()]
        out += [f"{len(ids)} alerts for the scripted pass {p}: {ids}" for p, ids in self.duplicates().items()]
        out += [f"alert {s.alert_id} on camera {s.camera_id} at {s.video_time} s matches no scripted pass"
                for s in self.strays]
        if any(f.kind == "SIGSTOP host" for f in self.faults) and not self.refused:
            out.append("the resumed host's late writes: none refused and audited (no '*.refused' event naming the "
                       "lease from its processes)")
        out += [f"{fault}: camera {cam} " + ("never re-owned" if s is None else f"re-owned after {s:.1f} s")
                + f" (limit {self.reown_limit_s:g} s)" for (fault, cam), s in self.slow_reown().items()]
        out += [f"camera {cam}: no camera gap with reason 'failover' for each takeover" for cam in self.missing_gaps()]
        out += [f"SSE: alert {a} never received" for a in self.sse_missing()]
        out += [f"SSE: alert {a} received {self.sse_counts()[a]} times" for a in self.sse_duplicates()]
        out += [f"SSE: alert {a} received but not in the store" for a in self.sse_unknown()]
        out += [f"SSE: {w}" for w in self.sse_wrong_ids()]
        if self.faults and not any(r > 0 for _, r, _ in self.sse_connections):
            out.append("SSE: the client never resumed on another replica")
        if self.audit_rc != 0:
            out.append(f"openlfr audit verify exited {self.audit_rc}: {self.audit_output[-500:]}")
        return out

    def max_reown_s(self) -> float | None:
        values = [v for v in self.reown_s.values() if v is not None]
        return max(values) if values else None

    def report(self) -> str:
        """The run in a few lines, for a failure message or a log."""
        lines = [f"logs: {self.logs}", "timeline:", *[f"  {t}" for t in self.timeline],
                 f"passes: {len(self.passes)}, stored alerts: {len(self.stored)}, announced: {len(self.announced)}"]
        for p, ids in self.passes.items():
            why = f" (allowed: {self.allowed_lost[p]})" if p in self.allowed_lost else ""
            lines.append(f"  {p}: {ids}{why}")
        lines.append(f"refused late writes of the resumed host: {len(self.refused)}")
        lines += [f"  {r}" for r in self.refused[:5]]
        lines.append("re-owned: " + ", ".join(f"camera {c} after {'never' if s is None else f'{s:.1f} s'} ({f})"
                                              for (f, c), s in self.reown_s.items()))
        lines.append(f"SSE: {len(self.sse)} events on replicas {dict(Counter(e.replica for e in self.sse))}, "
                     f"connections {[(r, last) for _, r, last in self.sse_connections]}, errors {self.sse_errors[-3:]}")
        lines.append(f"audit verify: exit {self.audit_rc}")
        return "\n".join(lines)


def _wait(cond: Callable[[], Any], timeout_s: float, every_s: float = 0.1) -> Any:
    """``cond()`` once it is truthy, or its last (falsy) value after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = cond()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(every_s)


def run_chaos(base_url: str, data_dir: Path, work: Path, config: ChaosConfig | None = None,
              log: Log = _quiet) -> ChaosResult:
    """One chaos run on a fresh database of the PostgreSQL server at ``base_url`` (module docstring)."""
    config = config or ChaosConfig()
    work.mkdir(parents=True, exist_ok=True)
    clips = chaos_clips(data_dir, work / "clips", cameras=config.cameras, passes=config.passes_per_camera,
                        spacing_s=config.spacing_s())
    with fresh_database(base_url) as url:
        world = build_world(url, work / "data", clips, config.camera_settings(), data_dir / REFERENCE,
                            lease_seconds=config.lease_seconds, renew_seconds=config.renew_seconds)
        log(f"world: deployment {world.deployment_id}, cameras {sorted(world.clips)}; logs in {work / 'logs'}")
        return _run(world, work / "logs", config, log)


def _run(world: World, logs: Path, config: ChaosConfig, log: Log) -> ChaosResult:
    timeline: list[str] = []
    t0 = time.time()

    def say(msg: str) -> None:
        line = f"{time.time() - t0:6.1f} s  {msg}"
        timeline.append(line)
        log(line)

    cluster = Cluster(world, logs, say)
    leases = LeaseWatch(world.url)
    probe = StoreProbe(world)
    faults: list[Fault] = []
    errors: list[str] = []
    sse: SseClient | None = None
    try:
        apis = [cluster.start_api(f"api{chr(ord('A') + i)}") for i in range(config.replicas)]
        for api in apis:
            cluster.wait_api(api)
        say(f"API replicas up: {', '.join(f'{a.name} {a.url}' for a in apis)}")
        sse = SseClient([a.url for a in apis], world.reviewer_token)
        sse.start()
        if not sse.connected.wait(30):
            raise RuntimeError(f"the reviewer's stream did not connect: {sse.errors[-3:]}")
        leases.start()
        hosts = [cluster.start_host(f"h{i + 1}", config.capacity) for i in range(config.hosts)]
        cams = sorted(world.clips)
        if not _wait(lambda: all(leases.holders().get(c) for c in cams) and probe.running(cams),
                     config.start_timeout_s, 0.5):
            raise RuntimeError(f"cameras not all leased and running after {config.start_timeout_s:.0f} s: "
                               f"leases {leases.holders()}\n" + "\n".join(tail(h.log, 1500) for h in hosts))
        say(f"hosts up; leases {leases.holders()}")
        if config.faults:
            _faults(cluster, leases, hosts, apis, config, faults, say)
        if _wait(lambda: probe.finished(cams), config.finish_timeout_s, 1.0):
            say("every recording analysed to its end")
        else:
            errors.append(f"not every recording was analysed to its end within {config.finish_timeout_s:.0f} s")
        stored_ids = probe.alert_ids()
        _wait(lambda: stored_ids <= {e.alert_id for e in sse.received()}, 15, 0.2)
        say(f"stream caught up: {len(sse.received())} events for {len(stored_ids)} stored alerts")
    except Exception as err:  # the run could not be completed: checked below with what there is
        errors.append(f"harness: {type(err).__name__}: {err}")
        say(f"harness error: {err}")
    finally:
        if sse is not None:
            sse.stop()
        for proc in cluster.procs.values():
            if proc.name.startswith("h"):
                cluster.stop(proc)
        cluster.close()
        leases.stop()
        probe.close()
    say("every process stopped")
    return _check(world, logs, config, cluster, leases, sse, faults, timeline, errors)


def _faults(cluster: Cluster, leases: LeaseWatch, hosts: list[Proc], apis: list[Proc], config: ChaosConfig,
            faults: list[Fault], say: Log) -> None:
    """SIGSTOP the host that announces the first alert, kill the stream's replica meanwhile,
    SIGCONT it once its cameras are re-owned; then SIGKILL another host as it announces one."""
    since = time.time()
    first = _wait(lambda: next((a for a in cluster.announced() if a.seen >= since), None), config.fault_wait_s)
    stopped = next((h for h in hosts if first and h.name == first.host), None) or _busiest(hosts, leases)
    stop = Fault("SIGSTOP host", stopped.name, time.time(), leases.held_by(stopped.name), [])
    held = stop.cameras
    stop.pids = cluster.signal(stopped, signal.SIGSTOP)
    faults.append(stop)
    say(f"{stop} (just announced alert {first.alert_id if first else None})")
    time.sleep(2.0)
    replica = Fault("SIGKILL replica", apis[0].name, time.time(), {}, [])
    replica.pids = cluster.signal(apis[0], signal.SIGKILL)
    faults.append(replica)
    say(f"{replica} (the reviewer's stream is on it)")
    expiry = stop.at + config.lease_seconds + 2 * config.renew_seconds + 1
    # until its cameras are re-owned, but no longer than they may take (a later re-own then shows)
    _wait(lambda: time.time() >= expiry and all(leases.reowned(c, stopped.name, stop.at) for c in held),
          config.reown_limit_s, 0.2)
    cluster.signal(stopped, signal.SIGCONT)
    stop.resumed_at = time.time()
    say(f"SIGCONT {stopped.name} after {stop.resumed_at - stop.at:.1f} s; leases {leases.holders()}")
    since = time.time()
    # the victim: a host none of whose cameras was just taken over, where there is one (a camera
    # failed over twice in a row replays its last pass twice, further apart: module docstring)
    clean = {h.name for h in hosts if h is not stopped and leases.held_by(h.name)
             and not set(leases.held_by(h.name)) & set(stop.cameras)}

    def next_alert() -> Announced | None:
        return next((a for a in cluster.announced() if a.seen >= since and a.host != stopped.name
                     and not cluster.procs[a.host].killed and (not clean or a.host in clean)), None)

    second = _wait(next_alert, config.fault_wait_s)
    victim = (cluster.procs[second.host] if second else
              _busiest([h for h in hosts if h is not stopped], leases))
    kill = Fault("SIGKILL host", victim.name, time.time(), leases.held_by(victim.name), [])
    held = kill.cameras
    kill.pids = cluster.signal(victim, signal.SIGKILL)
    faults.append(kill)
    say(f"{kill} (just announced alert {second.alert_id if second else None})")
    _wait(lambda: all(leases.reowned(c, victim.name, kill.at) for c in held), config.reown_limit_s + 5, 0.2)
    say(f"leases after the kill: {leases.holders()}")


def _busiest(hosts: list[Proc], leases: LeaseWatch) -> Proc:
    held = Counter(leases.holders().values())
    return max(hosts, key=lambda h: held.get(h.name, 0))


class StoreProbe:
    """Quick reads of the store while the cluster runs (one small engine)."""

    def __init__(self, world: World) -> None:
        from openlfr.store import make_engine

        self.world = world
        self.engine = make_engine(world.url)

    def running(self, cams: list[int]) -> bool:
        """Every camera's status says it is analysing."""
        from openlfr.store.models import CameraStatus

        with self.engine.connect() as conn:
            rows = conn.execute(select(CameraStatus.state).where(CameraStatus.camera_id.in_(cams))).all()
        return len(rows) == len(cams) and all(state == "running" for (state,) in rows)

    def finished(self, cams: list[int]) -> bool:
        """Every camera's recording was analysed to its end (its checkpoint says so)."""
        from openlfr.store.models import CameraCheckpoint

        with self.engine.connect() as conn:
            done = conn.execute(select(CameraCheckpoint.camera_id).where(
                CameraCheckpoint.deployment_id == self.world.deployment_id, CameraCheckpoint.finished != 0)).all()
        return {c for (c,) in done} >= set(cams)

    def alert_ids(self) -> set[int]:
        from openlfr.store.models import Alert

        with self.engine.connect() as conn:
            return set(conn.execute(select(Alert.id).where(Alert.deployment_id == self.world.deployment_id)).scalars())

    def close(self) -> None:
        self.engine.dispose()


# --------------------------------------------------------------------------- checks
def _check(world: World, logs: Path, config: ChaosConfig, cluster: Cluster, leases: LeaseWatch,
           sse: SseClient | None, faults: list[Fault], timeline: list[str], errors: list[str]) -> ChaosResult:
    from openlfr.pipeline.records import alert_detail
    from openlfr.rights.keys import media_bytes
    from openlfr.store.models import Alert, AuditEvent, CameraGap, MediaItem

    gov = world.governance()
    stored: dict[int, StoredAlert] = {}
    try:
        with gov.transaction() as ctx:
            alerts = ctx.session.execute(select(Alert).where(Alert.deployment_id == world.deployment_id)
                                         .order_by(Alert.id)).scalars().all()
            for a in alerts:
                detail = alert_detail(ctx, a.id)  # its sealed part opened: where the face was, whom it matched
                crop_ok = False
                for item in ctx.session.execute(select(MediaItem).where(MediaItem.alert_id == a.id,
                                                                        MediaItem.kind == "crop")).scalars():
                    try:
                        png = media_bytes(ctx, item)
                        crop_ok = crop_ok or cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR) is not None
                    except Exception as err:  # a blob that does not open is what this checks
                        errors.append(f"alert {a.id}: its crop does not open: {type(err).__name__}: {err}")
                detail_ok = detail is not None and len(detail["box"]) == 4 and bool(detail["candidate_label"])
                stored[a.id] = StoredAlert(a.id, a.camera_id, detail["video_time"] if detail else None,
                                           a.cursor, crop_ok, detail_ok)
            refused_events = ctx.session.execute(select(AuditEvent).where(AuditEvent.action.like("%.refused"))
                                                 .order_by(AuditEvent.seq)).scalars().all()
            gaps = ctx.session.execute(select(CameraGap).where(CameraGap.reason.contains("failover"))).scalars().all()
    finally:
        gov.engine.dispose()

    passes: dict[Pass, list[int]] = {p: [] for clip in world.clips.values() for p in clip.passes}
    by_camera = {cam: clip.passes for cam, clip in world.clips.items()}
    strays = []
    for s in stored.values():
        hit = next((p for p in by_camera.get(s.camera_id, ()) if s.video_time is not None
                    and p.start_s - MATCH_SLACK_S <= s.video_time <= p.end_s + MATCH_SLACK_S), None)
        if hit is None:
            strays.append(s)
        else:
            passes[hit].append(s.alert_id)
    allowed = _allowed_losses(world, cluster, faults, passes, config.checkpoint_every_s)

    stopped = next((f for f in faults if f.kind == "SIGSTOP host"), None)
    refused, refused_other = [], []
    for e in refused_events:
        line = f"#{e.seq} {e.action} by {e.actor} on {e.object_type} {e.object_id}: {e.details[:300]}"
        if stopped is not None and _late_write_of(e, stopped):
            refused.append(line)
        else:
            refused_other.append(line)

    reown: dict[tuple[str, int], float | None] = {}
    for f in faults:
        for cam in f.cameras:
            t = leases.reowned(cam, f.target, f.at)
            reown[(str(f), cam)] = None if t is None else t - f.at
    audit = subprocess.run([sys.executable, "-m", "openlfr.cli", "audit", "verify"], env=world.env(), cwd=REPO,
                           capture_output=True, text=True, timeout=300)
    return ChaosResult(
        world=world, logs=logs, faults=faults, timeline=timeline, announced=cluster.announced(), stored=stored,
        passes=passes, allowed_lost=allowed, strays=strays, refused=refused, refused_other=refused_other,
        reown_s=reown, failover_gaps=dict(Counter(g.camera_id for g in gaps)),
        sse=sse.received() if sse else [], sse_errors=sse.errors if sse else [],
        sse_connections=sse.connections if sse else [], audit_rc=audit.returncode,
        audit_output=audit.stdout + audit.stderr, reown_limit_s=config.reown_limit_s, errors=errors)


def _late_write_of(event: Any, fault: Fault) -> bool:
    """Whether a ``*.refused`` audit event is a late write of the host ``fault`` paused, refused
    for its lease: its reason names the lease, and it is about a camera the host held, under
    the epoch it held it with (the reason names that epoch), or it names the host or one of
    its processes."""
    details = str(event.details)
    if "lease" not in details.lower():
        return False
    if event.object_type == "camera" and event.object_id.isdigit():
        epoch = fault.epochs.get(int(event.object_id))
        if epoch is not None and re.search(rf"\bepoch {epoch}\b", details):
            return True
    text_ = f"{event.actor} {details}"
    if re.search(rf"(?<![\w-]){re.escape(fault.target)}(?![\w-])", text_.replace(f"host {fault.target}", "")):
        return True
    return any(re.search(rf"(?<!\d){pid}(?!\d)", text_) for pid in fault.pids)


def _allowed_losses(world: World, cluster: Cluster, faults: list[Fault],
                    passes: dict[Pass, list[int]], checkpoint_every_s: float) -> dict[Pass, str]:
    """Passes without an alert that the guarantee allows to be lost ("at most the analysed
    frames in a dead host's memory"): the camera was taken over after a fault and its
    recording resumed at checkpoint ``K``; the pass ended after the checkpoint before ``K``
    could have been saved (so the dead host analysed it without committing an alert), and less
    than :data:`MIN_PASS_LEFT_S` of it was left after ``K`` for the new host to see."""
    out = {}
    resumes = cluster.resumes()
    for f in faults:
        for cam in f.cameras:
            after = [frame for t, c, frame in resumes if c == cam and t >= f.at]
            if not after:
                continue
            resumed_s = after[0] / CLIP_FPS
            for p in world.clips[cam].passes:
                if not passes[p] and resumed_s - checkpoint_every_s - 1.0 <= p.end_s < resumed_s + MIN_PASS_LEFT_S:
                    out[p] = (f"{f}: camera {cam} resumed at {resumed_s:.1f} s, the pass's frames were analysed "
                              f"by the dead host only")
    return out
