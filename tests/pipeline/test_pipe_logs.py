"""A camera worker (its own process) logs at the command line's ``--log-level``, in the form of
``OPENLFR_LOG_FORMAT``, each record naming its camera."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

from pipekit import KEY, live_deployment, make_store

from openlfr.face.analyzer import enrolment_template
from openlfr.pipeline.records import save_checkpoint


def test_a_camera_worker_logs_at_the_command_lines_level(tmp_path: Path, video_dir: Path) -> None:
    store = make_store(tmp_path)
    gov = store.governance(enrolment_template)
    source = str(video_dir / "short_hamilton_clip.mp4")
    dep, cam = live_deployment(gov, [video_dir / "references" / "alex-lacamoire.png"], source=source)
    with gov.transaction() as ctx:  # the recording already done: the worker says so (info) and ends
        save_checkpoint(ctx, dep, cam, source, 10, finished=True)
    gov.close()
    env = dict(os.environ, OPENLFR_DATABASE_URL=store.url, OPENLFR_DATA_DIR=str(tmp_path),
               OPENLFR_KEY=base64.b64encode(KEY).decode(), OMP_NUM_THREADS="1", OPENLFR_LOG_FORMAT="json")
    env.pop("OPENLFR_LOG_LEVEL", None)

    def worker_records(level: str) -> list[dict[str, object]]:
        run = subprocess.run([sys.executable, "-m", "openlfr.cli", "--log-level", level, "run"], env=env,
                             check=False, capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr
        records = [json.loads(line) for line in run.stderr.splitlines() if line.startswith("{")]
        return [r for r in records if r["logger"] == "openlfr.pipeline.worker"]

    [record] = worker_records("info")
    assert record["level"] == "info" and record["camera"] == "cam1" and "already processed" in str(record["msg"])
    assert worker_records("warning") == []
