"""One worker per camera without a host agent (:func:`openlfr.pipeline.leases.acquire`): a second
worker is refused and audited while the first one's lease is fresh (renewed: database time); an
expired lease, or one whose process on this machine is gone, is taken over (epoch + 1, a
``failover`` gap) and its old holder is fenced off; concurrent takers cannot both win (SQLite and
PostgreSQL). Host agents' claims: tests/pipeline/test_pipe_leases.py."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest
from sqlalchemy import select

from govkit import Estate
from openlfr.pipeline import leases
from openlfr.pipeline.leases import CameraTaken, LeaseLost
from openlfr.store.models import AuditEvent, CameraGap, CameraLease


def _lease(estate: Estate, cam: int) -> CameraLease | None:
    with estate.gov.transaction() as ctx:
        row = ctx.session.get(CameraLease, cam)
        if row is not None:
            ctx.session.expunge(row)
        return row


def _events(estate: Estate, action: str) -> list[AuditEvent]:
    with estate.gov.transaction() as ctx:
        rows = ctx.session.execute(select(AuditEvent).where(AuditEvent.action == action)
                                   .order_by(AuditEvent.seq)).scalars().all()
        ctx.session.expunge_all()
        return list(rows)


def _acquire(estate: Estate, cam: int, dep: int, worker: str, life: float = 30.0) -> int:
    with estate.gov.transaction() as ctx:
        epoch = leases.acquire(ctx, cam, dep, worker, life)
    assert epoch is not None
    return epoch


def test_second_worker_refused_while_the_first_is_fresh_and_renewed(estate: Estate) -> None:
    dep, cam, _ = estate.live_deployment()
    life = 2.0
    epoch = _acquire(estate, cam, dep, "pipeline:cam1", life)
    with pytest.raises(CameraTaken, match="already analysed by pipeline:cam1@.*one worker per camera"), \
            estate.gov.transaction() as ctx:
        leases.acquire(ctx, cam, dep, "pipeline:cam1-duplicate", life)
    refused = _events(estate, "camera.claim.refused")
    assert len(refused) == 1 and refused[0].actor == "pipeline:cam1-duplicate"
    assert refused[0].object_id == str(cam) and "already analysed" in json.loads(refused[0].details)["reason"]
    assert _lease(estate, cam).epoch == epoch  # the refusal changed nothing
    # renewed within its life (database time), the lease stays the first worker's past one lifetime
    holder = leases.holder_name("pipeline:cam1")
    for _ in range(2):
        time.sleep(life * 0.6)
        with estate.gov.transaction() as ctx:
            assert leases.renew(ctx, holder, {cam: epoch}, life) == {cam}
    with pytest.raises(CameraTaken), estate.gov.transaction() as ctx:
        leases.acquire(ctx, cam, dep, "pipeline:cam1-duplicate", life)
    # released at the end: the next worker may take it at once, with no gap
    with estate.gov.transaction() as ctx:
        assert leases.release(ctx, holder, cam, epoch, actor="pipeline:cam1", action="camera.release")
    assert _lease(estate, cam).host_id is None
    assert _acquire(estate, cam, dep, "pipeline:cam1-next", life) == epoch + 1
    assert [e.actor for e in _events(estate, "camera.claim")] == ["pipeline:cam1", "pipeline:cam1-next"]
    assert [e.actor for e in _events(estate, "camera.release")] == ["pipeline:cam1"]
    with estate.gov.transaction() as ctx:
        assert ctx.session.execute(select(CameraGap)).scalars().all() == []


def test_an_expired_lease_is_taken_over_and_its_holder_is_fenced_off(estate: Estate) -> None:
    dep, cam, _ = estate.live_deployment()
    stale = _acquire(estate, cam, dep, "pipeline:hung", 0.5)
    time.sleep(0.7)  # its holder stopped renewing
    fresh = _acquire(estate, cam, dep, "pipeline:cam1")
    assert fresh == stale + 1
    taken = json.loads(_events(estate, "camera.claim")[-1].details)
    assert taken["taken_over_from"].startswith("pipeline:hung@") and taken["epoch"] == fresh
    with estate.gov.transaction() as ctx:  # the time nobody analysed the camera is on record
        (gap,) = ctx.session.execute(select(CameraGap)).scalars().all()
        assert gap.reason == "failover" and gap.ended_at is not None
    # the old holder learns it lost the camera when it next renews; its writes and release are refused
    hung = leases.holder_name("pipeline:hung")
    with estate.gov.transaction() as ctx:
        assert leases.renew(ctx, hung, {cam: stale}, 30) == set()
    with pytest.raises(LeaseLost, match=f"epoch {stale} is now {fresh}"), estate.gov.transaction() as ctx:
        leases.fence(ctx, cam, stale, "pipeline:hung", "pipeline.counters", deployment_id=dep)
    assert json.loads(_events(estate, "pipeline.counters.refused")[0].details)["reason"].startswith("lease lost")
    with estate.gov.transaction() as ctx:
        assert not leases.release(ctx, hung, cam, stale)
    assert _lease(estate, cam).epoch == fresh and _lease(estate, cam).holder == leases.holder_name("pipeline:cam1")


def test_a_lease_whose_process_is_gone_is_taken_over_at_once(estate: Estate) -> None:
    dep, cam, _ = estate.live_deployment()
    _acquire(estate, cam, dep, "pipeline:cam1")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    with estate.gov.transaction() as ctx:  # as if a worker on this machine had been killed (kill -9)
        ctx.session.get(CameraLease, cam).holder = f"pipeline:cam1@{socket.gethostname()}:{gone.pid}"
    _acquire(estate, cam, dep, "pipeline:cam1")
    assert _lease(estate, cam).holder == leases.holder_name("pipeline:cam1")
    # a live process on this machine (this one), or any on another machine, is waited for
    for holder in (f"w@{socket.gethostname()}:{os.getpid()}", f"w@elsewhere:{gone.pid}"):
        with estate.gov.transaction() as ctx:
            ctx.session.get(CameraLease, cam).holder = holder
        with pytest.raises(CameraTaken), estate.gov.transaction() as ctx:
            leases.acquire(ctx, cam, dep, "pipeline:cam1", 30)


def test_no_lease_outside_a_live_deployment(estate: Estate) -> None:
    from openlfr.governance import deployments

    dep, cam, _ = estate.live_deployment()
    with estate.gov.transaction() as ctx:
        deployments.end(ctx, estate.admin, dep, reason="over")
    with pytest.raises(leases.NoLease, match="not live"), estate.gov.transaction() as ctx:
        leases.acquire(ctx, cam, dep, "pipeline:cam1", 30)
    with estate.gov.transaction() as ctx:
        assert ctx.session.get(CameraLease, cam) is None


def test_concurrent_takers_cannot_both_win(estate: Estate) -> None:
    dep, cam, _ = estate.live_deployment()
    n = 6
    barrier = threading.Barrier(n)
    won: list[int] = []
    refused: list[str] = []

    def worker(k: int) -> None:
        barrier.wait()
        try:
            won.append(estate.gov.run(lambda ctx: leases.acquire(ctx, cam, dep, f"pipeline:w{k}", 30)))
        except CameraTaken:
            refused.append(f"w{k}")

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(won) == 1 and len(refused) == n - 1, (won, refused)
    assert _lease(estate, cam).epoch == won[0]
    assert len(_events(estate, "camera.claim.refused")) == n - 1
