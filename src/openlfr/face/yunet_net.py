"""YuNet's network without OpenCV: a float graph for any image size, and its decoding.

OpenCV's ``cv2.FaceDetectorYN`` runs only on OpenCV's own DNN module (CPU in the PyPI wheels).
To run YuNet on ONNX Runtime's or PyTorch's GPU path, this module provides the two halves
OpenCV otherwise hides:

* :func:`yunet_graph` — the shipped int8 block-quantised graph with its weights folded to
  float32 (:func:`openlfr.face.onnx_fold.fold_weights`) and a symbolic ``N x 3 x H x W`` input
  (the heads reshape to ``(1, -1, k)``, so any size that is a multiple of 32 works);
* :func:`decode` — YuNet's anchor-free decoding as OpenCV's ``FaceDetectorYN`` does it: per
  stride (8, 16, 32) and grid cell, score ``sqrt(cls * obj)``, box centre ``(cell + offset) *
  stride``, size ``exp(log-size) * stride``, landmarks ``(cell + offset) * stride``, then
  non-maximum suppression.

The rows returned have OpenCV's layout (x, y, w, h, 5 landmark pairs, score), so
:class:`openlfr.face.yunet.YuNetDetector` treats both engines' output the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

INPUT_NAME = "input"
STRIDES = (8, 16, 32)
OUTPUT_NAMES = tuple(f"{kind}_{s}" for kind in ("cls", "obj", "bbox", "kps") for s in STRIDES)
BUILDER_VERSION = 1  # bump whenever yunet_graph changes what it builds


def yunet_graph(model: Any) -> Any:
    """The YuNet graph with float32 weights and a symbolic batch, height and width."""
    from openlfr.face.onnx_fold import fold_weights

    return fold_weights(model, [INPUT_NAME], {INPUT_NAME: ["N", 3, "H", "W"]})


def padded_size(width: int, height: int) -> tuple[int, int]:
    """The input size YuNet runs at: each side rounded up to a multiple of 32 (zero padding)."""
    return ((width - 1) // 32 + 1) * 32, ((height - 1) // 32 + 1) * 32


def blob(bgr: np.ndarray) -> np.ndarray:
    """A ``(1, 3, H', W')`` float32 blob of a BGR image, zero-padded to :func:`padded_size`."""
    h, w = bgr.shape[:2]
    pw, ph = padded_size(w, h)
    out = np.zeros((1, 3, ph, pw), np.float32)
    out[0, :, :h, :w] = bgr.transpose(2, 0, 1)
    return out


def decode(
    outputs: Sequence[np.ndarray],
    pad_w: int,
    pad_h: int,
    score_threshold: float,
    nms_threshold: float,
    top_k: int,
) -> np.ndarray:
    """``(K, 15)`` float32 faces (x, y, w, h, 10 landmark coordinates, score), best first.

    ``outputs`` are the network's 12 outputs in :data:`OUTPUT_NAMES` order, for one image run at
    ``pad_w`` x ``pad_h``.
    """
    import cv2

    rows: list[np.ndarray] = []
    for i, stride in enumerate(STRIDES):
        cols, nrows = pad_w // stride, pad_h // stride
        cls = np.clip(np.asarray(outputs[i], np.float32).reshape(-1), 0.0, 1.0)
        obj = np.clip(np.asarray(outputs[3 + i], np.float32).reshape(-1), 0.0, 1.0)
        bbox = np.asarray(outputs[6 + i], np.float32).reshape(-1, 4)
        kps = np.asarray(outputs[9 + i], np.float32).reshape(-1, 10)
        if len(cls) != cols * nrows:
            raise ValueError(f"YuNet stride {stride} output has {len(cls)} cells, expected {cols * nrows}")
        score = np.sqrt(cls * obj)
        keep = np.flatnonzero(score >= score_threshold)
        if keep.size == 0:
            continue
        c = (keep % cols).astype(np.float32)
        r = (keep // cols).astype(np.float32)
        cx = (c + bbox[keep, 0]) * stride
        cy = (r + bbox[keep, 1]) * stride
        w = np.exp(bbox[keep, 2]) * stride
        h = np.exp(bbox[keep, 3]) * stride
        pts = kps[keep].reshape(-1, 5, 2)
        px = (pts[:, :, 0] + c[:, None]) * stride
        py = (pts[:, :, 1] + r[:, None]) * stride
        block = np.empty((keep.size, 15), np.float32)
        block[:, 0], block[:, 1], block[:, 2], block[:, 3] = cx - w / 2, cy - h / 2, w, h
        block[:, 4:14:2], block[:, 5:14:2] = px, py
        block[:, 14] = score[keep]
        rows.append(block)
    if not rows:
        return np.zeros((0, 15), np.float32)
    faces = np.concatenate(rows)
    boxes = [[float(v) for v in row[:4]] for row in faces]
    kept = cv2.dnn.NMSBoxes(boxes, faces[:, 14].tolist(), score_threshold, nms_threshold, 1.0, top_k)
    order = np.asarray(kept, np.int64).reshape(-1)
    return faces[order]


__all__ = ["BUILDER_VERSION", "INPUT_NAME", "OUTPUT_NAMES", "STRIDES", "blob", "decode", "padded_size", "yunet_graph"]
