"""Alignment to the standard 5-point ArcFace template: 112x112 chips for SFace.

The template (InsightFace's, also OpenCV's ``FaceRecognizerSF.alignCrop``) places, in a
112x112 image, the subject's right eye, left eye, nose tip, right mouth corner and left mouth
corner — in image terms: left eye, right eye, nose, left mouth corner, right mouth corner —
which is the order in which YuNet reports its 5 landmarks.

The transform is the least-squares similarity (rotation, uniform scale, translation) from the
5 detected points to the template (Umeyama's method, as OpenCV's ``alignCrop`` computes it),
applied with bilinear interpolation and black borders. Chips agree with OpenCV's
``alignCrop`` to one grey level (checked by ``tests/face/test_sface.py`` and ``tests/face/test_yunet.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from openlfr.errors import InputError
from openlfr.face.image import as_rgb

ARCFACE_SIZE = 112
ARCFACE_TEMPLATE = np.array(
    [
        [38.2946, 51.6963],  # subject's right eye (image left)
        [73.5318, 51.5014],  # subject's left eye
        [56.0252, 71.7366],  # nose tip
        [41.5493, 92.3655],  # subject's right mouth corner
        [70.7299, 92.2041],  # subject's left mouth corner
    ],
    dtype=np.float64,
)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The ``(2, 3)`` least-squares similarity mapping points ``src`` onto ``dst`` (Umeyama)."""
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    var = float((src_c**2).sum() / len(src))
    if var < 1e-12:
        raise InputError("the landmarks coincide: cannot align the face")
    cov = dst_c.T @ src_c / len(src)
    u, s, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[1] = -1.0
    rot = u @ np.diag(d) @ vt
    scale = float((s * d).sum() / var)
    out = np.empty((2, 3), np.float64)
    out[:, :2] = scale * rot
    out[:, 2] = dst_mean - scale * rot @ src_mean
    return out


def _check_landmarks(landmarks5: np.ndarray) -> np.ndarray:
    pts = np.asarray(landmarks5, dtype=np.float64)
    if pts.shape != (5, 2):
        raise InputError(f"ArcFace alignment needs (5, 2) landmarks, got shape {pts.shape}")
    if not np.all(np.isfinite(pts)):
        raise InputError("the landmarks are not finite numbers")
    return pts


def arcface_transform(landmarks5: np.ndarray, size: int = ARCFACE_SIZE) -> np.ndarray:
    """The ``(2, 3)`` affine map from image to chip for 5 landmarks in YuNet's order."""
    template = ARCFACE_TEMPLATE * (size / float(ARCFACE_SIZE))
    return similarity_transform(_check_landmarks(landmarks5), template)


def arcface_chip(image_rgb: np.ndarray, landmarks5: np.ndarray, size: int = ARCFACE_SIZE) -> np.ndarray:
    """The ``(size, size, 3)`` uint8 RGB chip of one face, aligned to the ArcFace template."""
    image = as_rgb(image_rgb)
    matrix = arcface_transform(landmarks5, size)
    return cv2.warpAffine(
        image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
    )


def arcface_chips(
    image_rgb: np.ndarray, landmarks: Sequence[np.ndarray], size: int = ARCFACE_SIZE
) -> np.ndarray:
    """``(N, size, size, 3)`` uint8 chips, one per set of 5 landmarks."""
    image = as_rgb(image_rgb)
    out = np.empty((len(landmarks), size, size, 3), np.uint8)
    for i, pts in enumerate(landmarks):
        out[i] = arcface_chip(image, pts, size)
    return out


__all__ = [
    "ARCFACE_SIZE",
    "ARCFACE_TEMPLATE",
    "arcface_chip",
    "arcface_chips",
    "arcface_transform",
    "similarity_transform",
]
