"""The threads that read a camera or a recording ahead of the pipeline: stopped and waited for,
so a worker or a ``scan`` never exits while one is still inside OpenCV (CPython unwinds a daemon
thread at exit from where it next takes the GIL, and inside OpenCV's C++ that aborts the
process: SIGABRT instead of the exit code the supervisor acts on, and a core dump)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from openlfr.pipeline.reader import LatestFrameReader, Prefetcher
from openlfr.video.file_source import VideoFileSource

CHILD = """
import sys, threading
from openlfr.pipeline.reader import LatestFrameReader, Prefetcher
from openlfr.video.file_source import VideoFileSource
from openlfr.video.pacing import PacedSource
kind, clip = sys.argv[1], sys.argv[2]
stop = threading.Event()
source = VideoFileSource(clip, loop=True)
reader = {"latest": lambda: LatestFrameReader(source, stop=stop),
          "paced": lambda: LatestFrameReader(PacedSource(VideoFileSource(clip, 5, loop=True)), stop=stop),
          "prefetch": lambda: Prefetcher(source, stop=stop)}[kind]()
for i, frame in enumerate(reader):
    if i == 5:
        break
print("closed" if reader.close(10) else "still reading", flush=True)
"""


@pytest.mark.parametrize("kind", ["latest", "paced", "prefetch"])
def test_a_process_stopping_mid_stream_exits_with_its_own_code(kind: str, video_dir: Path) -> None:
    # (without close(), this process aborted at exit every time: -6, "terminate called without an
    # active exception"; the reading thread was decoding the next frame)
    proc = subprocess.run([sys.executable, "-c", CHILD, kind, str(video_dir / "street_1080p.mp4")],
                          capture_output=True, text=True, timeout=120)
    assert (proc.returncode, proc.stdout.strip()) == (0, "closed"), proc.stderr[-2000:]
    assert "terminate called" not in proc.stderr


def test_a_prefetcher_stopped_with_a_full_queue_ends_its_thread(video_dir: Path) -> None:
    """Its end mark would never be taken by the stopped consumer: the thread must not wait for ever."""
    stop = threading.Event()
    reader = Prefetcher(VideoFileSource(video_dir / "short_hamilton_clip.mp4"), size=2, stop=stop)
    frames = iter(reader)
    next(frames)
    time.sleep(0.5)  # the queue fills up behind the consumer
    t0 = time.monotonic()
    assert reader.close(5)
    assert time.monotonic() - t0 < 2


def test_close_before_iterating_is_harmless(video_dir: Path) -> None:
    for reader in (LatestFrameReader(VideoFileSource(video_dir / "short_hamilton_clip.mp4")),
                   Prefetcher(VideoFileSource(video_dir / "short_hamilton_clip.mp4"))):
        assert reader.close(1)
