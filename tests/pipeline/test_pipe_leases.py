"""Camera leases (:mod:`openlfr.pipeline.leases`) and host agents (:mod:`openlfr.pipeline.host`),
on SQLite and PostgreSQL: a deployment going live opens one lease row per camera (and notifies),
ending it deletes them; claims bump the epoch and never give one camera to two hosts; a lease not
renewed expires (database time) and is taken over with a ``failover`` gap; the fence refuses a
stale epoch or an expired lease, audited; host agents run each camera once, and a killed agent's
camera is re-owned by another."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from pipekit import KEY, live_deployment, real_store, second_live_deployment, short_clip, token_for, wait_for
from govkit import Estate
from openlfr.governance import Governance, deployments
from openlfr.pipeline import leases
from openlfr.pipeline.leases import Lease, LeaseLost
from openlfr.store.models import Agreement, AuditEvent, Camera, CameraGap, CameraLease, CameraCheckpoint
from openlfr.store.notify import LEASES, Listener

ELSEWHERE = "host:{}@another-machine:1"  # a holder on another machine: only its lease's expiry counts


def _deployment(estate: Estate, n_cameras: int = 1, start: bool = True) -> tuple[int, list[int]]:
    """A deployment (live unless ``start=False``: authorised) on ``n_cameras`` cameras with stream addresses."""
    ag = estate.agreement()
    wl = estate.watchlist([estate.share(ag, b"img-0")])
    cams = [estate.camera(f"cam{i}") for i in range(n_cameras)]
    with estate.gov.transaction() as ctx:
        for i, cam in enumerate(cams):
            ctx.session.get(Camera, cam).stream_url = f"/recordings/{i}.mp4"
    dep = estate.request(wl, cams)
    with estate.gov.transaction() as ctx:
        deployments.authorise(ctx, estate.officer2, dep)
        if start:
            deployments.start(ctx, estate.admin, dep)
    return dep, cams


def _rows(gov: Governance) -> dict[int, tuple[int, str | None, int]]:
    with gov.transaction() as ctx:
        return {r.camera_id: (r.deployment_id, r.host_id, r.epoch)
                for r in ctx.session.execute(select(CameraLease)).scalars()}


def _events(gov: Governance, action: str) -> list[dict]:
    with gov.transaction() as ctx:
        rows = ctx.session.execute(select(AuditEvent).where(AuditEvent.action == action)
                                   .order_by(AuditEvent.seq)).scalars().all()
        return [{"actor": r.actor, "object_id": r.object_id, **json.loads(r.details)} for r in rows]


def test_going_live_opens_rows_and_notifies_ending_deletes_them(estate: Estate, db_url: str) -> None:
    dep, cams = _deployment(estate, 2, start=False)
    heard: list[tuple[str, float]] = []
    listener = Listener(db_url, (LEASES,), lambda ch, payload: heard.append((payload, time.monotonic()))).start()
    try:
        if db_url.startswith("postgresql"):
            assert listener.connected.wait(10)
            listener._unlisten()  # only PostgreSQL's NOTIFY now, not this process's own delivery
        t0 = time.monotonic()
        with estate.gov.transaction() as ctx:
            deployments.start(ctx, estate.admin, dep)
        assert _rows(estate.gov) == {cam: (dep, None, 0) for cam in cams}  # free, one per camera
        deadline = time.monotonic() + 1.0
        while not any(p == str(dep) for p, _ in heard) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert any(p == str(dep) and t - t0 <= 1.0 for p, t in heard), heard
        heard.clear()
        t0 = time.monotonic()
        with estate.gov.transaction() as ctx:
            deployments.end(ctx, estate.admin, dep, reason="done")
        assert _rows(estate.gov) == {}
        deadline = time.monotonic() + 1.0
        while not any(p == str(dep) for p, _ in heard) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert any(p == str(dep) and t - t0 <= 1.0 for p, t in heard), heard
    finally:
        listener.stop()


def test_rows_follow_the_deployments_and_a_stale_row_is_taken_over(estate: Estate) -> None:
    dep, (cam,) = _deployment(estate)
    # the row of a deployment no longer live (its end not through end() or the sweep) goes at the next sync
    with estate.gov.transaction() as ctx:
        ctx.session.get(deployments.Deployment, dep).status = "ended"
    with estate.gov.transaction() as ctx:
        assert leases.sync_rows(ctx) == ([dep], [])
    assert _rows(estate.gov) == {}
    # a live deployment without rows (a store upgraded while it ran) gets them at the next sync
    with estate.gov.transaction() as ctx:
        ctx.session.get(deployments.Deployment, dep).status = "live"
    with estate.gov.transaction() as ctx:
        assert leases.sync_rows(ctx) == ([], [dep])
        assert leases.sync_rows(ctx) == ([], [])
    assert _rows(estate.gov) == {cam: (dep, None, 0)}
    with estate.gov.transaction() as ctx:
        (old,) = leases.claim(ctx, "A", ELSEWHERE.format("A"), None, 30)
    # its deployment over without its rows deleted, the camera's next deployment takes the row over
    # with the next epoch: the old holder is fenced off
    with estate.gov.transaction() as ctx:
        ctx.session.get(deployments.Deployment, dep).status = "ended"
    with estate.gov.transaction() as ctx:
        ag = ctx.session.execute(select(Agreement.id)).scalar_one()
    wl = estate.watchlist([estate.share(ag, b"img-1")], name="wl2")
    dep2 = estate.request(wl, [cam])
    with estate.gov.transaction() as ctx:
        deployments.authorise(ctx, estate.officer2, dep2)
        deployments.start(ctx, estate.admin, dep2)
    assert _rows(estate.gov) == {cam: (dep2, None, old.epoch + 1)}
    with pytest.raises(LeaseLost), estate.gov.transaction() as ctx:
        leases.fence(ctx, cam, old.epoch, "pipeline:cam0", "pipeline.counters", deployment_id=dep)


def test_claim_renew_expire_and_takeover_records_a_failover_gap(estate: Estate) -> None:
    dep, (cam,) = _deployment(estate)
    life = 2.0
    with estate.gov.transaction() as ctx:
        assert leases.claim(ctx, "A", ELSEWHERE.format("A"), None, life) == [Lease(cam, dep, 1)]
    with estate.gov.transaction() as ctx:
        assert leases.claim(ctx, "B", ELSEWHERE.format("B"), None, life) == []  # held: nothing for B
    for _ in range(2):  # renewed within its life, it stays A's past one lifetime
        time.sleep(life * 0.5)
        renewed = time.time()
        with estate.gov.transaction() as ctx:
            assert leases.renew(ctx, "A", {cam: 1}, life) == {cam}
        with estate.gov.transaction() as ctx:
            assert leases.claim(ctx, "B", ELSEWHERE.format("B"), None, life) == []
    time.sleep(life + 0.2)  # A stops renewing (paused, partitioned, dead)
    with estate.gov.transaction() as ctx:
        assert leases.claim(ctx, "B", ELSEWHERE.format("B"), None, life) == [Lease(cam, dep, 2)]
    with estate.gov.transaction() as ctx:
        assert leases.renew(ctx, "A", {cam: 1}, life) == set()  # A learns it lost the camera
        (gap,) = ctx.session.execute(select(CameraGap)).scalars().all()
        # the time nobody analysed the camera: from A's last renewal to the takeover
        assert gap.reason == leases.FAILOVER and gap.camera_id == cam and gap.deployment_id == dep
        assert abs(gap.started_at.timestamp() - renewed) < 0.5 and gap.ended_at >= gap.started_at
    claims = _events(estate.gov, "camera.lease.claim")
    assert [(c["host"], c["epoch"]) for c in claims] == [("A", 1), ("B", 2)]
    assert claims[1]["taken_over_from"] == ELSEWHERE.format("A") and claims[1]["previous_epoch"] == 1
    assert [g["reason"] for g in _events(estate.gov, "camera.gap")] == ["failover"]
    # a release by the old holder frees nothing; the new holder's does, and the next claim has no gap
    with estate.gov.transaction() as ctx:
        assert not leases.release(ctx, "A", cam, 1)
        assert leases.release(ctx, "B", cam, 2)
    with estate.gov.transaction() as ctx:
        assert leases.claim(ctx, "A", ELSEWHERE.format("A"), None, life) == [Lease(cam, dep, 3)]
    assert len(_events(estate.gov, "camera.gap")) == 1 and len(_events(estate.gov, "camera.lease.release")) == 1


def test_fence_refuses_a_stale_epoch_and_an_expired_lease_audited(estate: Estate) -> None:
    dep, (cam,) = _deployment(estate)
    with estate.gov.transaction() as ctx:
        (lease,) = leases.claim(ctx, "A", ELSEWHERE.format("A"), None, 1.5)
    with estate.gov.transaction() as ctx:
        leases.fence(ctx, cam, lease.epoch, "pipeline:cam0", deployment_id=dep)  # held: passes
        leases.fence(ctx, cam, None, "scan")  # no lease to check (a one-off search)
    with pytest.raises(LeaseLost, match="lease lost: epoch 0 is now 1, held by host A"), \
            estate.gov.transaction() as ctx:
        leases.fence(ctx, cam, 0, "pipeline:cam0", "pipeline.counters")
    time.sleep(1.7)
    with pytest.raises(LeaseLost, match="expired"), estate.gov.transaction() as ctx:
        leases.fence(ctx, cam, lease.epoch, "pipeline:cam0", "alert.record")
    with estate.gov.transaction() as ctx:  # taken over by B: A's epoch is stale
        (taken,) = leases.claim(ctx, "B", ELSEWHERE.format("B"), None, 30)
    with pytest.raises(LeaseLost, match=f"epoch {lease.epoch} is now {taken.epoch}, held by host B"), \
            estate.gov.transaction() as ctx:
        leases.fence(ctx, cam, lease.epoch, "pipeline:cam0", "alert.record")
    refused = _events(estate.gov, "pipeline.counters.refused") + _events(estate.gov, "alert.record.refused")
    assert [(r["actor"], r["object_id"]) for r in refused] == [("pipeline:cam0", str(cam))] * 3
    assert "is now 1" in refused[0]["reason"] and "expired" in refused[1]["reason"]
    # the deployment ends: its rows go, and only a worker's last writes as it stops still pass
    with estate.gov.transaction() as ctx:
        deployments.end(ctx, estate.admin, dep, reason="done")
    with estate.gov.transaction() as ctx:
        leases.fence(ctx, cam, taken.epoch, "pipeline:cam0", "pipeline.counters", deployment_id=dep, after_end=True)
    with pytest.raises(LeaseLost, match="no lease"), estate.gov.transaction() as ctx:
        leases.fence(ctx, cam, taken.epoch, "pipeline:cam0", "alert.record", deployment_id=dep)


def test_two_claimers_never_hold_one_camera_at_once(estate: Estate) -> None:
    dep, cams = _deployment(estate, 4)
    barrier = threading.Barrier(2)
    got: dict[str, list[Lease]] = {"A": [], "B": []}
    errors: list[BaseException] = []

    def host(name: str) -> None:
        try:
            barrier.wait()
            for _ in range(8):  # one at a time, racing the other host
                got[name] += estate.gov.run(lambda ctx: leases.claim(ctx, name, ELSEWHERE.format(name), 1, 30))
        except BaseException as err:  # noqa: BLE001
            errors.append(err)

    threads = [threading.Thread(target=host, args=(n,)) for n in got]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    claimed = [lease.camera_id for held in got.values() for lease in held]
    assert sorted(claimed) == sorted(cams)  # every camera once, none twice
    assert all(lease.epoch == 1 for held in got.values() for lease in held)
    rows = _rows(estate.gov)
    assert {cam: host for cam, (_, host, _) in rows.items()} == {
        lease.camera_id: name for name, held in got.items() for lease in held}
    with estate.gov.transaction() as ctx:  # capacity: at most n
        assert leases.claim(ctx, "C", ELSEWHERE.format("C"), 0, 30) == []


# ------------------------------------------------------------------ host agents on a real recording



@pytest.mark.slow_on_postgres
def test_two_host_agents_on_one_store_process_each_camera_once(db_url: str, tmp_path: Path,
                                                               video_dir: Path) -> None:
    from openlfr.pipeline.host import HostAgent
    from openlfr.store.models import HostAgent as HostRow, PipelineCounter

    gov, store = real_store(db_url, tmp_path)
    clip = short_clip(video_dir, tmp_path / "clip.mp4")
    dep1, cam1 = live_deployment(gov, [video_dir / "references" / "lin-manuel-miranda.png"], source=str(clip))
    dep2, cam2 = second_live_deployment(gov, dep1, "cam2", str(clip))
    agents = [HostAgent(gov, store, host_id=h, capacity=1, lease_s=4, renew_s=0.5) for h in ("A", "B")]
    try:
        for agent in agents:
            agent.start()
        assert sorted(c for a in agents for c in a.held) == sorted([cam1, cam2])  # one camera each

        def finished() -> bool:
            with gov.transaction() as ctx:
                rows = [ctx.session.get(CameraCheckpoint, k) for k in ((dep1, cam1), (dep2, cam2))]
                return all(r is not None and r.finished for r in rows)

        assert wait_for(finished, 90, 0.5)
        time.sleep(1.5)  # a few more rounds: the finished recordings keep their leases, nobody runs them again
        assert sorted(c for a in agents for c in a.held) == sorted([cam1, cam2])
    finally:
        for agent in agents:
            agent.stop()
    starts = _events(gov, "pipeline.start")
    assert sorted(int(e["object_id"]) for e in starts) == sorted([cam1, cam2])  # each camera analysed once
    claims = _events(gov, "camera.lease.claim")
    assert sorted((int(c["object_id"]), c["epoch"]) for c in claims) == sorted([(cam1, 1), (cam2, 1)])
    with gov.transaction() as ctx:
        frames = {}
        for c in ctx.session.execute(select(PipelineCounter)).scalars():
            frames[c.camera_id] = frames.get(c.camera_id, 0) + c.frames
        # each recording counted once: 1.6 s at the default 5 analysed frames a second (the file
        # source delivers only the frames due), not twice that
        assert frames == {cam1: 8, cam2: 8}
        # stopped: leases given back, hosts marked stopped
        assert all(r.host_id is None for r in ctx.session.execute(select(CameraLease)).scalars())
        assert all(h.stopped_at is not None for h in ctx.session.execute(select(HostRow)).scalars())
    gov.close()


@pytest.mark.slow_on_postgres
def test_a_killed_hosts_camera_is_re_owned_with_the_gap_and_an_ended_one_stops_at_once(
        db_url: str, tmp_path: Path, video_dir: Path) -> None:
    from openlfr.pipeline.host import HostAgent

    gov, store = real_store(db_url, tmp_path)
    clip = short_clip(video_dir, tmp_path / "clip.mp4")
    dep, cam = live_deployment(gov, [video_dir / "references" / "lin-manuel-miranda.png"], source=str(clip))
    with gov.transaction() as ctx:  # a camera that never ends: the recording played again and again, paced
        ctx.session.get(Camera, cam).settings = {"loop": True, "paced": True}
    lease_s, renew_s = 2.0, 0.5
    env = dict(os.environ, OPENLFR_DATABASE_URL=db_url, OPENLFR_DATA_DIR=str(tmp_path),
               OPENLFR_KEY=base64.b64encode(KEY).decode(), OMP_NUM_THREADS="1",
               OPENLFR_LEASE_SECONDS=str(lease_s), OPENLFR_RENEW_SECONDS=str(renew_s))
    proc = subprocess.Popen([sys.executable, "-m", "openlfr.cli", "run", "--host-id", "A"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    other = HostAgent(gov, store, host_id="B", lease_s=lease_s, renew_s=renew_s)
    try:
        assert wait_for(lambda: _rows(gov).get(cam, (0, None, 0))[1] == "A", 60), proc.stderr
        other.start()
        assert cam not in other.held
        time.sleep(1.0)  # A keeps renewing: B takes nothing
        assert _rows(gov)[cam][1] == "A" and cam not in other.held
        os.killpg(proc.pid, signal.SIGKILL)  # the whole host: agent and worker
        killed = time.monotonic()
        assert wait_for(lambda: cam in other.held, lease_s + renew_s + 5, 0.05)
        took = time.monotonic() - killed
        assert took <= lease_s + renew_s + 1.0, took  # (+1 s: the round's own transaction on a busy machine)
        assert wait_for(lambda: other.describe() and other._all and other._all[0].pids(), 10, 0.05)
        # the deployment ends: its rows go with a notification, and B stops the camera at once
        with gov.transaction() as ctx:
            deployments.end(ctx, token_for(gov, "admin"), dep, reason="operation over")
        ended = time.monotonic()
        assert wait_for(lambda: cam not in other.held, 5, 0.02)
        assert time.monotonic() - ended <= 1.0 + renew_s  # (notified: at once; polling alone: one round)
        assert wait_for(lambda: not other._all[0].pids(), 20, 0.1)  # its worker stopped
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        other.stop()
    assert _rows(gov) == {}
    with gov.transaction() as ctx:
        gaps = ctx.session.execute(select(CameraGap).where(CameraGap.camera_id == cam)).scalars().all()
        assert [g.reason for g in gaps] == ["failover"] and gaps[0].ended_at is not None
    claims = _events(gov, "camera.lease.claim")
    assert [(c["host"], c["epoch"]) for c in claims] == [("A", 1), ("B", 2)]
    assert claims[1]["taken_over_from"].startswith("host:A@")
    gov.close()
