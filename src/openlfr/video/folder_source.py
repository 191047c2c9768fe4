"""A folder of still images played as a video (sorted by name, ``fps`` images a second)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from openlfr.errors import ImageError, InputError
from openlfr.face.image import load_image
from openlfr.video.frames import Frame

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".pgm", ".ppm", ".tif", ".tiff"}


class FolderSource:
    """Frames from the images in a folder; unreadable files are skipped (and counted)."""

    def __init__(self, path: str | Path, fps: float = 1.0, start_frame: int = 0) -> None:
        self.path = Path(path)
        if not self.path.is_dir():
            raise InputError(f"{self.path}: no such folder")
        if fps <= 0:
            raise InputError("fps must be positive")
        self.fps = fps
        self.start_frame = max(0, int(start_frame))
        self.files = sorted(p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise InputError(f"{self.path}: no images in the folder")
        self.skipped = 0

    def __iter__(self) -> Iterator[Frame]:
        for index, file in enumerate(self.files):
            if index < self.start_frame:
                continue
            try:
                image = load_image(file)
            except ImageError:
                self.skipped += 1
                continue
            yield Frame(image, index, index / self.fps)
