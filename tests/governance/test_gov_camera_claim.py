"""One worker per camera (:mod:`openlfr.pipeline.ownership`): a second claim is refused and
audited while the first is fresh; an expired claim, or one whose process is gone, is taken
over; concurrent claims cannot both win (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading

import pytest
from sqlalchemy import select

from govkit import Estate
from openlfr.pipeline import ownership
from openlfr.pipeline.ownership import CameraTaken
from openlfr.store.models import AuditEvent, CameraOwner


def _owner(estate: Estate, cam: int) -> CameraOwner | None:
    with estate.gov.transaction() as ctx:
        row = ctx.session.get(CameraOwner, cam)
        if row is not None:
            ctx.session.expunge(row)
        return row


def _events(estate: Estate, action: str) -> list[AuditEvent]:
    with estate.gov.transaction() as ctx:
        rows = ctx.session.execute(select(AuditEvent).where(AuditEvent.action == action)
                                   .order_by(AuditEvent.seq)).scalars().all()
        ctx.session.expunge_all()
        return list(rows)


def test_second_claim_refused_while_the_first_is_fresh_and_renewed(estate: Estate) -> None:
    dep, cam, _ = estate.live_deployment()
    with estate.gov.transaction() as ctx:
        token = ownership.claim(ctx, cam, dep, "pipeline:cam1")
    with pytest.raises(CameraTaken, match="already analysed by pipeline:cam1@.*one worker per camera"), \
            estate.gov.transaction() as ctx:
        ownership.claim(ctx, cam, dep, "pipeline:cam1-duplicate")
    refused = _events(estate, "camera.claim.refused")
    assert len(refused) == 1 and refused[0].actor == "pipeline:cam1-duplicate"
    assert refused[0].object_id == str(cam) and "already analysed" in json.loads(refused[0].details)["reason"]
    assert _owner(estate, cam).token == token  # the refusal changed nothing
    # renewed within its life, the claim stays the first worker's well past one lifetime
    life = estate.gov.policy.camera_claim_seconds
    for _ in range(3):
        estate.clock.advance(seconds=life * 0.6)
        with estate.gov.transaction() as ctx:
            ownership.renew(ctx, cam, token, "pipeline:cam1")
    with pytest.raises(CameraTaken), estate.gov.transaction() as ctx:
        ownership.claim(ctx, cam, dep, "pipeline:cam1-duplicate")
    # released at the end: the next worker may claim at once
    with estate.gov.transaction() as ctx:
        ownership.release(ctx, cam, token, "pipeline:cam1")
    assert _owner(estate, cam) is None
    with estate.gov.transaction() as ctx:
        ownership.claim(ctx, cam, dep, "pipeline:cam1-next")
    assert [e.actor for e in _events(estate, "camera.claim")] == ["pipeline:cam1", "pipeline:cam1-next"]


def test_an_expired_claim_is_taken_over_and_its_holder_stops(estate: Estate) -> None:
    dep, cam, _ = estate.live_deployment()
    with estate.gov.transaction() as ctx:
        stale = ownership.claim(ctx, cam, dep, "pipeline:hung")
    estate.clock.advance(seconds=estate.gov.policy.camera_claim_seconds + 1)  # its holder stopped renewing
    with estate.gov.transaction() as ctx:
        fresh = ownership.claim(ctx, cam, dep, "pipeline:cam1")
    taken = _events(estate, "camera.claim")[-1]
    assert taken.actor == "pipeline:cam1" and json.loads(taken.details)["expired_claim_of"].startswith("pipeline:hung@")
    # the old holder learns it lost the camera when it next renews, and its release frees nothing
    with pytest.raises(CameraTaken, match="claim expired and is now held by pipeline:cam1@"), \
            estate.gov.transaction() as ctx:
        ownership.renew(ctx, cam, stale, "pipeline:hung")
    with estate.gov.transaction() as ctx:
        ownership.release(ctx, cam, stale, "pipeline:hung")
    assert _owner(estate, cam).token == fresh


def test_a_claim_whose_process_is_gone_is_taken_over_at_once(estate: Estate) -> None:
    dep, cam, _ = estate.live_deployment()
    with estate.gov.transaction() as ctx:
        ownership.claim(ctx, cam, dep, "pipeline:cam1")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    with estate.gov.transaction() as ctx:  # as if a worker on this machine had been killed (kill -9)
        ctx.session.get(CameraOwner, cam).owner = f"pipeline:cam1@{socket.gethostname()}:{gone.pid}"
    with estate.gov.transaction() as ctx:
        ownership.claim(ctx, cam, dep, "pipeline:cam1")
    assert _owner(estate, cam).owner == ownership.owner_name("pipeline:cam1")
    # a live process on this machine (this one), or any on another machine, is waited for
    for holder in (f"w@{socket.gethostname()}:{os.getpid()}", f"w@elsewhere:{gone.pid}"):
        with estate.gov.transaction() as ctx:
            ctx.session.get(CameraOwner, cam).owner = holder
        with pytest.raises(CameraTaken), estate.gov.transaction() as ctx:
            ownership.claim(ctx, cam, dep, "pipeline:cam1")


def test_concurrent_claims_cannot_both_win(estate: Estate) -> None:
    dep, cam, _ = estate.live_deployment()
    n = 6
    barrier = threading.Barrier(n)
    won: list[str] = []
    refused: list[str] = []

    def worker(k: int) -> None:
        barrier.wait()
        try:
            token = estate.gov.run(lambda ctx: ownership.claim(ctx, cam, dep, f"pipeline:w{k}"))
            won.append(token)
        except CameraTaken:
            refused.append(f"w{k}")

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(won) == 1 and len(refused) == n - 1, (won, refused)
    assert _owner(estate, cam).token == won[0]
    assert len(_events(estate, "camera.claim.refused")) == n - 1
