"""dlib's MMOD CNN face detector (``mmod_human_face_detector.dat``) without dlib at run time.

The steps reproduce ``dlib.cnn_face_detection_model_v1(path)(img, upsample_num_times)``:

1. *(optional)* upsample the RGB image ``upsample`` times with ``pyramid_up`` /
   ``pyramid_down<2>`` geometry (bilinear, dlib's output size);
2. lay the image and its ``pyramid_down<6>`` levels out in one tiled image
   (``input_rgb_image_pyramid``: 10 px between tiles, 11 px around them, levels down to 5
   rows), the first level mean-subtracted and divided by 256, each next level a bilinear
   (corner-aligned) resize of the previous one, computed in float as dlib 19.x+ does;
3. run the network (:mod:`openlfr.face.nets.mmod`) on ONNX Runtime (CPU) or PyTorch (GPU);
4. turn every output above ``threshold`` into a rectangle (``loss_mmod_::to_label``): the
   output position mapped back through the convolutions to the tiled image, a detector
   window centred there, mapped to the original image through the tile it falls in, then
   rounded to integers;
5. greedy non-max suppression with the model's ``test_box_overlap`` settings
   (IoU over the *bounding box* of the pair, or percent covered), best score first.

``backend="dlib"`` runs dlib itself, the reference the others are tested against.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from openlfr.errors import InputError
from openlfr.face.image import as_rgb
from openlfr.face.types import Box, Detection

# input_rgb_image_pyramid<pyramid_down<6>> as stored in the model (version 1 of the layer,
# whose paddings dlib fixes at 10 and 11).
PYRAMID_N = 6
PYRAMID_PADDING = 10
PYRAMID_OUTER_PADDING = 11
MIN_LEVEL_HEIGHT = 5  # compute_tiled_image_pyramid_details stops below 5 rows
DEFAULT_MEANS = (122.782, 117.001, 104.298)
DLIB_MIN_SIDE = 12  # dlib's own detector fails on smaller images (checked: 8 px fails, 12 works)

BACKENDS = ("cpu", "cuda", "dlib", "auto")


# ----------------------------------------------------------------------------- pyramid


@dataclass(frozen=True)
class PyramidLayout:
    """Where each pyramid level lies in the tiled image.

    ``rects`` is ``(L, 4)`` int64 ``left, top, right, bottom`` (inclusive), level 0 first.
    """

    rects: np.ndarray
    height: int
    width: int


def _down_size(nr: int, nc: int, n: int) -> tuple[int, int]:
    # find_pyramid_down_output_image_size: floor(rate * size) in double precision.
    rate = (n - 1.0) / n
    return math.floor(rate * nr), math.floor(rate * nc)


def _intersects(a: Sequence[int], b: Sequence[int]) -> bool:
    return max(a[0], b[0]) <= min(a[2], b[2]) and max(a[1], b[1]) <= min(a[3], b[3])


@lru_cache(maxsize=64)
def pyramid_layout(
    nr: int,
    nc: int,
    n: int = PYRAMID_N,
    padding: int = PYRAMID_PADDING,
    outer_padding: int = PYRAMID_OUTER_PADDING,
) -> PyramidLayout:
    """dlib's ``compute_tiled_image_pyramid_details`` for an ``nr`` x ``nc`` image.

    Levels go down one column (largest first) until the rest fit beside it; those are then
    stacked bottom-up in a second column at the right, dropping any that would overlap
    level 0.
    """
    if nr * nc == 0:
        return PyramidLayout(np.zeros((0, 4), np.int64), 0, 0)
    sizes = [(nr, nc)]  # (height, width) per level
    r, c = nr, nc
    while True:
        r, c = _down_size(r, c, n)
        if r * c == 0 or r < MIN_LEVEL_HEIGHT:
            break
        sizes.append((r, c))

    total_height = sum(h + padding for h, _ in sizes) - 2 * padding
    h0, w0 = sizes[0]
    height = 0
    prev_width = 0
    for h, w in sizes:
        # stop the first column once the next level fits beside the previous one and the
        # column is at least half the total height
        if w <= w0 - prev_width - padding and (height - h0) * 2 >= (total_height - h0):
            break
        height += h + padding
        prev_width = w
    height -= padding
    out_nr = height + 2 * outer_padding
    out_nc = w0 + 2 * outer_padding

    rects: list[tuple[int, int, int, int]] = []
    y = outer_padding
    i = 0
    while y < height + outer_padding and i < len(sizes):
        h, w = sizes[i]
        rects.append((outer_padding, y, outer_padding + w - 1, y + h - 1))
        y += h + padding
        i += 1
    y -= padding
    while i < len(sizes):
        h, w = sizes[i]
        right, bottom = outer_padding + w0 - 1, y - 1
        rect = (right - (w - 1), bottom - (h - 1), right, bottom)
        if _intersects(rects[0], rect):
            break
        rects.append(rect)
        y -= h + padding
        i += 1
    return PyramidLayout(np.asarray(rects, dtype=np.int64), out_nr, out_nc)


def _interp_axis(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Corner-aligned bilinear sample positions: (lower index, upper index, fraction)."""
    scale = (n_in - 1) / float(max(n_out - 1, 1))
    pos = np.arange(n_out, dtype=np.float64) * scale
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, n_in - 1)
    frac = (pos - lo).astype(np.float32)
    return lo, hi, frac


def resize_bilinear(src: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Resize ``(C, h, w)`` float32 planes the way dlib's ``resize_image`` does (bilinear,
    ``scale = (in - 1) / (out - 1)``, the first and last pixels aligned).

    Rows are blended first, then columns; both passes gather whole rows (the second on a
    transposed copy), which is several times faster in numpy than gathering columns.
    """
    _, h, w = src.shape
    x0, x1, fx = _interp_axis(w, out_w)
    y0, y1, fy = _interp_axis(h, out_h)
    rows = np.take(src, y0, axis=1)
    below = np.take(src, y1, axis=1)
    below -= rows
    below *= fy[None, :, None]
    rows += below  # (C, out_h, w)
    cols = np.ascontiguousarray(rows.transpose(0, 2, 1))  # (C, w, out_h)
    left = np.take(cols, x0, axis=1)
    right = np.take(cols, x1, axis=1)
    right -= left
    right *= fx[None, :, None]
    left += right
    return left.transpose(0, 2, 1)  # (C, out_h, out_w), a view


def tiled_pyramid(
    image: np.ndarray,
    layout: PyramidLayout | None = None,
    means: Sequence[float] = DEFAULT_MEANS,
) -> tuple[np.ndarray, PyramidLayout]:
    """The network input for one RGB ``uint8`` image: ``(3, NR, NC)`` float32 and its layout.

    Padding between tiles is 0 in the normalised space (the mean colour), as in dlib.
    """
    h, w = image.shape[:2]
    if layout is None:
        layout = pyramid_layout(h, w)
    out = np.zeros((3, layout.height, layout.width), dtype=np.float32)
    if len(layout.rects) == 0:
        return out, layout
    l, t, r, b = layout.rects[0]
    level = out[:, t : b + 1, l : r + 1]
    level[...] = image.transpose(2, 0, 1)
    # (pixel - mean) / 256 in float32, as dlib computes it (dividing by 256 is exact)
    level -= np.asarray(means, dtype=np.float32)[:, None, None]
    level *= np.float32(1.0 / 256.0)
    for (pl, pt, pr, pb), (l, t, r, b) in zip(layout.rects[:-1], layout.rects[1:]):
        # each level is resized from the previous one, read back from the tiled image
        prev = out[:, pt : pb + 1, pl : pr + 1]
        out[:, t : b + 1, l : r + 1] = resize_bilinear(prev, int(b - t + 1), int(r - l + 1))
    return out, layout


def upsample_image(image: np.ndarray, times: int) -> np.ndarray:
    """``pyramid_up(img, pyramid_down<2>)`` applied ``times`` times (RGB ``uint8``).

    dlib sizes the output from ``pyramid_down<2>::rect_up`` of the image rectangle and fills
    it with a corner-aligned bilinear resize, rounded back to ``uint8``.
    """
    for _ in range(times):
        h, w = image.shape[:2]
        # rect_up: p -> (p + (1.25, 0.75)) * 2 for both corners, then rounded.
        right = math.floor((w - 1 + 1.25) * 2 + 0.5)
        bottom = math.floor((h - 1 + 0.75) * 2 + 0.5)
        planes = np.moveaxis(image, 2, 0).astype(np.float32)
        up = resize_bilinear(planes, bottom + 1, right + 1)
        image = np.ascontiguousarray(np.moveaxis(np.clip(np.floor(up + 0.5), 0, 255).astype(np.uint8), 0, 2))
    return image


def _round(values: np.ndarray) -> np.ndarray:
    """dlib's ``drectangle`` -> ``rectangle`` rounding: to nearest, halves away from zero
    (``std::round``; detections at the image edge have negative half-integer sides)."""
    return (np.sign(values) * np.floor(np.abs(values) + 0.5)).astype(np.int64)


def _rect_down_2(rects: np.ndarray, times: int) -> np.ndarray:
    """``pyramid_down<2>::rect_down`` applied ``times`` times: p -> p / 2 - (1.25, 0.75)."""
    out = rects.astype(np.float64)
    for _ in range(times):
        out[:, 0::2] = out[:, 0::2] / 2.0 - 1.25
        out[:, 1::2] = out[:, 1::2] / 2.0 - 0.75
    return _round(out)


# ----------------------------------------------------------------------------- decoding


@dataclass(frozen=True)
class MMODDecoding:
    """What turning the network output into boxes needs (from the model file).

    ``windows`` are the detector windows ``(width, height)``, one per output channel;
    an output position ``p`` maps to ``p * stride + offset`` in the tiled input.
    """

    windows: tuple[tuple[float, float], ...]
    stride: float
    offset: float
    iou_thresh: float
    covered_thresh: float
    pyramid_n: int = PYRAMID_N


def _nearest_level(cx: np.ndarray, cy: np.ndarray, rects: np.ndarray) -> np.ndarray:
    """dlib's ``nearest_rect`` for many (integer) points: the first tile containing the
    point, else the first nearest tile."""
    l, t, r, b = (rects[:, i][None, :] for i in range(4))
    x = cx[:, None]
    y = cy[:, None]
    inside = (x >= l) & (x <= r) & (y >= t) & (y <= b)
    dx = np.clip(x, l, r) - x
    dy = np.clip(y, t, b) - y
    dist = np.sqrt(dx * dx + dy * dy)
    nearest = np.argmin(dist, axis=1)
    first_inside = np.argmax(inside, axis=1)
    return np.where(inside.any(axis=1), first_inside, nearest)


def decode_output(
    scores: np.ndarray,
    layout: PyramidLayout,
    decoding: MMODDecoding,
    threshold: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (``(N, 4)`` int64 ``l, t, r, b`` in the image) and scores above ``threshold``,
    best first, before non-max suppression. ``scores`` is one image's ``(K, Ho, Wo)`` output."""
    k, rr, cc = np.nonzero(scores > threshold)
    return decode_candidates(k, rr, cc, scores[k, rr, cc], layout, decoding)


def decode_candidates(
    k: np.ndarray,
    rr: np.ndarray,
    cc: np.ndarray,
    conf: np.ndarray,
    layout: PyramidLayout,
    decoding: MMODDecoding,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`decode_output` from the output positions already above the threshold:
    channel ``k``, row ``rr``, column ``cc`` and score ``conf`` (float32, as in the map),
    listed in the map's row-major order (as ``np.nonzero`` gives them: equal scores keep
    that order, so the boxes and their order are those of :func:`decode_output`)."""
    k, rr, cc = (np.asarray(v, dtype=np.int64) for v in (k, rr, cc))
    conf = np.asarray(conf).astype(np.float64)
    if conf.size == 0 or len(layout.rects) == 0:
        return np.zeros((0, 4), np.int64), np.zeros((0,), np.float64)
    order = np.argsort(-conf, kind="stable")
    k, rr, cc, conf = k[order], rr[order], cc[order], conf[order]

    px = cc * decoding.stride + decoding.offset
    py = rr * decoding.stride + decoding.offset
    win = np.asarray(decoding.windows, dtype=np.float64)[k]
    hw = (win[:, 0] - 1) / 2.0  # centered_drect: width-1 between the edges
    hh = (win[:, 1] - 1) / 2.0
    box = np.stack([px - hw, py - hh, px + hw, py + hh], axis=1).astype(np.float64)

    # tensor_space_to_image_space: the tile nearest the (rounded) centre, then point_up.
    cx = _round((box[:, 0] + box[:, 2]) / 2.0)
    cy = _round((box[:, 1] + box[:, 3]) / 2.0)
    level = _nearest_level(cx, cy, layout.rects)
    origin = layout.rects[level][:, :2].astype(np.float64)
    box[:, 0::2] -= origin[:, :1]
    box[:, 1::2] -= origin[:, 1:2]
    ratio = decoding.pyramid_n / (decoding.pyramid_n - 1.0)
    top = int(level.max(initial=0))
    if top:
        # point_up once per level below the box's: with the boxes sorted by level, highest
        # first, the ones still to map up at step i are a leading slice (no masks)
        order = np.argsort(-level, kind="stable")
        up = box[order]
        still = np.count_nonzero(level[None, :] > np.arange(top)[:, None], axis=1)
        for n in still:
            up[:n] = up[:n] * ratio + 0.3
        box[order] = up
    return _round(box), conf


def nms(boxes: np.ndarray, iou_thresh: float, covered_thresh: float) -> list[int]:
    """Greedy suppression in the given (best-first) order with dlib's ``test_box_overlap``:
    a box is dropped if, against any kept one, intersection / area of the pair's bounding
    box exceeds ``iou_thresh`` or intersection / either box's area exceeds ``covered_thresh``.

    The test is symmetric in the pair, so each newly kept box marks all later boxes it
    overlaps at once (one vectorised pass per *kept* box, not per candidate).
    """
    keep: list[int] = []
    n = len(boxes)
    if n == 0:
        return keep
    b = boxes.astype(np.float64)
    area = (b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1)
    dropped = np.zeros(n, dtype=bool)
    for i in range(n):
        if dropped[i]:
            continue
        keep.append(i)
        rest = b[i + 1 :]
        if len(rest) == 0:
            break
        iw = np.minimum(rest[:, 2], b[i, 2]) - np.maximum(rest[:, 0], b[i, 0]) + 1
        ih = np.minimum(rest[:, 3], b[i, 3]) - np.maximum(rest[:, 1], b[i, 1]) + 1
        inner = np.where((iw > 0) & (ih > 0), iw * ih, 0.0)
        ow = np.maximum(rest[:, 2], b[i, 2]) - np.minimum(rest[:, 0], b[i, 0]) + 1
        oh = np.maximum(rest[:, 3], b[i, 3]) - np.minimum(rest[:, 1], b[i, 1]) + 1
        hit = (inner > 0) & (
            (inner / (ow * oh) > iou_thresh) | (inner / area[i] > covered_thresh)
            | (inner / area[i + 1 :] > covered_thresh)
        )
        dropped[i + 1 :] |= hit
    return keep


# ----------------------------------------------------------------------------- detector


def _check_image(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray):
        raise InputError(f"expected a numpy image array, got {type(image).__name__}")
    return as_rgb(image)


def _resolve_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise InputError(f"unknown MMOD backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend == "auto":
        from openlfr.face.torch_graph import torch_cuda_available

        return "cuda" if torch_cuda_available() else "cpu"
    return backend


class MMODDetector:
    """dlib's CNN (MMOD) face detector, best first, dlib-convention boxes (not clipped).

    ``backend``: ``cpu`` (ONNX Runtime), ``cuda`` (PyTorch on the GPU), ``dlib`` (dlib
    itself, the reference) or ``auto`` (``cuda`` if available, else ``cpu``).
    ``upsample`` doubles the image that many times first (finds faces below ~40 px);
    ``threshold`` is dlib's ``adjust_threshold`` on the detector's score;
    ``precision`` (``cuda`` only): ``fp32`` (exact), ``tf32`` or ``fp16`` (faster);
    ``device`` (``cuda`` only): the PyTorch device, ``"cuda"`` by default (``"cpu"`` runs the
    PyTorch path on the CPU, for checks without a GPU);
    ``chunk`` (``cuda`` only): frames per network run; a batch is cut into chunks so that
    uploading and decoding one overlaps the device's work on the next;
    ``channels_last`` (``cuda`` only): NHWC convolutions (may be faster with ``fp16``).
    """

    name = "mmod"

    def __init__(
        self,
        backend: str = "cpu",
        upsample: int = 0,
        threshold: float = 0.0,
        precision: str = "fp32",
        device: str = "cuda",
        chunk: int = 4,
        channels_last: bool = False,
    ) -> None:
        if upsample < 0:
            raise InputError("upsample must be 0 or more")
        self.backend = _resolve_backend(backend)
        self.upsample = int(upsample)
        self.threshold = float(threshold)
        self._runner: Any = None
        self._decoding: MMODDecoding | None = None
        self._means: tuple[float, float, float] = DEFAULT_MEANS
        if self.backend == "dlib":
            import dlib

            from openlfr.face.model_files import MMOD, model_path

            if self.threshold != 0.0:
                raise InputError("the dlib reference backend supports only threshold=0")
            self._runner = dlib.cnn_face_detection_model_v1(str(model_path(MMOD)))
        else:
            from openlfr.face.nets import mmod as net

            spec = net.load_spec()
            self._decoding = spec.decoding
            self._means = spec.means
            if self.backend == "cpu":
                self._runner = net.OnnxMMOD(spec)
            else:
                self._runner = net.TorchMMOD(
                    spec, device=device, precision=precision, chunk=chunk, channels_last=channels_last
                )

    # -- one image -------------------------------------------------------------------

    def detect(self, image: np.ndarray) -> list[Detection]:
        """Faces in ``image`` (RGB, grey or RGBA ``uint8``), best first."""
        image = _check_image(image)
        if self.backend == "dlib":
            if min(image.shape[:2]) < DLIB_MIN_SIDE:
                return []  # dlib itself raises (or crashes) on images this small
            dets = self._runner(image, self.upsample)
            found = [
                Detection(Box(d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom()), float(d.confidence),
                          self.name)
                for d in dets
            ]
            return sorted(found, key=lambda d: -d.score)
        return self.detect_batch([image])[0]

    # -- many images -----------------------------------------------------------------

    def detect_batch(self, images: Sequence[np.ndarray]) -> list[list[Detection]]:
        """Faces in each image; images of the same size share one network run."""
        if self.backend == "dlib":
            return [self.detect(img) for img in images]
        prepared = [upsample_image(_check_image(img), self.upsample) for img in images]
        results: list[list[Detection]] = [[] for _ in prepared]
        groups: dict[tuple[int, int], list[int]] = {}
        for i, img in enumerate(prepared):
            groups.setdefault(img.shape[:2], []).append(i)
        assert self._decoding is not None
        for (h, w), idxs in groups.items():
            layout = pyramid_layout(h, w, self._decoding.pyramid_n)
            if len(layout.rects) == 0 or not self._runner.fits(layout.height, layout.width):
                continue  # too small for the network: no faces, as dlib
            group = [prepared[i] for i in idxs]
            if self.backend == "cuda":
                # thresholded on the device; only the positions above it come back, chunk by
                # chunk, each decoded here while the device runs the next
                for j, k, rr, cc, conf in self._runner.iter_candidates(group, layout, self.threshold):
                    boxes, conf64 = decode_candidates(k, rr, cc, conf, layout, self._decoding)
                    results[idxs[j]] = self._finish_boxes(boxes, conf64)
                continue
            outputs = self._runner.run_images(group, layout, self._means)
            for i, scores in zip(idxs, outputs):
                results[i] = self._finish(scores, layout)
        return results

    def _finish(self, scores: np.ndarray, layout: PyramidLayout) -> list[Detection]:
        assert self._decoding is not None
        return self._finish_boxes(*decode_output(scores, layout, self._decoding, self.threshold))

    def _finish_boxes(self, boxes: np.ndarray, conf: np.ndarray) -> list[Detection]:
        """Non-max suppression of decoded (best-first) boxes, mapped back through upsampling."""
        assert self._decoding is not None
        d = self._decoding
        keep = nms(boxes, d.iou_thresh, d.covered_thresh)
        boxes, conf = boxes[keep], conf[keep]
        if self.upsample:
            boxes = _rect_down_2(boxes, self.upsample)
        return [Detection(Box(*map(int, b)), float(s), self.name) for b, s in zip(boxes, conf)]


__all__ = [
    "MMODDetector",
    "MMODDecoding",
    "PyramidLayout",
    "pyramid_layout",
    "tiled_pyramid",
    "resize_bilinear",
    "upsample_image",
    "decode_output",
    "decode_candidates",
    "nms",
]
