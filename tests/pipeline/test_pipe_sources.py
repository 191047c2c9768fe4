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


def _tiny_clip(path: Path, frames: int = 6, fps: float = 10.0) -> list[int]:
    """A small video whose frame k is a flat grey of level 30*k; the levels as decoded."""
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (64, 48))
    for k in range(frames):
        out.write(np.full((48, 64, 3), 30 * k, np.uint8))
    out.release()
    return [int(f.image[0, 0, 0]) for f in VideoFileSource(path)]


def test_a_looping_recording_starts_again_and_resumes_in_its_pass(tmp_path: Path) -> None:
    clip = tmp_path / "loop.mp4"
    levels = _tiny_clip(clip)
    assert len(levels) == 6 and len(list(VideoFileSource(clip))) == 6  # without loop: ends
    frames = iter(VideoFileSource(clip, loop=True))
    got = [next(frames) for _ in range(15)]
    # indices and times keep growing (the tracker and the checkpoint need both monotonic)
    assert [f.index for f in got] == list(range(15))
    assert [round(f.time, 2) for f in got] == [round(i / 10, 2) for i in range(15)]
    assert [int(f.image[0, 0, 0]) for f in got] == (levels * 3)[:15]
    # a checkpoint at frame 8 (the second pass) resumes there, and loops on from it
    resumed = iter(VideoFileSource(clip, loop=True, start_frame=8))
    first = [next(resumed) for _ in range(6)]
    assert [f.index for f in first] == [8, 9, 10, 11, 12, 13]
    assert [int(f.image[0, 0, 0]) for f in first] == levels[2:] + levels[:2]


def test_run_with_nothing_live_says_so(tmp_path: Path) -> None:
    env = dict(os.environ, OPENLFR_DATA_DIR=str(tmp_path), OPENLFR_DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite'}")
    out = subprocess.run([sys.executable, "-m", "openlfr.cli", "run", "--init"], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 2 and out.stderr.startswith("error: nothing to run"), out.stderr


def test_run_refuses_bad_settings(tmp_path: Path) -> None:
    env = dict(os.environ, OPENLFR_DATA_DIR=str(tmp_path), OPENLFR_DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite'}")
    out = subprocess.run([sys.executable, "-m", "openlfr.cli", "run", "--init", "--analyse-fps", "-1"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and out.stderr.startswith("error: --analyse-fps"), out.stderr


def _failures(gov, cam: int) -> tuple[list[str], list[str], object]:  # noqa: ANN001
    """(camera.failed reasons, gap reasons, status row) of a camera."""
    from sqlalchemy import select

    from openlfr.audit.chain import load_records
    from openlfr.store.models import CameraGap, CameraStatus

    with gov.transaction() as ctx:
        failed = [r.details for r in load_records(ctx.session) if r.action == "camera.failed"]
        gaps = [g.reason for g in ctx.session.execute(select(CameraGap).where(CameraGap.camera_id == cam)).scalars()]
        status = ctx.session.get(CameraStatus, cam)
        return failed, gaps, (status.state, status.error) if status else None


def test_worker_with_an_unusable_address_fails_and_says_so(tmp_path: Path, video_dir: Path) -> None:
    """A camera whose recording is gone: the worker ends without restarts, and the failure is
    audited, leaves a gap record and shows in the camera's status."""
    from pipekit import live_deployment, make_store
    from openlfr.face.analyzer import enrolment_template
    from openlfr.pipeline.worker import EXIT_BAD_SOURCE, CameraJob, StoreConfig, run_camera

    store = make_store(tmp_path)
    gov = store.governance(enrolment_template)
    dep, cam = live_deployment(gov, [video_dir / "references" / "lin-manuel-miranda.png"])
    job = CameraJob(dep, cam, "cam1", str(tmp_path / "gone.mp4"))
    assert run_camera(job, StoreConfig(store.url, str(store.blobs), ""), gov=gov) == EXIT_BAD_SOURCE
    failed, gaps, status = _failures(gov, cam)
    assert len(failed) == 1 and "gone.mp4" in failed[0] and gaps == [f"camera failed: {status[1]}"]
    assert status[0] == "failed" and "gone.mp4" in status[1]


def test_openlfr_run_exits_1_when_a_camera_failed(tmp_path: Path, video_dir: Path) -> None:
    import base64
    import shutil

    from pipekit import KEY, live_deployment, make_store
    from openlfr.face.analyzer import enrolment_template

    store = make_store(tmp_path)
    gov = store.governance(enrolment_template)
    clip = tmp_path / "clip.mp4"
    shutil.copy(video_dir / "short_hamilton_clip.mp4", clip)
    dep, cam = live_deployment(gov, [video_dir / "references" / "alex-lacamoire.png"], source=str(clip))
    clip.unlink()  # the recording went away after the camera was registered
    env = dict(os.environ, OPENLFR_DATABASE_URL=store.url, OPENLFR_DATA_DIR=str(tmp_path),
               OPENLFR_KEY=base64.b64encode(KEY).decode(), OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-m", "openlfr.cli", "run", "--init"], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 1, out.stderr
    assert f"camera cam1 (deployment {dep}): failed" in out.stderr and "Traceback" not in out.stderr
    failed, gaps, status = _failures(gov, cam)
    assert len(failed) == 1 and status[0] == "failed"


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
    failed, gaps, status = _failures(gov, cam)  # the camera's failure: audited, a gap, its status
    assert len(failed) == 1 and "outside the networks" in failed[0] and len(gaps) == 1
    assert status[0] == "failed" and "outside the networks" in status[1]
