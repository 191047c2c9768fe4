"""The host agent follows the store (the cameras under ``openlfr serve`` and ``openlfr run
--host-id``), round by round: a worker per lease held; a camera whose address or settings
changed gets a new worker (same lease), once the old one has stopped; one that ended is not
restarted for the same job; a lease lost or a deployment ended stops its worker; a deployment
going live is picked up; stopping gives the leases back. Supervisors are stood in for (real ones:
test_pipe_leases.py, test_pipe_workers.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import select

from govkit import Estate
from openlfr.governance import deployments
from openlfr.pipeline.events import EventBus, StatusEvent
from openlfr.pipeline.host import HostAgent
from openlfr.pipeline.worker import CameraJob, StoreConfig
from openlfr.store.models import Camera, CameraLease, HostAgent as HostRow


class _W:
    def __init__(self) -> None:
        self.done, self.exit_codes = False, []


class FakeSupervisor:
    log: ClassVar[list[tuple[str, CameraJob]]] = []  # ("start" | "stop", job), for the test to read

    def __init__(self, jobs: list[CameraJob], store: Any, bus: Any, snapshots: Any = None) -> None:
        (self.job,) = jobs
        self.workers = {self.job.camera_id: _W()}

    def start(self) -> None:
        FakeSupervisor.log.append(("start", self.job))

    def poll(self) -> bool:
        return not self.workers[self.job.camera_id].done

    def terminate(self) -> None:
        FakeSupervisor.log.append(("stop", self.job))

    def reap(self, deadline: float) -> bool:
        return True

    def outcomes(self) -> list[tuple[CameraJob, str, list[int]]]:
        return [(self.job, "stopped", [0])]

    def failed(self) -> list[CameraJob]:
        return []


def _live(estate: Estate, names: list[str], wl: int) -> tuple[int, list[int]]:
    cams = [estate.camera(n) for n in names]
    with estate.gov.transaction() as ctx:
        for cam, name in zip(cams, names):
            ctx.session.get(Camera, cam).stream_url = f"/recordings/{name}.mp4"
    dep = estate.request(wl, cams)
    with estate.gov.transaction() as ctx:
        deployments.authorise(ctx, estate.officer2, dep)
        deployments.start(ctx, estate.admin, dep)
    return dep, cams


def _round(agent: HostAgent) -> None:
    agent._round()
    agent._poll()


def test_the_host_agent_follows_the_store(estate: Estate, db_url: str, tmp_path: Path) -> None:
    FakeSupervisor.log = []
    ag = estate.agreement()
    wl = estate.watchlist([estate.share(ag, b"img-0")])
    dep, (gate, door) = _live(estate, ["gate", "door"], wl)
    bus = EventBus()
    events = bus.subscribe()
    agent = HostAgent(estate.gov, StoreConfig(db_url, str(tmp_path / "blobs"), ""), bus, host_id="A",
                      lease_s=60, renew_s=10, supervisor=FakeSupervisor)  # type: ignore[arg-type]
    agent._round(first=True)
    agent._poll()
    started = [job for what, job in FakeSupervisor.log if what == "start"]
    assert sorted((j.camera_name, j.lease_epoch) for j in started) == [("door", 1), ("gate", 1)]
    _round(agent)  # the same jobs: nothing new
    assert len(FakeSupervisor.log) == 2
    # gate's settings changed in the console: its worker is replaced, under the same lease
    with estate.gov.transaction() as ctx:
        ctx.session.get(Camera, gate).settings = {"analyse_fps": 3.0}
    _round(agent)
    (old,) = [j for w, j in FakeSupervisor.log if w == "stop"]
    assert old.camera_id == gate and FakeSupervisor.log[-1][0] == "start"
    edited = FakeSupervisor.log[-1][1]
    assert edited.settings == {"analyse_fps": 3.0} and edited.lease_epoch == 1
    # door's recording finished: its worker is done, not restarted, and its lease kept
    agent.held[door].sup.workers[door].done = True  # type: ignore[union-attr]
    n = len(FakeSupervisor.log)
    _round(agent)
    assert len(FakeSupervisor.log) == n and door in agent.held
    # a deployment going live later is picked up
    dep2, (exit_,) = _live(estate, ["exit"], wl)
    _round(agent)
    assert FakeSupervisor.log[-1] == ("start", CameraJob(dep2, exit_, "exit", "/recordings/exit.mp4", {}, False, 1))
    # door's lease taken over by another host (this one stalled): its worker is stopped
    with estate.gov.transaction() as ctx:
        row = ctx.session.get(CameraLease, door)
        row.host_id, row.epoch = "B", row.epoch + 1
    _round(agent)
    assert FakeSupervisor.log[-1][0] == "stop" and FakeSupervisor.log[-1][1].camera_id == door
    assert door not in agent.held
    # the first deployment ends: gate stops; exit runs on
    with estate.gov.transaction() as ctx:
        deployments.end(ctx, estate.admin, dep, reason="over")
    _round(agent)
    assert FakeSupervisor.log[-1] == ("stop", edited) and sorted(agent.held) == [exit_]
    kinds = []
    while (e := events.get(timeout=0)) is not None:
        if isinstance(e, StatusEvent):
            kinds.append((e.camera_id, e.kind))
    assert (door, "lost") in kinds and (gate, "ended") in kinds and (exit_, "leased") in kinds
    agent.stop()
    assert FakeSupervisor.log[-1][0] == "stop" and FakeSupervisor.log[-1][1].camera_id == exit_
    with estate.gov.transaction() as ctx:
        assert ctx.session.get(CameraLease, exit_).host_id is None  # given back
        assert ctx.session.execute(select(HostRow)).scalar_one().stopped_at is not None


def test_capacity_and_camera_choice(estate: Estate, db_url: str, tmp_path: Path) -> None:
    FakeSupervisor.log = []
    ag = estate.agreement()
    wl = estate.watchlist([estate.share(ag, b"img-0")])
    _, cams = _live(estate, ["c1", "c2", "c3"], wl)
    store = StoreConfig(db_url, str(tmp_path / "blobs"), "")
    one = HostAgent(estate.gov, store, host_id="A", capacity=2, lease_s=60, supervisor=FakeSupervisor)  # type: ignore[arg-type]
    one._round(first=True)
    assert len(one.held) == 2  # its capacity
    _round(one)
    assert len(one.held) == 2
    other = HostAgent(estate.gov, store, host_id="B", service=False, cameras=["c1", "c3"], lease_s=60,
                      supervisor=FakeSupervisor)  # type: ignore[arg-type]
    other._round(first=True)
    (left,) = set(cams) - set(one.held)
    assert set(other.held) == ({left} & {cams[0], cams[2]})
    # (openlfr run on one machine) the camera asked for that another host holds: refused, audited
    assert set(other.refused) == {cams[0], cams[2]} - {left}
    for agent in (one, other):
        agent.stop()  # (gives its leases and its shared snapshots back)
