"""Play a recorded source as if it were a live camera: frames arrive at their own time.

A live camera does not wait for a slow consumer: frames that arrive while the pipeline is
busy are lost. :class:`PacedSource` reproduces that with a file, so speed and alert
latency measured on a recording mean what they would on a camera.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta

from openlfr.video.frames import Frame


class PacedSource:
    """Frames of ``source`` released at ``speed`` x real time; late frames dropped.

    Each frame's ``captured`` is the moment it *would* have arrived from a camera and
    ``wall`` is ``start_wall`` plus its video time, so latency includes any wait it had.
    """

    def __init__(self, source: Iterable[Frame], speed: float = 1.0, drop_late: bool = True,
                 start_wall: datetime | None = None) -> None:
        self.source = source
        self.speed = speed
        self.drop_late = drop_late
        self.start_wall = start_wall
        self.dropped = 0

    def __iter__(self) -> Iterator[Frame]:
        frames = iter(self.source)
        frame = next(frames, None)
        if frame is None:
            return
        t0, v0 = time.perf_counter(), frame.time

        def due(f: Frame) -> float:
            return t0 + (f.time - v0) / self.speed

        while frame is not None:
            now = time.perf_counter()
            if due(frame) > now:
                time.sleep(due(frame) - now)
            elif self.drop_late:
                # The consumer was busy: keep only the newest frame that has already arrived.
                newer = next(frames, None)
                while newer is not None and due(newer) <= now:
                    self.dropped += 1
                    frame, newer = newer, next(frames, None)
                yield self._stamp(frame, due(frame), v0)
                frame = newer
                continue
            yield self._stamp(frame, due(frame), v0)
            frame = next(frames, None)

    def _stamp(self, frame: Frame, due: float, v0: float) -> Frame:
        frame.captured = due
        if self.start_wall is not None:
            frame.wall = self.start_wall + timedelta(seconds=frame.time - v0)
        return frame
