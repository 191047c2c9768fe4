"""Frames of a network stream (RTSP, HTTP, anything FFmpeg opens), reopened with backoff.

A camera stream drops: the network fails, the camera reboots, the server restarts. The
source then waits (exponential backoff with a cap), reopens it, and reports the outage as
a :class:`Gap` (when it started, when frames came back, how many attempts it took), so
the pipeline can record per camera when it was blind.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # FFmpeg's own warnings: we report errors ourselves
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")  # each failed reopen would print a warning
# RTSP over TCP: no lost UDP packets (smeared frames) and it passes firewalls/NAT. FFmpeg may
# use only the protocols camera streams need (openlfr.governance.camera_sources), so a stream
# or playlist cannot lead it to other protocols (concat:, subfile:, data:, ftp:...).
os.environ.setdefault("OPENCV_FFMPEG_CAPTURE_OPTIONS",
                      "rtsp_transport;tcp|protocol_whitelist;file,rtp,udp,tcp,tls,rtsp,rtsps,http,https,crypto,httpproxy")
import cv2  # noqa: E402

from openlfr.video.frames import Frame  # noqa: E402
from openlfr.video.schedule import FrameSchedule  # noqa: E402


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Backoff:
    """Wait ``initial`` s before the first reopen, doubling up to ``maximum`` s."""

    initial: float = 0.5
    factor: float = 2.0
    maximum: float = 10.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait before reopen attempt ``attempt`` (1-based)."""
        return min(self.maximum, self.initial * self.factor ** max(0, attempt - 1))


@dataclass
class Gap:
    """A time the source delivered no frames: from the drop to the first new frame."""

    started_at: datetime
    ended_at: datetime | None
    attempts: int
    reason: str

    @property
    def seconds(self) -> float | None:
        return None if self.ended_at is None else (self.ended_at - self.started_at).total_seconds()


class StreamSource:
    """Timestamped frames of a live stream, reopened after drops.

    ``sample_fps`` keeps that many frames per second on average (by arrival time, since a
    stream's own timestamps cannot be trusted across reconnects). ``on_gap`` is called with
    each closed :class:`Gap`; ``stop`` ends iteration (also while waiting to reconnect);
    ``max_attempts`` gives up after that many failed reopens in a row (``None``: never).
    """

    def __init__(
        self,
        url: str | int,
        sample_fps: float | None = None,
        *,
        backoff: Backoff = Backoff(),
        open_timeout_s: float = 10.0,
        read_timeout_s: float = 5.0,
        on_gap: Callable[[Gap], None] | None = None,
        clock: Callable[[], datetime] = _utc_now,
        stop: threading.Event | None = None,
        max_attempts: int | None = None,
    ) -> None:
        self.url = url
        self.sample_fps = sample_fps
        self.backoff = backoff
        self.open_timeout_s = open_timeout_s
        self.read_timeout_s = read_timeout_s
        self.on_gap = on_gap
        self.clock = clock
        self.stop = stop or threading.Event()
        self.max_attempts = max_attempts
        self.gaps: list[Gap] = []
        self.open_gap: Gap | None = None

    def _open(self) -> cv2.VideoCapture | None:
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(self.open_timeout_s * 1000),
                  cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(self.read_timeout_s * 1000)]
        cap = cv2.VideoCapture(self.url, cv2.CAP_FFMPEG, params)
        if cap.isOpened():
            return cap
        cap.release()
        return None

    def _reopen(self, reason: str) -> cv2.VideoCapture | None:
        """Reopen with backoff; ``None`` when stopped or out of attempts."""
        self.open_gap = self.open_gap or Gap(self.clock(), None, 0, reason)
        attempt = 0
        while not self.stop.is_set():
            attempt += 1
            self.open_gap.attempts = attempt
            if self.stop.wait(self.backoff.delay(attempt)):
                return None
            cap = self._open()
            if cap is not None:
                return cap
            if self.max_attempts is not None and attempt >= self.max_attempts:
                return None
        return None

    def _close_gap(self) -> None:
        if self.open_gap is None:
            return
        self.open_gap.ended_at = self.clock()
        gap, self.open_gap = self.open_gap, None
        self.gaps.append(gap)
        if self.on_gap is not None:
            self.on_gap(gap)

    def __iter__(self) -> Iterator[Frame]:
        start = time.perf_counter()
        schedule = FrameSchedule(self.sample_fps)  # the pipeline's schedule, by arrival time
        index = 0
        cap = self._open()
        if cap is None:
            cap = self._reopen("could not open the stream")
        try:
            while cap is not None and not self.stop.is_set():
                ok = cap.grab()
                if not ok:
                    cap.release()
                    cap = self._reopen("the stream stopped delivering frames")
                    continue
                now = time.perf_counter()
                wall = self.clock()
                self._close_gap()
                index += 1
                if not schedule.due(now - start):
                    continue
                ok, bgr = cap.retrieve()
                if not ok or bgr is None:
                    continue
                yield Frame(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), index - 1, now - start, wall=wall, captured=now)
        finally:
            if cap is not None:
                cap.release()
