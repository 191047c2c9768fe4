"""Reading a video file frame by frame, optionally sampled to fewer frames per second."""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from pathlib import Path

os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # FFmpeg's own warnings: we report errors ourselves
import cv2  # noqa: E402

from openlfr.errors import InputError
from openlfr.video.frames import Frame
from openlfr.video.schedule import FrameSchedule


class VideoFileSource:
    """Frames of a video file (anything FFmpeg decodes), with their time in the video.

    ``sample_fps`` keeps that many frames per second of video on average (all when ``None``;
    :class:`~openlfr.video.schedule.FrameSchedule`, as the pipeline analyses them);
    ``start_frame`` skips the frames before it (to resume where a crashed run stopped).
    ``loop`` starts the file again at its end, for ever: frame indices and times keep growing
    (pass ``k`` of a file of ``n`` frames has indices ``k*n ... k*n+n-1``), so a checkpoint's
    ``start_frame`` resumes in the right pass and times stay monotonic for the tracker.
    """

    def __init__(self, path: str | Path, sample_fps: float | None = None, start_frame: int = 0,
                 loop: bool = False) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(f"{self.path}: no such video file")
        cap = cv2.VideoCapture(str(self.path))
        ok = cap.isOpened()
        self.fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0) if ok else 0.0
        self.frame_count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0) if ok else 0
        self.width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0) if ok else 0
        self.height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0) if ok else 0
        readable = ok and cap.read()[0]
        cap.release()
        if not readable or self.fps <= 0 or self.width <= 0:
            raise InputError(f"{self.path}: not a readable video")
        if self.frame_count <= 1:
            raise InputError(f"{self.path}: not a video (a single still image?)")
        self.sample_fps = sample_fps
        self.start_frame = max(0, int(start_frame))
        self.loop = loop

    @property
    def duration(self) -> float:
        return self.frame_count / self.fps if self.fps else 0.0

    def __iter__(self) -> Iterator[Frame]:
        # the pipeline's own schedule, with half a frame's tolerance: it analyses every frame kept here
        schedule = FrameSchedule(self.sample_fps, 0.5 / self.fps)
        # a looping source resumes in the pass its checkpoint was in
        offset = (self.start_frame // self.frame_count) * self.frame_count if self.loop else 0
        while True:
            index = yield from self._one_pass(schedule, offset)
            if not self.loop or index == offset:  # (a file that yields nothing more: stop, not spin)
                return
            offset = index

    def _one_pass(self, schedule: FrameSchedule, offset: int) -> Generator[Frame, None, int]:
        """The file once, its frames numbered from ``offset``; returns the next index."""
        cap = cv2.VideoCapture(str(self.path))
        index = offset
        try:
            while True:
                if index < self.start_frame or not schedule.due(index / self.fps):
                    # grab() skips decoding work for frames we will not use
                    if not cap.grab():
                        break
                    index += 1
                    continue
                ok, bgr = cap.read()
                if not ok:
                    break
                yield Frame(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), index, index / self.fps)
                index += 1
        finally:
            cap.release()
        return index
