"""dlib's shape predictor (an ensemble of regression trees) in numpy, without dlib.

Reads a dlib ``shape_predictor`` ``.dat`` file and runs the cascade exactly as
``dlib::shape_predictor::operator()`` does, so that its landmarks are the same integers dlib
returns:

* the shape lives in box-normalised coordinates (``(0,0)`` = box top-left, ``(1,1)`` =
  bottom-right) as float32, updated tree by tree in float32;
* each cascade level samples 800 pixels placed relative to the nearest landmark of the mean
  shape, moved by the similarity transform from the mean shape to the current shape
  (float32 arithmetic), mapped into the image and rounded to the nearest pixel;
* pixels are read from the image converted to grey the way dlib does it,
  ``(r + g + b) // 3``; pixels outside the image read as 0;
* a tree goes left when ``value[idx1] - value[idx2] > thresh``;
* the final points are mapped to the image and rounded (dlib returns integer points).

Everything is vectorised over the trees of a level and over all the boxes of an image.
A parsed model is cached as ``.npz`` in the model cache folder, because decoding dlib's
per-float encoding in Python takes seconds.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from openlfr.errors import InputError, ModelError
from openlfr.face.dlib_format import DlibReader
from openlfr.face.types import Box

_CACHE_FORMAT = 1  # bump when the cached arrays change meaning


@dataclass(frozen=True)
class ShapeModel:
    """The arrays of a shape predictor, one entry per cascade level where indexed by level.

    ``initial_shape`` is ``(2P,)`` float32 (x0, y0, x1, y1, ...); ``split_idx`` is
    ``(L, T, S, 2)`` int, ``split_thresh`` ``(L, T, S)`` float32, ``leaf_values``
    ``(L, T, S+1, 2P)`` float32, ``anchor_idx`` ``(L, F)`` int and ``deltas`` ``(L, F, 2)``
    float32, for L levels of T trees with S splits each and F feature pixels per level.
    """

    initial_shape: np.ndarray
    split_idx: np.ndarray
    split_thresh: np.ndarray
    leaf_values: np.ndarray
    anchor_idx: np.ndarray
    deltas: np.ndarray

    @property
    def num_parts(self) -> int:
        return self.initial_shape.size // 2

    @property
    def tree_depth(self) -> int:
        return int(np.log2(self.leaf_values.shape[2]))


# --------------------------------------------------------------------------- parsing


def _read_count(reader: DlibReader, what: str) -> int:
    """A container size, checked against the bytes left (each element takes at least one)."""
    n = reader.read_int()
    if n < 0 or n > len(reader.data) - reader.pos:
        raise ModelError(f"{reader.name}: implausible {what} count {n} at byte {reader.pos}")
    return n


def parse_shape_predictor(data: bytes, name: str = "<bytes>") -> ShapeModel:
    """Decode a serialised ``dlib::shape_predictor`` (format version 1).

    Raises :class:`ModelError` if the bytes are truncated, corrupt or describe a forest that
    this implementation cannot run (trees of unequal depth, not fully filled).
    """
    try:
        return _parse(data, name)
    except (OverflowError, ValueError, MemoryError) as exc:  # e.g. a float with a wild exponent
        raise ModelError(f"{name}: corrupt shape predictor ({exc})") from exc


def _parse(data: bytes, name: str) -> ShapeModel:
    r = DlibReader(data, name)
    version = r.read_int()
    if version != 1:
        raise ModelError(f"{name}: not a dlib shape predictor (version {version}, expected 1)")
    init = r.read_matrix()
    if init.ndim != 2 or init.shape[1] != 1 or init.shape[0] < 2 or init.shape[0] % 2:
        raise ModelError(f"{name}: bad initial shape of size {init.shape}")
    num_coords = init.shape[0]

    levels = _read_count(r, "cascade level")
    idx_l, thr_l, leaf_l = [], [], []
    for _ in range(levels):
        trees = _read_count(r, "tree")
        idx_t, thr_t, leaf_t = [], [], []
        for _ in range(trees):
            nsplit = _read_count(r, "split")
            splits = [(r.read_int(), r.read_int(), r.read_float()) for _ in range(nsplit)]
            nleaf = _read_count(r, "leaf")
            leaves = [r.read_matrix() for _ in range(nleaf)]
            if nleaf != nsplit + 1 or nleaf & (nleaf - 1):
                raise ModelError(f"{name}: a tree has {nsplit} splits and {nleaf} leaves")
            if any(leaf.shape != (num_coords, 1) for leaf in leaves):
                raise ModelError(f"{name}: leaf vectors do not match the shape size")
            idx_t.append([(a, b) for a, b, _ in splits])
            thr_t.append([t for _, _, t in splits])
            leaf_t.append(np.hstack(leaves).T)
        idx_l.append(idx_t)
        thr_l.append(thr_t)
        leaf_l.append(leaf_t)

    n_anchor_levels = _read_count(r, "anchor level")
    anchors = [[r.read_int() for _ in range(_read_count(r, "anchor"))] for _ in range(n_anchor_levels)]
    n_delta_levels = _read_count(r, "delta level")
    deltas = []
    for _ in range(n_delta_levels):
        n = _read_count(r, "delta")
        deltas.append([(r.read_float(), r.read_float()) for _ in range(n)])
    if not r.at_end:
        raise ModelError(f"{name}: {len(data) - r.pos} unexpected bytes after the model")

    try:
        model = ShapeModel(
            initial_shape=init[:, 0].astype(np.float32),
            split_idx=np.asarray(idx_l, dtype=np.int64),
            split_thresh=np.asarray(thr_l, dtype=np.float32),
            leaf_values=np.asarray(leaf_l, dtype=np.float32),
            anchor_idx=np.asarray(anchors, dtype=np.int64),
            deltas=np.asarray(deltas, dtype=np.float32),
        )
    except ValueError as exc:  # ragged: levels of different sizes
        raise ModelError(f"{name}: cascade levels of unequal size are not supported") from exc
    _check_model(model, name)
    return model


def _check_model(m: ShapeModel, name: str) -> None:
    """Reject arrays whose shapes or indices do not fit together."""
    levels = m.split_idx.shape[0] if m.split_idx.ndim == 4 else -1
    ok = (
        levels > 0
        and m.split_thresh.shape == m.split_idx.shape[:3]
        and m.leaf_values.shape[:2] == m.split_idx.shape[:2]
        and m.leaf_values.shape[2] == m.split_idx.shape[2] + 1
        and m.leaf_values.shape[3] == m.initial_shape.size
        and m.anchor_idx.ndim == 2
        and m.anchor_idx.shape[0] == levels
        and m.deltas.shape == m.anchor_idx.shape + (2,)
    )
    if not ok:
        raise ModelError(f"{name}: inconsistent shape predictor arrays")
    if m.anchor_idx.size and (m.anchor_idx.min() < 0 or m.anchor_idx.max() >= m.num_parts):
        raise ModelError(f"{name}: anchor index out of range")
    if m.split_idx.size and (m.split_idx.min() < 0 or m.split_idx.max() >= m.anchor_idx.shape[1]):
        raise ModelError(f"{name}: split feature index out of range")


def _cache_path(cache_dir: Path, digest: str) -> Path:
    return cache_dir / f"shape_predictor_{digest[:20]}_v{_CACHE_FORMAT}.npz"


def load_shape_model(path: str | Path, cache_dir: str | Path | None = None) -> ShapeModel:
    """Parse a shape predictor ``.dat`` file, through an ``.npz`` cache keyed by its hash.

    ``cache_dir=None`` uses the configured model cache folder; a cache that cannot be written
    is silently skipped (the model is then parsed on every load).
    """
    reader = DlibReader.open(path)
    digest = hashlib.sha256(reader.data).hexdigest()
    if cache_dir is None:
        from openlfr.config import get_settings

        cache_dir = get_settings().model_cache_dir
    cache = _cache_path(Path(cache_dir), digest)
    if cache.is_file():
        try:
            with np.load(cache) as z:
                model = ShapeModel(**{k: z[k] for k in ShapeModel.__dataclass_fields__})
            _check_model(model, str(cache))
            return model
        except (OSError, ValueError, KeyError, TypeError, ModelError):
            pass  # a damaged cache entry: rebuild it below
    model = parse_shape_predictor(reader.data, reader.name)
    try:
        # private, like the data folder (mkstemp files are 0600)
        cache.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache.parent, suffix=".npz.tmp")
    except OSError:
        return model  # no writable cache: parse again next time
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **{k: getattr(model, k) for k in ShapeModel.__dataclass_fields__})
        os.replace(tmp, cache)  # atomic: concurrent loaders never see a partial file
    except OSError:
        Path(tmp).unlink(missing_ok=True)
    return model


# --------------------------------------------------------------------------- running


def _checked_image(image: np.ndarray) -> np.ndarray:
    """An RGB ``(H, W, 3)`` or grey ``(H, W)`` uint8 image, contiguous, or InputError."""
    img = np.asarray(image)
    if img.dtype != np.uint8:
        raise InputError(f"images must be uint8, not {img.dtype}")
    if not (img.ndim == 2 or (img.ndim == 3 and img.shape[2] == 3)):
        raise InputError(f"images must be RGB (H, W, 3) or grey (H, W), not shape {img.shape}")
    if img.shape[0] == 0 or img.shape[1] == 0:
        raise InputError("the image is empty")
    return np.ascontiguousarray(img)


def similarity_matrix_weights(from_pts: np.ndarray) -> np.ndarray | None:
    """Weights ``K`` such that ``to_flat @ K`` is the scale-rotation of dlib's similarity fit.

    dlib's ``find_similarity_transform`` (Umeyama, no reflection) from the fixed points
    ``from_pts`` ``(P, 2)`` to points ``to`` has, in 2-D, the closed form
    ``[[a, -b], [b, a]] / var(from)`` with ``a = sum(to . fc)``, ``b = sum(to x fc)``/P and
    ``fc`` the centred source points; it equals dlib's SVD-based result up to rounding.
    Returns ``(2P, 4)`` float64 giving ``(m00, m01, m10, m11)`` for ``to`` flattened
    ``(x0, y0, x1, y1, ...)``, or ``None`` where dlib uses the identity (one point, or all
    points equal).
    """
    f = np.asarray(from_pts, dtype=np.float64)
    fc = f - f.mean(axis=0)
    n = f.shape[0]
    sigma = float((fc * fc).sum()) / n
    if n == 1 or sigma == 0:
        return None
    ka = np.stack([fc[:, 0], fc[:, 1]], axis=1).reshape(-1)  # a: x*fcx + y*fcy
    kb = np.stack([-fc[:, 1], fc[:, 0]], axis=1).reshape(-1)  # b: y*fcx - x*fcy
    return np.stack([ka, -kb, kb, ka], axis=1) / (n * sigma)


def _leaf_lut(depth: int) -> np.ndarray:
    """Leaf reached in a full tree of ``depth`` for every pattern of split outcomes.

    Bit ``i`` of the code is 1 when split ``i`` sends the walk left (dlib's node order:
    children of ``i`` are ``2i+1`` (left) and ``2i+2``); the code has ``2**depth`` bits, the
    last one unused (a tree has ``2**depth - 1`` splits).
    """
    nsplit = 2**depth - 1
    codes = np.arange(2 ** (nsplit + 1), dtype=np.int64)
    node = np.zeros_like(codes)
    for _ in range(depth):
        left = (codes >> node) & 1
        node = 2 * node + 2 - left
    return (node - nsplit).astype(np.intp)


# Trees of these depths are evaluated through a table indexed by their packed split
# outcomes (one byte or one little-endian uint16 per tree); other depths walk level by level.
_LUT_DTYPES: dict[int, np.dtype[Any]] = {3: np.dtype(np.uint8), 4: np.dtype("<u2")}

# Added to pixel coordinates before a truncating cast so that it floors (see _run): far
# larger than any image, and small enough that float64 still resolves 2**-32 of a pixel.
_OFFSET = 1 << 20


class ShapePredictor:
    """A dlib shape predictor run in numpy; landmarks equal dlib's for the same inputs.

    ``path`` is a dlib shape-predictor ``.dat`` file. ``subpixel=True`` returns the
    unrounded positions (dlib rounds to whole pixels; keep the default to match it).
    """

    def __init__(
        self, path: str | Path, *, subpixel: bool = False, cache_dir: str | Path | None = None
    ) -> None:
        self.path = Path(path)
        self.model = load_shape_model(self.path, cache_dir)
        self.subpixel = subpixel
        m = self.model
        levels, trees, nsplit = m.split_thresh.shape
        self._sim_weights = similarity_matrix_weights(m.initial_shape.reshape(-1, 2))
        self._lut_dtype = _LUT_DTYPES.get(m.tree_depth)
        self._lut = _leaf_lut(m.tree_depth) if self._lut_dtype is not None else None
        idx, thresh = m.split_idx, m.split_thresh
        if self._lut is not None:
            # Pad every tree with one split that never goes left (0 - 0 > inf), so that the
            # outcomes of a tree fill whole bytes and np.packbits packs all trees at once.
            idx = np.concatenate([idx, np.zeros((levels, trees, 1, 2), idx.dtype)], axis=2)
            thresh = np.concatenate([thresh, np.full((levels, trees, 1), np.inf, np.float32)], axis=2)
        # Per level, both feature indices of every (tree, split), so one take() reads them all.
        self._idx12 = np.ascontiguousarray(np.moveaxis(idx.reshape(levels, -1, 2), 2, 1), dtype=np.intp)
        # Pixel differences are whole numbers in [-255, 255], so ``diff > t`` equals
        # ``diff > floor(t)``: compare in int16 with the thresholds floored and clipped.
        floor_t = np.nan_to_num(np.floor(thresh.reshape(levels, -1)), nan=1000, posinf=1000, neginf=-1000)
        self._thresh = np.clip(floor_t, -1000, 1000).astype(np.int16)  # NaN: never left, as in dlib
        self._split_width = idx.shape[2]
        # Per level, the flat (x, y) positions of each feature pixel's anchor in the shape.
        self._anchor_xy = np.stack([2 * m.anchor_idx, 2 * m.anchor_idx + 1], axis=1).astype(np.intp)
        self._deltas_t = np.ascontiguousarray(m.deltas.transpose(0, 2, 1))  # (L, 2, F)
        self._leaf_flat = m.leaf_values.reshape(levels, trees * (nsplit + 1), -1)
        self._leaf_base = np.arange(trees, dtype=np.intp) * (nsplit + 1)
        self._split_base = np.arange(trees, dtype=np.intp) * self._split_width
        # dlib's rgb -> grey, (r + g + b) // 3, as a table over the channel sum
        self._grey_lut = (np.arange(3 * 255 + 1) // 3).astype(np.int16)

    @property
    def num_parts(self) -> int:
        return self.model.num_parts

    def landmarks(self, image: np.ndarray, boxes: Sequence[Box]) -> list[np.ndarray]:
        """One ``(num_parts, 2)`` float64 array of (x, y) per box; boxes may leave the image."""
        img = _checked_image(image)
        if len(boxes) == 0:
            return []
        rects = np.array([[b.left, b.top, b.right, b.bottom] for b in boxes], dtype=np.float64)
        if not (np.abs(rects) < _OFFSET // 4).all():
            raise InputError(f"face boxes must lie within {_OFFSET // 4} pixels of the image")
        return list(self._run(img, rects))

    def _leaves(self, go_left: np.ndarray) -> np.ndarray:
        """``(N, T * W)`` split outcomes (W per tree) -> ``(N, T)`` leaf index of every tree."""
        n = go_left.shape[0]
        trees = self._leaf_base.size
        if self._lut is not None and self._lut_dtype is not None:  # (set together)
            code = np.packbits(go_left.reshape(-1), bitorder="little").view(self._lut_dtype)
            return self._lut[code].reshape(n, trees)
        node = np.zeros((n, trees), dtype=np.intp)
        for _ in range(self.model.tree_depth):
            left = np.take_along_axis(go_left, self._split_base + node, axis=1)
            node = 2 * node + 2 - left
        return node - self._split_width

    def _run(self, img: np.ndarray, rects: np.ndarray) -> np.ndarray:
        m = self.model
        h, w = img.shape[:2]
        n = rects.shape[0]
        trees = self._leaf_base.size
        # unnormalizing_tform: (0,0) -> top-left, (1,1) -> bottom-right (inclusive corners).
        origin = rects[:, :2, None] + (0.5 + _OFFSET)  # (N, 2, 1); + 0.5 to round, see below
        scale = (rects[:, 2:] - rects[:, :2])[:, :, None]  # (N, 2, 1)
        shape = np.repeat(m.initial_shape[None, :], n, axis=0)  # (N, 2P) float32
        flat_img = img.reshape(h * w, -1)
        grey_image = img.ndim == 2
        buf = np.empty((n, trees + 1, shape.shape[1]), dtype=np.float32)
        limit = np.array([w, h], dtype=np.uintp)[:, None]
        for level in range(self._thresh.shape[0]):
            if self._sim_weights is None:
                tform = np.broadcast_to(np.eye(2, dtype=np.float32).reshape(1, 2, 2, 1), (n, 2, 2, 1))
            else:
                tform = (shape.astype(np.float64) @ self._sim_weights).astype(np.float32)  # (N, 4)
                tform = tform.reshape(n, 2, 2, 1)
            d = self._deltas_t[level]  # (2, F) float32
            anchor = np.take(shape, self._anchor_xy[level], axis=1)  # (N, 2, F) float32
            # float32 in dlib's order: (m[r,0]*dx + m[r,1]*dy) + anchor
            pts = tform[:, :, 0] * d[0]
            pts += tform[:, :, 1] * d[1]
            pts += anchor
            # float64 from here (exact); the offset makes every value positive, so that the
            # truncating cast floors: xy = floor(p + 0.5) + _OFFSET
            xy = (pts * scale + origin).astype(np.intp)  # (N, 2, F)
            # dlib reads pixels outside the image as 0 (negatives wrap to huge unsigned)
            xy -= _OFFSET
            outside = (xy.view(np.uintp) >= limit).any(axis=1)  # (N, F)
            flat = xy[:, 1] * w + xy[:, 0]
            flat[outside] = 0
            if grey_image:
                grey = np.take(flat_img[:, 0], flat).astype(np.int16)
            else:
                rgb = np.take(flat_img, flat, axis=0).astype(np.uint16)  # (N, F, 3)
                grey = self._grey_lut[rgb[..., 0] + rgb[..., 1] + rgb[..., 2]]  # int16
            grey[outside] = 0
            if n == 1:
                pair = grey[0].take(self._idx12[level])[:, None]  # (2, 1, T*W)
            else:
                pair = np.moveaxis(np.take(grey, self._idx12[level], axis=1), 1, 0)
            leaf = self._leaves((pair[0] - pair[1]) > self._thresh[level])  # (N, T)
            buf[:, 0] = shape
            np.take(self._leaf_flat[level], self._leaf_base + leaf, axis=0, out=buf[:, 1:])
            # dlib adds the trees one after another in float32; a reduction over this
            # (non-innermost) axis adds row after row in the same order.
            shape = np.add.reduce(buf, axis=1)

        pts = shape.reshape(n, -1, 2).astype(np.float64) * scale.transpose(0, 2, 1) + rects[:, None, :2]
        return pts if self.subpixel else np.floor(pts + 0.5)


class ShapePredictor5(ShapePredictor):
    """dlib's 5-point face landmarker (``shape_predictor_5_face_landmarks.dat``) without dlib.

    Implements the :class:`~openlfr.face.types.Landmarker` protocol.
    """

    def __init__(
        self, path: str | Path | None = None, *, subpixel: bool = False, cache_dir: str | Path | None = None
    ) -> None:
        if path is None:
            from openlfr.face.model_files import SHAPE5, model_path

            path = model_path(SHAPE5)
        super().__init__(path, subpixel=subpixel, cache_dir=cache_dir)
        if self.num_parts != 5:
            raise ModelError(f"{self.path}: a {self.num_parts}-point model, expected the 5-point one")


class DlibLandmarker:
    """The reference: dlib's own ``shape_predictor`` (imports dlib on first use)."""

    def __init__(self, path: str | Path | None = None) -> None:
        if path is None:
            from openlfr.face.model_files import SHAPE5, model_path

            path = model_path(SHAPE5)
        self.path = Path(path)
        self._predictor = None

    def _get(self):  # noqa: ANN202 - a dlib object
        if self._predictor is None:
            try:
                import dlib
            except ImportError as exc:  # pragma: no cover - dlib is a dependency
                raise ModelError("the dlib reference landmarker needs the 'dlib' package") from exc
            try:
                self._predictor = dlib.shape_predictor(str(self.path))
            except RuntimeError as exc:
                raise ModelError(f"dlib cannot load {self.path}: {exc}") from exc
        return self._predictor

    def landmarks(self, image: np.ndarray, boxes: Sequence[Box]) -> list[np.ndarray]:
        """One ``(num_parts, 2)`` float64 array of (x, y) per box, as dlib computes it."""
        import dlib

        img = _checked_image(image)
        sp = self._get()
        out = []
        for b in boxes:
            det = sp(img, dlib.rectangle(int(b.left), int(b.top), int(b.right), int(b.bottom)))
            out.append(np.array([[p.x, p.y] for p in det.parts()], dtype=np.float64))
        return out
