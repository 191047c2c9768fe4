"""Crash safety: an alert is committed before it is announced, so after ``kill -9`` of a
worker or of the whole ``openlfr run`` no announced alert is missing, and a restart
continues where the recording stopped without alerting twice for the same person."""

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

from sqlalchemy import select

from pipekit import KEY, live_deployment, make_store
from openlfr.audit.chain import verify
from openlfr.face.analyzer import enrolment_template
from openlfr.pipeline.events import AlertEvent, EventBus, StatusEvent
from openlfr.pipeline.worker import StoreConfig, Supervisor, jobs_for_live_deployments
from openlfr.store.models import Alert, AlertDetail, AuditEvent, CameraCheckpoint, MediaItem

CLIP = "short_hamilton_clip.mp4"


def _estate(tmp_path: Path, video_dir: Path):  # noqa: ANN202
    store = make_store(tmp_path)
    gov = store.governance(enrolment_template)
    dep, cam = live_deployment(gov, [video_dir / "references" / "lin-manuel-miranda.png"],
                               source=str(video_dir / CLIP))
    return store, gov, dep, cam


def _assert_announced_are_stored(gov, announced: list[int]) -> None:  # noqa: ANN001
    with gov.transaction() as ctx:
        for alert_id in announced:
            assert ctx.session.get(Alert, alert_id) is not None
            assert ctx.session.get(AlertDetail, alert_id) is not None
            media = ctx.session.execute(select(MediaItem).where(MediaItem.alert_id == alert_id)).scalars().one()
            assert ctx.blobs.get(media.blob)
        assert verify(ctx.session).ok


def _run_cli(tmp_path: Path, store, *args: str) -> subprocess.Popen:  # noqa: ANN001
    env = dict(os.environ, OPENLFR_DATABASE_URL=store.url, OPENLFR_DATA_DIR=str(tmp_path),
               OPENLFR_KEY=base64.b64encode(KEY).decode(), OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-m", "openlfr.cli", "run", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def test_kill_9_of_the_whole_run_loses_no_announced_alert(tmp_path: Path, video_dir: Path) -> None:
    store, gov, dep, cam = _estate(tmp_path, video_dir)
    assert store.blobs == tmp_path / "blobs"  # the CLI finds blobs under OPENLFR_DATA_DIR
    proc = _run_cli(tmp_path, store, "--paced")
    announced = []
    deadline = time.monotonic() + 90
    try:
        for line in proc.stdout:  # type: ignore[union-attr]
            announced.append(json.loads(line)["alert"]["alert_id"])
            break  # the first announced alert: kill everything at once
        assert time.monotonic() < deadline
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    assert announced, proc.stderr.read()  # type: ignore[union-attr]
    _assert_announced_are_stored(gov, announced)
    with gov.transaction() as ctx:
        checkpoint = ctx.session.get(CameraCheckpoint, (dep, cam))
        assert checkpoint is not None and checkpoint.frame_index > 0 and not checkpoint.finished

    # Restart: resumes from the checkpoint, runs to the end of the clip, no second alert.
    proc = _run_cli(tmp_path, store)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert f"from frame {checkpoint.frame_index}" in err
    more = [json.loads(line)["alert"]["alert_id"] for line in out.splitlines() if line.strip()]
    assert more == []  # the same person moments later on the same camera: not alerted again
    with gov.transaction() as ctx:
        assert [a.id for a in ctx.session.execute(select(Alert)).scalars()] == announced
        assert ctx.session.get(CameraCheckpoint, (dep, cam)).finished
        starts = ctx.session.execute(select(AuditEvent).where(AuditEvent.action == "pipeline.start")).scalars().all()
        assert len(starts) == 2
    _assert_announced_are_stored(gov, announced)


def test_killed_worker_is_restarted_and_continues(tmp_path: Path, video_dir: Path) -> None:
    store, gov, dep, cam = _estate(tmp_path, video_dir)
    config = StoreConfig(store.url, str(store.blobs), base64.b64encode(KEY).decode())
    jobs = jobs_for_live_deployments(gov, paced=True)
    assert [(j.deployment_id, j.camera_id) for j in jobs] == [(dep, cam)]
    bus = EventBus()
    sub = bus.subscribe()
    sup = Supervisor(jobs, config, bus)
    from openlfr.video.stream_source import Backoff

    sup.backoff = Backoff(0.2, 2.0, 1.0)
    stop = threading.Event()
    runner = threading.Thread(target=sup.run, args=(stop,))
    runner.start()
    announced, statuses, killed = [], [], False
    try:
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline and runner.is_alive():
            event = sub.get(timeout=0.5)
            if isinstance(event, AlertEvent):
                announced.append(event.alert_id)
                if not killed:
                    os.kill(sup.pids()[cam], signal.SIGKILL)
                    killed = True
            elif isinstance(event, StatusEvent):
                statuses.append(event.kind)
    finally:
        stop.set()
        runner.join(30)
    assert killed and announced
    assert sup.workers[cam].restarts == 1 and -signal.SIGKILL in sup.workers[cam].exit_codes
    assert "died" in statuses and statuses.count("started") == 2 and statuses[-1] == "finished"
    _assert_announced_are_stored(gov, announced)
    with gov.transaction() as ctx:
        assert [a.id for a in ctx.session.execute(select(Alert)).scalars()] == announced
        assert ctx.session.get(CameraCheckpoint, (dep, cam)).finished
