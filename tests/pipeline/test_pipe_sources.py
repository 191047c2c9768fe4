"""Sources: addresses, image folders, webcams, resuming recordings; ``openlfr run`` with nothing live."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from openlfr.errors import InputError
from openlfr.video.file_source import VideoFileSource
from openlfr.video.folder_source import FolderSource
from openlfr.video.sources import open_source, source_kind
from openlfr.video.stream_source import Backoff
from openlfr.video.webcam_source import WebcamSource, device_index


def test_source_kinds(tmp_path: Path) -> None:
    (tmp_path / "clip.mp4").write_bytes(b"x")
    assert source_kind("rtsp://10.0.0.5/stream1") == "stream"
    assert source_kind("http://127.0.0.1:8000/cam.ts") == "stream"
    assert source_kind("webcam:0") == source_kind("/dev/video2") == "webcam"
    assert source_kind(str(tmp_path)) == "folder"
    assert source_kind(str(tmp_path / "clip.mp4")) == "file"
    with pytest.raises(InputError, match="neither"):
        source_kind(str(tmp_path / "missing.mp4"))


def test_backoff_grows_to_a_cap() -> None:
    b = Backoff(0.5, 2.0, 4.0)
    assert [b.delay(i) for i in range(1, 6)] == [0.5, 1.0, 2.0, 4.0, 4.0]


def test_folder_source_plays_images_in_name_order_and_skips_broken(tmp_path: Path) -> None:
    for i in (2, 0, 1):
        cv2.imwrite(str(tmp_path / f"img{i}.png"), np.full((20, 30, 3), 40 * i, np.uint8))
    (tmp_path / "img3.jpg").write_bytes(b"not an image")
    (tmp_path / "notes.txt").write_text("ignored")
    src = FolderSource(tmp_path, fps=2.0)
    frames = list(src)
    assert [f.index for f in frames] == [0, 1, 2] and [f.time for f in frames] == [0.0, 0.5, 1.0]
    assert [int(f.image[0, 0, 0]) for f in frames] == [0, 40, 80] and src.skipped == 1
    assert [f.index for f in FolderSource(tmp_path, start_frame=2)] == [2]
    with pytest.raises(InputError):
        FolderSource(tmp_path / "nothing")


def test_webcam_device_names_and_missing_device() -> None:
    assert device_index("webcam:3") == device_index("/dev/video3") == device_index("3") == 3
    with pytest.raises(InputError):
        device_index("camera three")
    if not os.path.exists("/dev/video7"):
        with pytest.raises(InputError, match="no camera device"):
            WebcamSource("/dev/video7")


def test_recording_resumes_from_a_frame(video_dir: Path) -> None:
    clip = video_dir / "short_hamilton_clip.mp4"
    kind, frames = open_source(str(clip), start_frame=120)
    first = next(iter(frames))
    assert kind == "file" and first.index == 120 and abs(first.time - 120 / 29.97) < 0.01
    ref = list(f for f in VideoFileSource(clip) if f.index == 120)[0]
    assert np.array_equal(first.image, ref.image)


def test_run_with_nothing_live_says_so(tmp_path: Path) -> None:
    env = dict(os.environ, OPENLFR_DATA_DIR=str(tmp_path), OPENLFR_DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite'}")
    out = subprocess.run([sys.executable, "-m", "openlfr.cli_pipeline", "run"], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0 and "nothing to run" in out.stderr


def test_run_refuses_bad_settings(tmp_path: Path) -> None:
    (tmp_path / "s.json").write_text('{"*": {"analyse_fps": -1}}')
    env = dict(os.environ, OPENLFR_DATA_DIR=str(tmp_path), OPENLFR_DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite'}")
    out = subprocess.run([sys.executable, "-m", "openlfr.cli_pipeline", "run", "--settings", str(tmp_path / "s.json")],
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and out.stderr.startswith("error: settings for '*'")


def test_worker_with_an_unusable_address_fails_without_restarts(tmp_path: Path) -> None:
    from pipekit import live_deployment, make_store  # noqa: F401  (sys.path for govkit)
    from openlfr.pipeline.worker import EXIT_BAD_SOURCE, CameraJob, StoreConfig, run_camera

    job = CameraJob(1, 1, "cam1", str(tmp_path / "gone.mp4"))
    assert run_camera(job, StoreConfig("sqlite://", str(tmp_path), ""), gov=object()) == EXIT_BAD_SOURCE  # type: ignore[arg-type]


def test_worker_refuses_a_camera_whose_network_is_no_longer_allowed(tmp_path: Path, video_dir: Path) -> None:
    """The address is checked again when the worker opens it: narrowing the organisation's camera
    networks stops a camera registered earlier, and the refusal is audited."""
    from pipekit import live_deployment, make_store
    from govkit import token_for
    from openlfr.audit.chain import load_records
    from openlfr.face.analyzer import enrolment_template
    from openlfr.governance import cameras
    from openlfr.pipeline.worker import EXIT_BAD_SOURCE, CameraJob, StoreConfig, run_camera

    store = make_store(tmp_path)
    gov = store.governance(enrolment_template)
    url = "http://127.0.0.1:9/internal/admin?token=x"  # allowed while loopback is (pipekit allows it)
    dep, cam = live_deployment(gov, [video_dir / "references" / "lin-manuel-miranda.png"], source=url)
    with gov.transaction() as ctx:
        cameras.set_camera_networks(ctx, token_for(gov, "admin"), ["10.20.0.0/16"])
    config = StoreConfig(store.url, str(store.blobs), "")
    assert run_camera(CameraJob(dep, cam, "cam1", url), config, gov=gov) == EXIT_BAD_SOURCE
    with gov.transaction() as ctx:
        refused = [r for r in load_records(ctx.session) if r.action == "camera.source.refused"]
    assert len(refused) == 1 and "outside the networks" in refused[0].details
