"""The one gate every image passes before openlfr decodes or keeps it.

Shared watchlist images reach openlfr through the API, the console and the command line;
each calls :func:`gate_image` (through :func:`openlfr.governance.sharing.prepare_image`), so the
rules and the error text are the same everywhere:

1. **Format by content, not by name.** The first bytes must be JPEG's or PNG's signature; any
   other format (TIFF, GIF, WebP, EPS...) is refused before a decoder sees it.
2. **Size from the header, before decoding.** The width and height are read from the header
   (Pillow's ``open`` reads only that); more than ``max_pixels`` (default 25 megapixels,
   ``OPENLFR_MAX_IMAGE_PIXELS``) is refused. A 100 KB PNG claiming 30000x30000 costs
   nothing.
3. **A memory budget for decoding.** The bytes a decode will hold (pixels x bytes per pixel of
   the mode, twice for the conversion to RGB) are reserved from a process-wide budget
   (``OPENLFR_DECODE_BUDGET_BYTES``, default 512 MiB) before decoding, so many concurrent
   uploads wait their turn instead of exhausting memory; one image over the whole budget is
   refused.
4. **Re-encoded clean.** The decoded pixels (EXIF orientation applied) are written again as a
   plain JPEG (quality 95) or PNG, without metadata, trailers or anything else the file
   carried; only those bytes are stored.

Every refusal is an :class:`~openlfr.errors.ImageError` whose message starts with the label.
"""

from __future__ import annotations

import io
import threading
import time
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from openlfr.errors import ImageError, ImageTooLarge, UnsupportedImage

SIGNATURES = {"JPEG": (b"\xff\xd8\xff",), "PNG": (b"\x89PNG\r\n\x1a\n",)}
JPEG_QUALITY = 95
# bytes per pixel while decoding, by Pillow mode (unknown modes count as 8)
_MODE_BYTES = {"1": 1, "L": 1, "P": 1, "LA": 2, "I;16": 2, "RGB": 3, "YCbCr": 3, "RGBA": 4, "CMYK": 4,
               "I": 4, "F": 4, "RGBa": 4, "La": 2}


def sniff(data: bytes) -> str | None:
    """``"JPEG"`` or ``"PNG"`` from the first bytes, else None."""
    for fmt, sigs in SIGNATURES.items():
        if data.startswith(sigs):
            return fmt
    return None


class DecodeBudget:
    """Bytes of decoded pixels this process may hold at once; callers wait for their share."""

    def __init__(self, total: int) -> None:
        self.total = int(total)
        self.used = 0
        self._cond = threading.Condition()

    def acquire(self, nbytes: int, label: str, timeout: float = 30.0) -> None:
        """Reserve ``nbytes``; an ``ImageError`` when they can never fit or did not in ``timeout`` s."""
        if nbytes > self.total:
            raise ImageTooLarge(f"{label}: decoding it would need {nbytes / 2**20:.0f} MiB, over the "
                             f"{self.total / 2**20:.0f} MiB decoding budget")
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.used + nbytes > self.total:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ImageTooLarge(f"{label}: the server is decoding too many images at once; try again")
                self._cond.wait(left)
            self.used += nbytes

    def release(self, nbytes: int) -> None:
        with self._cond:
            self.used = max(0, self.used - nbytes)
            self._cond.notify_all()


_budget: DecodeBudget | None = None
_budget_lock = threading.Lock()


def budget() -> DecodeBudget:
    """The process-wide decoding budget (sized from the settings at first use)."""
    global _budget
    with _budget_lock:
        if _budget is None:
            from openlfr.config import get_settings

            _budget = DecodeBudget(get_settings().pipeline.decode_budget_bytes)
        return _budget


@dataclass(frozen=True)
class GatedImage:
    """An image that passed the gate: its clean bytes, their format and size."""

    data: bytes  # re-encoded, metadata-free JPEG or PNG: the only bytes openlfr keeps
    format: str  # "JPEG" or "PNG"
    width: int
    height: int


def decode(
    data: bytes,
    *,
    label: str = "image",
    max_pixels: int | None = None,
    formats: tuple[str, ...] | None = ("JPEG", "PNG"),
) -> tuple[np.ndarray, str]:
    """``(RGB pixels, format)`` of an image's bytes, after steps 1-3 of the module doc.

    ``formats=None`` accepts any format Pillow reads (for local data sets such as ORL's PGM
    files, named by the operator on the command line); the size and budget rules still apply.
    """
    from openlfr.config import get_settings

    max_pixels = max_pixels or get_settings().pipeline.max_image_pixels
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ImageError(f"{label}: expected the image's bytes")
    data = bytes(data)
    if not data:
        raise ImageError(f"{label}: empty file")
    fmt = sniff(data)
    if formats is not None and (fmt is None or fmt not in formats):
        raise UnsupportedImage(f"{label}: not a {' or '.join(formats)} image")
    limit = f"over the {max_pixels / 1e6:.0f}-megapixel limit"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            # the header only
            img = Image.open(io.BytesIO(data), formats=[fmt] if formats is not None and fmt is not None else None)
        except Image.DecompressionBombError:
            raise ImageTooLarge(f"{label}: the image header claims a size {limit}") from None
        except UnidentifiedImageError:
            raise ImageError(f"{label}: not an image (or an unsupported format)") from None
        except (OSError, SyntaxError, ValueError):
            raise ImageError(f"{label}: image is corrupt or truncated (not a valid {fmt or 'image'} file)") from None
        with img:
            w, h = img.size
            fmt = fmt or str(img.format)
            if w < 1 or h < 1:
                raise ImageError(f"{label}: image has no pixels ({w}x{h})")
            if w * h > max_pixels:
                raise ImageTooLarge(f"{label}: image is {w}x{h} ({w * h / 1e6:.1f} megapixels), {limit}")
            need = w * h * (_MODE_BYTES.get(img.mode, 8) + 3) * 2  # the decode, the RGB copy, headroom
            gate = budget()
            gate.acquire(need, label)
            try:
                img.load()  # decodes now, so truncation is caught here
                rgb = np.asarray(ImageOps.exif_transpose(img).convert("RGB"), dtype=np.uint8).copy()
            except Image.DecompressionBombError:
                raise ImageTooLarge(f"{label}: the image header claims a size {limit}") from None
            except (OSError, SyntaxError, ValueError) as exc:
                reason = str(exc).rstrip(".") or type(exc).__name__
                raise ImageError(f"{label}: image is corrupt or truncated ({reason})") from None
            finally:
                gate.release(need)
    return rgb, fmt


def gate_image(data: bytes, *, label: str = "image", max_pixels: int | None = None) -> GatedImage:
    """A JPEG or PNG checked, decoded within the budget and re-encoded clean (the module doc)."""
    rgb, fmt = decode(data, label=label, max_pixels=max_pixels)
    out = io.BytesIO()
    clean = Image.fromarray(rgb)
    if fmt == "JPEG":
        clean.save(out, "JPEG", quality=JPEG_QUALITY)
    else:
        clean.save(out, "PNG")
    return GatedImage(out.getvalue(), fmt, rgb.shape[1], rgb.shape[0])


__all__ = ["DecodeBudget", "GatedImage", "budget", "decode", "gate_image", "sniff"]
