"""Open a camera's source from its address: a file, a folder, a device or a network stream."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from openlfr.errors import InputError
from openlfr.video.frames import Frame
from openlfr.video.stream_source import Backoff, Gap, StreamSource

NETWORK_SCHEMES = ("rtsp://", "rtsps://", "rtmp://", "http://", "https://", "udp://", "tcp://", "srt://")


def source_kind(address: str) -> str:
    """``stream``, ``webcam``, ``folder`` or ``file`` for a camera address."""
    low = address.strip().lower()
    if low.startswith(NETWORK_SCHEMES):
        return "stream"
    if low.startswith(("webcam:", "/dev/video")) or low.isdigit():
        return "webcam"
    path = Path(address).expanduser()
    if path.is_dir():
        return "folder"
    if path.is_file():
        return "file"
    raise InputError(f"camera source {address!r} is neither a stream URL, a device, a folder nor a file")


def open_source(
    address: str,
    sample_fps: float | None = None,
    *,
    start_frame: int = 0,
    on_gap: Callable[[Gap], None] | None = None,
    stop: threading.Event | None = None,
    backoff: Backoff = Backoff(),
    loop: bool = False,
) -> tuple[str, Iterable[Frame]]:
    """(kind, frames) for ``address``; ``start_frame`` applies to files and folders only,
    ``loop`` (start again at the end) to files only."""
    kind = source_kind(address)
    if kind == "stream":
        return kind, StreamSource(address, sample_fps, on_gap=on_gap, stop=stop, backoff=backoff)
    if kind == "webcam":
        from openlfr.video.webcam_source import WebcamSource

        return kind, WebcamSource(address, sample_fps=sample_fps, on_gap=on_gap, stop=stop, backoff=backoff)
    if kind == "folder":
        from openlfr.video.folder_source import FolderSource

        return kind, FolderSource(address, fps=sample_fps or 1.0, start_frame=start_frame)
    from openlfr.video.file_source import VideoFileSource

    return kind, VideoFileSource(address, sample_fps=sample_fps, start_frame=start_frame, loop=loop)
