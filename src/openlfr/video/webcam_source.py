"""Frames of a local camera device (``/dev/videoN`` or its index), reopened if it drops."""

from __future__ import annotations

import re
from pathlib import Path

import cv2

from openlfr.errors import InputError
from openlfr.video.stream_source import StreamSource


def device_index(device: str | int) -> int:
    """The V4L2 index of ``0``, ``"0"``, ``"/dev/video0"`` or ``"webcam:0"``."""
    if isinstance(device, int):
        return device
    match = re.fullmatch(r"(?:webcam:|/dev/video)?(\d+)", device.strip())
    if not match:
        raise InputError(f"{device!r} is not a camera device (use an index or /dev/videoN)")
    return int(match.group(1))


class WebcamSource(StreamSource):
    """A :class:`StreamSource` reading a local device through OpenCV's V4L2 backend."""

    def __init__(self, device: str | int = 0, **kwargs: object) -> None:
        index = device_index(device)
        if not Path(f"/dev/video{index}").exists():
            raise InputError(f"no camera device /dev/video{index} on this machine")
        super().__init__(index, **kwargs)  # type: ignore[arg-type]

    def _open(self) -> cv2.VideoCapture | None:
        cap = cv2.VideoCapture(int(self.url), cv2.CAP_V4L2)
        if cap.isOpened():
            return cap
        cap.release()
        return None
