"""Loading images safely: every way an image file can be bad ends in a one-line :class:`ImageError`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from openlfr.errors import ImageError

#: Larger files are refused before they are read (no photograph is anywhere near this).
MAX_FILE_BYTES = 256 * 1024 * 1024


def load_image(source: str | Path | bytes, *, max_pixels: int | None = None) -> np.ndarray:
    """Load an image file (or its bytes) as an ``(H, W, 3)`` RGB ``uint8`` array.

    Any format Pillow reads, through the size and memory rules of
    :func:`openlfr.face.image_gate.decode` (``max_pixels`` defaults to
    ``OPENLFR_MAX_IMAGE_PIXELS``). EXIF orientation is applied. Raises :class:`ImageError` if
    the file is missing, is not an image, is truncated or corrupt, or is too large.
    """
    from openlfr.face.image_gate import decode

    if isinstance(source, (bytes, bytearray, memoryview)):
        return decode(bytes(source), label="<bytes>", max_pixels=max_pixels, formats=None)[0]
    path = Path(source)
    if not path.exists():
        raise ImageError(f"{path}: no such file")
    if not path.is_file():
        raise ImageError(f"{path}: not a file")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise ImageError(f"{path}: {path.stat().st_size} bytes, over the {MAX_FILE_BYTES}-byte limit for an image")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImageError(f"{path}: cannot read it ({exc.strerror})") from None
    return decode(data, label=str(path), max_pixels=max_pixels, formats=None)[0]


def as_rgb(image: np.ndarray) -> np.ndarray:
    """Accept grey, RGB or RGBA ``uint8`` arrays and return a contiguous RGB array."""
    if image.dtype != np.uint8:
        raise ImageError(f"expected a uint8 image, got {image.dtype}")
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, :3]
    elif image.ndim != 3 or image.shape[2] != 3:
        raise ImageError(f"expected an (H, W, 3) RGB image, got shape {image.shape}")
    return np.ascontiguousarray(image)
