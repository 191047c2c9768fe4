"""Camera workers act on the settings of the command that started them: a ``--data-dir`` given
on the command line (laid over the environment, which it does not write) reaches each worker
process, which reads only the environment it inherits."""

from __future__ import annotations

import base64
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from pipekit import KEY, live_deployment, make_store
from openlfr.config import configure
from openlfr.face.analyzer import enrolment_template
from openlfr.pipeline.worker import StoreConfig, Supervisor, jobs_for_live_deployments


def _blank_clip(path: Path, frames: int = 6) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 5, (320, 240))
    for _ in range(frames):
        out.write(np.full((240, 320, 3), 90, np.uint8))
    out.release()


def _outcomes(sup: Supervisor) -> list[str]:
    stop = threading.Event()
    timer = threading.Timer(120, stop.set)  # a hung worker fails the test instead of hanging it
    timer.start()
    try:
        sup.run(stop)
    finally:
        timer.cancel()
    return [outcome for _, outcome, _ in sup.outcomes()]


def test_a_command_line_data_dir_reaches_the_workers(tmp_path: Path, video_dir: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # recordings may be read from <data_dir>/recordings only, and the data directory is the
    # command line's: OPENLFR_DATA_DIR (inherited by the workers) names another folder
    monkeypatch.delenv("OPENLFR_CAMERA_FILE_ROOTS")
    data = tmp_path / "cli-data"
    clip = data / "recordings" / "clip.mp4"
    _blank_clip(clip)
    configure(data_dir=data)
    store = make_store(data)
    gov = store.governance(enrolment_template)
    live_deployment(gov, [video_dir / "references" / "lin-manuel-miranda.png"], source=str(clip))
    jobs = jobs_for_live_deployments(gov)
    config = StoreConfig.from_settings()
    assert (config.database_url, config.settings) == (store.url, {"data_dir": data})
    key = base64.b64encode(KEY).decode()
    # without the overrides a worker sees the environment's data directory: the clip is refused there
    assert _outcomes(Supervisor(jobs, StoreConfig(store.url, str(store.blobs), key), max_restarts=0)) == ["failed"]
    handed = StoreConfig(store.url, str(store.blobs), key, config.settings)
    assert _outcomes(Supervisor(jobs, handed, max_restarts=0)) == ["finished"]
