"""Aligned face chips cut exactly as ``dlib.get_face_chip(img, shape, size, padding)`` cuts them.

dlib fits a similarity transform from five reference points of a mean face (scaled into a
``size`` x ``size`` chip with ``padding``) to the landmarks; that gives a rotated square in
the image (``chip_details``: a centred rectangle and an angle). ``extract_image_chip`` then

1. crops the image to the rotated square's bounding box grown by a margin;
2. when the square holds many more pixels than the chip, builds an image pyramid of that
   crop with dlib's ``pyramid_down<2>`` (separable 1-4-6-4-1 filter, integer arithmetic) and
   samples the level just above the chip's resolution;
3. samples every chip pixel by bilinear interpolation in double precision, truncating to
   ``uint8``; samples whose 2x2 neighbourhood leaves the source are black.

This module reproduces each step with numpy, in dlib's order of floating-point operations.
Landmarks are ``(5, 2)`` (x, y) arrays in dlib's 5-point order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from openlfr.errors import InputError
from openlfr.face.types import CHIP_PADDING, CHIP_SIZE

# dlib's reference positions of its 5 landmarks in a unit face square (get_face_chip_details).
MEAN_FACE_5 = np.array(
    [
        [0.8595674595992, 0.2134981538014],
        [0.6460604764104, 0.2289674387677],
        [0.1205750620789, 0.2137274526848],
        [0.3340850613712, 0.2290642403242],
        [0.4901123135679, 0.6277975316475],
    ]
)


@dataclass(frozen=True)
class ChipDetails:
    """dlib's ``chip_details``: a rectangle of the image (double, inclusive corners), rotated
    by ``angle`` radians about its centre, to be resampled to ``rows`` x ``cols``."""

    left: float
    top: float
    right: float
    bottom: float
    angle: float
    rows: int
    cols: int

    @property
    def rect(self) -> tuple[float, float, float, float]:
        return (self.left, self.top, self.right, self.bottom)


# --------------------------------------------------------------------------- geometry


def _similarity(from_pts: np.ndarray, to_pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """dlib's ``find_similarity_transform`` (Umeyama, no reflection) as ``(m, b)``.

    In 2-D the least-squares rotation+scale has the closed form ``[[a, -b], [b, a]] / var``;
    it equals dlib's SVD-based solution up to rounding.
    """
    f = np.asarray(from_pts, dtype=np.float64)
    t = np.asarray(to_pts, dtype=np.float64)
    n = f.shape[0]
    mf, mt = f.mean(axis=0), t.mean(axis=0)
    fc, tc = f - mf, t - mt
    sigma = float((fc * fc).sum()) / n
    a = float((tc * fc).sum()) / n
    b = float((tc[:, 1] * fc[:, 0] - tc[:, 0] * fc[:, 1]).sum()) / n
    m = np.array([[a, -b], [b, a]]) / (sigma if sigma != 0 else 1.0)
    return m, mt - m @ mf


def _rect_area(l: float, t: float, r: float, b: float) -> float:
    """``drectangle::area()``: inclusive width times height, 0 when empty."""
    if t > b or l > r:
        return 0.0
    return (r - l + 1) * (b - t + 1)


def _rect_down(l: float, t: float, r: float, b: float) -> tuple[float, float, float, float]:
    """``pyramid_down<2>::rect_down``: each corner ``p / 2 - (1.25, 0.75)``."""
    return (l / 2.0 - 1.25, t / 2.0 - 0.75, r / 2.0 - 1.25, b / 2.0 - 0.75)


def _rotated_corners(l: float, t: float, r: float, b: float, angle: float) -> np.ndarray:
    """The tl, tr, bl, br corners rotated by ``angle`` about the centre (``rotate_point``)."""
    cx, cy = (l + r) / 2.0, (t + b) / 2.0
    s, c = math.sin(angle), math.cos(angle)
    out = []
    for x, y in ((l, t), (r, t), (l, b), (r, b)):
        px, py = x - cx, y - cy
        out.append((c * px - s * py + cx, s * px + c * py + cy))
    return np.array(out)


def _chip_to_source(corners: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """The 2x3 affine taking chip pixel (c, r) to the source; maps the chip's tl, tr, bl
    corners onto ``corners[0:3]`` (dlib's ``find_affine_transform`` of those 3 pairs)."""
    tl, tr, bl = corners[0], corners[1], corners[2]
    m = np.empty((2, 3))
    m[:, 0] = (tr - tl) / max(cols - 1, 1)
    m[:, 1] = (bl - tl) / max(rows - 1, 1)
    m[:, 2] = tl
    return m


def face_chip_details(
    landmarks: np.ndarray, size: int = CHIP_SIZE, padding: float = CHIP_PADDING
) -> ChipDetails:
    """dlib's ``get_face_chip_details`` for a 5-point shape."""
    pts = np.asarray(landmarks, dtype=np.float64)
    if pts.shape != (5, 2):
        raise InputError(f"face chips need (5, 2) landmarks, not shape {pts.shape}")
    if not np.isfinite(pts).all():
        raise InputError("landmarks must be finite numbers")
    if int(size) < 2 or padding < 0:
        raise InputError(f"bad chip size {size} or padding {padding}")
    size = int(size)
    # dlib: p = (padding + p) / (2 padding + 1), then p * size
    ref = (padding + MEAN_FACE_5) / (2 * padding + 1) * size
    m, b = _similarity(ref, pts)
    angle = math.atan2(m[1, 0], m[0, 0])
    scale = math.sqrt(m[0, 0] * m[0, 0] + m[1, 0] * m[1, 0])
    cx, cy = m @ np.array([size / 2.0, size / 2.0]) + b
    half = (size * scale - 1) / 2  # centered_drect(p, w, h): w-- then +-w/2
    return ChipDetails(cx - half, cy - half, cx + half, cy + half, angle, size, size)


def chip_transform(landmarks: np.ndarray, size: int = CHIP_SIZE, padding: float = CHIP_PADDING) -> np.ndarray:
    """The 2x3 affine ``A`` mapping chip pixel ``(c, r, 1)`` to image ``(x, y)`` coordinates.

    It is the geometry of :func:`face_chip` at full resolution (invert it with
    ``cv2.invertAffineTransform`` to map image points into the chip).
    """
    d = face_chip_details(landmarks, size, padding)
    corners = _rotated_corners(d.left, d.top, d.right, d.bottom, d.angle)
    return _chip_to_source(corners, d.rows, d.cols)


# --------------------------------------------------------------------------- pixels


def pyramid_down2(img: np.ndarray) -> np.ndarray:
    """dlib's ``pyramid_down<2>`` of an ``(H, W, C)`` uint8 image (5x5 Gaussian, halving).

    Output ``((H-3)//2, (W-3)//2, C)``; pixel ``(r, c)`` is the 1-4-6-4-1 weighted sum of
    rows ``2r..2r+4`` and columns ``2c..2c+4``, integer-divided by 256. Images of 8 or fewer
    rows or columns give an empty image, as in dlib.
    """
    h, w = img.shape[:2]
    if h <= 8 or w <= 8:
        return np.zeros((0, 0) + img.shape[2:], dtype=np.uint8)
    nc = (w - 3) // 2
    nr = (h - 3) // 2
    o = img.astype(np.uint16)  # sums stay below 16 * 16 * 255 = 65280: uint16 is enough
    e = 2 * nc
    tmp = o[:, 0:e:2] + 4 * o[:, 1 : e + 1 : 2] + 6 * o[:, 2 : e + 2 : 2]
    tmp += 4 * o[:, 3 : e + 3 : 2] + o[:, 4 : e + 4 : 2]
    e = 2 * nr
    out = tmp[0:e:2] + 4 * tmp[1 : e + 1 : 2] + 6 * tmp[2 : e + 2 : 2]
    out += 4 * tmp[3 : e + 3 : 2] + tmp[4 : e + 4 : 2]
    return (out >> 8).astype(np.uint8)


def _bilinear(src: np.ndarray, affine: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """dlib's ``transform_image`` with ``interpolate_bilinear`` and a black background."""
    channels = src.shape[2]
    sh, sw = src.shape[:2]
    if sh < 2 or sw < 2:
        return np.zeros((rows, cols, channels), dtype=np.uint8)
    c = np.arange(cols, dtype=np.float64)[None, :]
    r = np.arange(rows, dtype=np.float64)[:, None]
    # point_transform_affine: (m00*c + m01*r) + b0
    x = (affine[0, 0] * c + affine[0, 1] * r) + affine[0, 2]
    y = (affine[1, 0] * c + affine[1, 1] * r) + affine[1, 2]
    left = np.floor(x)
    top = np.floor(y)
    # a sample needs its whole 2x2 neighbourhood inside the source, else it is black
    ok = (left >= 0) & (top >= 0) & (left < sw - 1) & (top < sh - 1)
    every = bool(ok.all())
    if not every:
        np.clip(left, 0, sw - 2, out=left)
        np.clip(top, 0, sh - 2, out=top)
    lr = (x - left)[..., None]
    tb = (y - top)[..., None]
    base = (top.astype(np.intp) * sw + left.astype(np.intp)).reshape(-1)
    flat = src.reshape(-1, channels)
    shape = (rows, cols, channels)
    tl = np.take(flat, base, axis=0).reshape(shape).astype(np.float64)
    tr = np.take(flat, base + 1, axis=0).reshape(shape).astype(np.float64)
    bl = np.take(flat, base + sw, axis=0).reshape(shape).astype(np.float64)
    br = np.take(flat, base + (sw + 1), axis=0).reshape(shape).astype(np.float64)
    # dlib's expression, in its order:
    # (1-tb)*((1-lr)*tl + lr*tr) + tb*((1-lr)*bl + lr*br)
    ilr = 1 - lr
    tl *= ilr
    tr *= lr
    tl += tr
    bl *= ilr
    br *= lr
    bl += br
    tl *= 1 - tb
    bl *= tb
    tl += bl
    # assign_pixel(double -> uint8): clamp, then truncate toward zero
    np.clip(tl, 0, 255, out=tl)
    out = tl.astype(np.uint8)
    if not every:
        out[~ok] = 0
    return out


def _basic_chip(img: np.ndarray, d: ChipDetails) -> np.ndarray:
    """dlib's unscaled, unrotated copy of a (rounded) rectangle, zero outside the image."""
    l, t = math.floor(d.left + 0.5), math.floor(d.top + 0.5)
    h, w = img.shape[:2]
    out = np.zeros((d.rows, d.cols, img.shape[2]), dtype=np.uint8)
    y0, x0 = max(t, 0), max(l, 0)
    y1, x1 = min(t + d.rows, h), min(l + d.cols, w)
    if y1 > y0 and x1 > x0:
        out[y0 - t : y1 - t, x0 - l : x1 - l] = img[y0:y1, x0:x1]
    return out


def _is_plain_copy(d: ChipDetails) -> bool:
    """dlib copies (no scaling, no rotation) when the chip is the rectangle's own size."""
    return d.angle == 0 and d.rows == d.bottom - d.top + 1 and d.cols == d.right - d.left + 1


def extract_image_chips(img: np.ndarray, details: Sequence[ChipDetails]) -> list[np.ndarray]:
    """dlib's ``extract_image_chips``: bilinear sampling, through one shared image pyramid.

    dlib crops the image to the union of all the chips' (grown) rotated rectangles and builds
    a pyramid of that crop deep enough for the most downscaled chip; each chip then samples
    the level just above its own resolution. With several large faces the shared crop can
    differ from a single face's crop, and so can the pyramid's sampling grid.
    """
    h, w = img.shape[:2]
    # the crop: each chip's rotated rectangle grown by a margin that keeps the pyramid's
    # filter off its edge, intersected with the image in double and rounded to integers
    crop: tuple[int, int, int, int] | None = None
    for d in details:
        grow, rect = 2.0, _rect_down(*d.rect)
        while _rect_area(*rect) > d.rows * d.cols:
            rect = _rect_down(*rect)
            grow = grow * 2 + 2
        corners = _rotated_corners(*d.rect, d.angle)
        box = (
            math.floor(max(corners[:, 0].min() - grow, 0.0) + 0.5),
            math.floor(max(corners[:, 1].min() - grow, 0.0) + 0.5),
            math.floor(min(corners[:, 0].max() + grow, w - 1.0) + 0.5),
            math.floor(min(corners[:, 1].max() + grow, h - 1.0) + 0.5),
        )
        if box[0] > box[2] or box[1] > box[3]:
            continue  # wholly outside the image
        if crop is None:
            crop = box
        else:
            crop = (min(crop[0], box[0]), min(crop[1], box[1]), max(crop[2], box[2]), max(crop[3], box[3]))

    levels: list[np.ndarray] = []
    if crop is not None:
        levels.append(img[crop[1] : crop[3] + 1, crop[0] : crop[2] + 1])
    chips = []
    for d in details:
        if _is_plain_copy(d):
            chips.append(_basic_chip(img, d))
            continue
        if crop is None:
            chips.append(np.zeros((d.rows, d.cols, img.shape[2]), dtype=np.uint8))
            continue
        level = 0  # 0: the crop itself, k: its k-th pyramid level
        rect = (d.left - crop[0], d.top - crop[1], d.right - crop[0], d.bottom - crop[1])
        while _rect_area(*_rect_down(*rect)) > d.rows * d.cols:
            level += 1
            rect = _rect_down(*rect)
        while len(levels) <= level:
            levels.append(pyramid_down2(levels[-1]))
        affine = _chip_to_source(_rotated_corners(*rect, d.angle), d.rows, d.cols)
        chips.append(_bilinear(levels[level], affine, d.rows, d.cols))
    return chips


def extract_image_chip(img: np.ndarray, d: ChipDetails) -> np.ndarray:
    """dlib's ``extract_image_chip`` (bilinear, with its pyramid for large downscaling)."""
    if _is_plain_copy(d):
        return _basic_chip(img, d)
    return extract_image_chips(img, [d])[0]


def _as_rgb(image: np.ndarray) -> np.ndarray:
    img = np.asarray(image)
    if img.dtype != np.uint8:
        raise InputError(f"images must be uint8, not {img.dtype}")
    if img.ndim == 2:
        return np.repeat(img[:, :, None], 3, axis=2)
    if img.ndim != 3 or img.shape[2] != 3 or img.shape[0] == 0 or img.shape[1] == 0:
        raise InputError(f"images must be RGB (H, W, 3) or grey (H, W), not shape {img.shape}")
    return img


def face_chip(
    image: np.ndarray, landmarks: np.ndarray, size: int = CHIP_SIZE, padding: float = CHIP_PADDING
) -> np.ndarray:
    """The aligned ``(size, size, 3)`` uint8 face chip, as ``dlib.get_face_chip`` makes it.

    ``image`` is RGB ``(H, W, 3)`` uint8 (a grey ``(H, W)`` image is repeated to 3 channels);
    ``landmarks`` are dlib's 5 points. Parts of the chip outside the image are black.
    """
    img = _as_rgb(image)
    return extract_image_chip(img, face_chip_details(landmarks, size, padding))


def face_chips(
    image: np.ndarray,
    landmarks: Sequence[np.ndarray],
    size: int = CHIP_SIZE,
    padding: float = CHIP_PADDING,
    *,
    shared_pyramid: bool = False,
) -> np.ndarray:
    """``(N, size, size, 3)`` chips of several faces in one image.

    By default each chip is cut on its own, exactly as :func:`face_chip` (and
    ``dlib.get_face_chip``) cuts it. ``shared_pyramid=True`` reproduces dlib's batched
    ``get_face_chips`` and ``compute_face_descriptor(img, faces)`` instead, which share one
    pyramid between the faces: for large faces their chips can differ by a few grey levels.
    """
    img = _as_rgb(image)
    details = [face_chip_details(pts, size, padding) for pts in landmarks]
    out = np.zeros((len(details), int(size), int(size), 3), dtype=np.uint8)
    if shared_pyramid:
        for i, chip in enumerate(extract_image_chips(img, details)):
            out[i] = chip
    else:
        for i, d in enumerate(details):
            out[i] = extract_image_chip(img, d)
    return out
