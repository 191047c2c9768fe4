"""Several cameras at once (one worker process each), a clean shutdown of ``openlfr run``, and
no second worker on a camera."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import select

from pipekit import KEY, live_deployment, make_store, second_live_deployment
from openlfr.face.analyzer import enrolment_template
from openlfr.pipeline.events import AlertEvent, EventBus
from openlfr.pipeline import leases
from openlfr.pipeline.worker import StoreConfig, Supervisor, jobs_for_live_deployments
from openlfr.store.models import Alert, AuditEvent, CameraCheckpoint, CameraLease, CameraStatus, PipelineCounter


def test_two_cameras_two_workers(tmp_path: Path, video_dir: Path) -> None:
    store = make_store(tmp_path)
    gov = store.governance(enrolment_template)
    dep, cam1 = live_deployment(gov, [video_dir / "references" / "lin-manuel-miranda.png"],
                                source=str(video_dir / "short_hamilton_clip.mp4"))
    # a second camera in a second live deployment of the same watchlist
    dep2, cam2 = second_live_deployment(gov, dep, "cam2", str(video_dir / "street_1080p.mp4"))
    jobs = jobs_for_live_deployments(gov)
    assert sorted((j.deployment_id, j.camera_id) for j in jobs) == [(dep, cam1), (dep2, cam2)]
    bus = EventBus()
    sub = bus.subscribe()
    sup = Supervisor(jobs, StoreConfig(store.url, str(store.blobs), base64.b64encode(KEY).decode()), bus)
    sup.start()
    pids = set(sup.pids().values())
    assert len(pids) == 2 and os.getpid() not in pids
    deadline = time.monotonic() + 100
    while sup.poll() and time.monotonic() < deadline:
        time.sleep(0.25)
    sup.shutdown()
    assert all(w.done and w.exit_codes == [0] for w in sup.workers.values())
    alerts = []
    while (e := sub.get(timeout=0)) is not None:
        if isinstance(e, AlertEvent):
            alerts.append(e)
    assert [(a.camera_id, a.deployment_id) for a in alerts] == [(cam1, dep)]
    with gov.transaction() as ctx:
        assert len(ctx.session.execute(select(Alert)).scalars().all()) == 1
        counted = {(c.deployment_id, c.camera_id) for c in ctx.session.execute(select(PipelineCounter)).scalars()}
        assert counted == {(dep, cam1), (dep2, cam2)}
        assert all(ctx.session.get(CameraCheckpoint, k).finished for k in counted)
        # each worker left its camera's status: stopped, with what it analysed and when it last had a frame
        for cam in (cam1, cam2):
            status = ctx.session.get(CameraStatus, cam)
            assert status.state == "stopped" and status.frames_analysed > 20 and status.last_frame_at is not None


def test_sigterm_stops_run_cleanly(tmp_path: Path, video_dir: Path) -> None:
    store = make_store(tmp_path)
    gov = store.governance(enrolment_template)
    dep, cam = live_deployment(gov, [video_dir / "references" / "alex-lacamoire.png"],
                               source=str(video_dir / "short_hamilton_clip.mp4"))
    env = dict(os.environ, OPENLFR_DATABASE_URL=store.url, OPENLFR_DATA_DIR=str(tmp_path),
               OPENLFR_KEY=base64.b64encode(KEY).decode(), OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "openlfr.cli", "run", "--paced"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stderr:  # type: ignore[union-attr]
            if "frames" in line:
                break
        time.sleep(2)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0 and "stopped" in err
    assert not [json.loads(line) for line in out.splitlines() if line.strip()]
    # it ends with a summary in the run's units, from the worker's own last status
    summary = re.search(r"stopped: 0 alert\(s\) in (\d+) frames analysed on 1 camera\(s\) \(\d+ s\)", err)
    assert summary is not None and int(summary.group(1)) > 0, err
    with gov.transaction() as ctx:
        counters = ctx.session.execute(select(PipelineCounter)).scalars().all()
        assert counters and sum(c.frames_analysed for c in counters) >= 5  # flushed on the way out
        checkpoint = ctx.session.get(CameraCheckpoint, (dep, cam))
        assert checkpoint.frame_index > 0 and not checkpoint.finished  # stopped part-way, resumable
        assert ctx.session.get(CameraLease, cam).host_id is None  # the camera's lease given back on the way out


def test_openlfr_run_refuses_a_second_worker_on_a_camera(tmp_path: Path, video_dir: Path) -> None:
    store = make_store(tmp_path)
    gov = store.governance(enrolment_template)
    dep, cam = live_deployment(gov, [video_dir / "references" / "alex-lacamoire.png"],
                               source=str(video_dir / "short_hamilton_clip.mp4"))
    # a worker (this process, alive) holds the camera's lease: 'openlfr run' must not start a second
    with gov.transaction() as ctx:
        leases.acquire(ctx, cam, dep, "pipeline:cam1", 60)
    env = dict(os.environ, OPENLFR_DATABASE_URL=store.url, OPENLFR_DATA_DIR=str(tmp_path),
               OPENLFR_KEY=base64.b64encode(KEY).decode(), OMP_NUM_THREADS="1")
    dup = subprocess.run([sys.executable, "-m", "openlfr.cli", "run"], env=env, capture_output=True,
                         text=True, timeout=120)
    # the refused worker says why and ends (not restarted, no traceback), and counts nothing
    assert dup.returncode == 0 and not dup.stdout, dup.stderr
    assert f"camera {cam}: refused camera {cam} is already analysed by pipeline:cam1@" in dup.stderr
    assert f"camera cam1 (deployment {dep}): refused" in dup.stderr and "Traceback" not in dup.stderr
    with gov.transaction() as ctx:
        assert ctx.session.execute(select(PipelineCounter)).scalars().all() == []
        actions = [a for (a,) in ctx.session.execute(select(AuditEvent.action))]
        assert "pipeline.start" not in actions and actions.count("camera.claim.refused") == 1
        assert ctx.session.get(CameraCheckpoint, (dep, cam)) is None
