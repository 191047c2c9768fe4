"""Loading images safely: every way an image file can be bad ends in a one-line :class:`ImageError`."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from openlfr.errors import ImageError

#: Refuse images above this many pixels before decoding them (decompression bombs, huge scans).
MAX_PIXELS = 50_000_000


def _decode(opener: io.BytesIO | Path, label: str, max_pixels: int) -> np.ndarray:
    with warnings.catch_warnings():
        # PIL warns (then errors) on large images itself; we check the size ourselves first.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with Image.open(opener) as img:
                w, h = img.size
                if w * h > max_pixels:
                    raise ImageError(
                        f"{label}: image is {w}x{h} ({w * h / 1e6:.1f} megapixels), over the "
                        f"{max_pixels / 1e6:.0f}-megapixel limit"
                    )
                img.load()  # decodes now, so truncation is caught here
                img = ImageOps.exif_transpose(img)
                return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()
        except ImageError:
            raise
        except UnidentifiedImageError as exc:
            raise ImageError(f"{label}: not an image (or an unsupported format)") from exc
        except Image.DecompressionBombError as exc:
            raise ImageError(f"{label}: image is too large to decode safely") from exc
        except (OSError, SyntaxError, ValueError) as exc:
            reason = str(exc).rstrip(".") or type(exc).__name__
            raise ImageError(f"{label}: image is corrupt or truncated ({reason})") from exc


def load_image(source: str | Path | bytes, *, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Load an image file (or its bytes) as an ``(H, W, 3)`` RGB ``uint8`` array.

    EXIF orientation is applied. Raises :class:`ImageError` if the file is missing, is not
    an image, is truncated or corrupt, or has more than ``max_pixels`` pixels.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if not data:
            raise ImageError("<bytes>: empty file")
        return _decode(io.BytesIO(data), "<bytes>", max_pixels)
    path = Path(source)
    if not path.exists():
        raise ImageError(f"{path}: no such file")
    if not path.is_file():
        raise ImageError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise ImageError(f"{path}: empty file")
    return _decode(path, str(path), max_pixels)


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
