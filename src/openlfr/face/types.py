"""Plain typed objects that the face stages pass between them.

Conventions (kept identical to dlib's so that results can be compared with it directly):

* images are RGB ``uint8`` arrays of shape ``(H, W, 3)``;
* a :class:`Box` is in pixel coordinates with *inclusive* right/bottom edges, as a
  ``dlib.rectangle`` is (``width = right - left + 1``);
* landmarks are ``(5, 2)`` float arrays of ``(x, y)`` in the order of dlib's 5-point model:
  right eye outer corner, right eye inner corner, left eye outer corner, left eye inner corner,
  bottom of the nose (image left/right as dlib labels them);
* a face chip is a ``(150, 150, 3)`` RGB ``uint8`` array, aligned the way
  ``dlib.get_face_chip(img, shape, size=150, padding=0.25)`` aligns it;
* an embedding is the raw 128-D float32 descriptor the ResNet outputs; a *template* is an
  embedding normalised to unit length (see :mod:`openlfr.matching.similarity`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

CHIP_SIZE = 150
CHIP_PADDING = 0.25


@dataclass(frozen=True)
class Box:
    """An axis-aligned face box, dlib convention (inclusive right/bottom)."""

    left: int
    top: int
    right: int
    bottom: int

    @property
    def width(self) -> int:
        return self.right - self.left + 1

    @property
    def height(self) -> int:
        return self.bottom - self.top + 1

    @property
    def center(self) -> tuple[float, float]:
        return ((self.left + self.right) / 2.0, (self.top + self.bottom) / 2.0)

    @property
    def area(self) -> int:
        return max(0, self.width) * max(0, self.height)

    def iou(self, other: Box) -> float:
        """Intersection over union with another box."""
        w = min(self.right, other.right) - max(self.left, other.left) + 1
        h = min(self.bottom, other.bottom) - max(self.top, other.top) + 1
        if w <= 0 or h <= 0:
            return 0.0
        inter = w * h
        return inter / float(self.area + other.area - inter)

    def as_list(self) -> list[int]:
        return [self.left, self.top, self.right, self.bottom]


@dataclass
class Detection:
    """One face found by a detector: its box, the detector's confidence and, for detectors
    that place them (YuNet), its 5 points in ArcFace's order (eye centres, nose tip, mouth
    corners; ``(5, 2)`` float (x, y))."""

    box: Box
    score: float
    detector: str = ""
    landmarks: np.ndarray | None = None


@dataclass
class Quality:
    """How usable a face is, with the reasons it may be refused."""

    score: float  # 0 (useless) .. 1 (ideal)
    face_size: float  # inter-ocular-based face width in pixels
    sharpness: float  # variance of the Laplacian on the chip
    yaw: float  # rough head yaw from landmark symmetry, -1 .. 1 (0 = frontal)
    roll_degrees: float
    reasons: list[str] = field(default_factory=list)

    @property
    def acceptable(self) -> bool:
        return not self.reasons


@dataclass
class Face:
    """Everything the face stage knows about one face in one image."""

    detection: Detection
    landmarks: np.ndarray  # (5, 2)
    chip: np.ndarray  # (150, 150, 3) uint8
    embedding: np.ndarray  # (D,) float32, raw
    template: np.ndarray  # (D,) float32, unit length
    quality: Quality
    model_id: str = ""  # the face model that made the template (see openlfr.face.registry)

    @property
    def box(self) -> Box:
        return self.detection.box


@runtime_checkable
class Detector(Protocol):
    """Finds faces in an RGB image."""

    name: str

    def detect(self, image: np.ndarray) -> list[Detection]:
        """Return the faces in ``image`` (RGB uint8), best first."""
        ...


@runtime_checkable
class Landmarker(Protocol):
    """Places dlib's 5 landmarks inside face boxes."""

    def landmarks(self, image: np.ndarray, boxes: Sequence[Box]) -> list[np.ndarray]:
        """Return one ``(5, 2)`` float array of (x, y) per box."""
        ...


@runtime_checkable
class Embedder(Protocol):
    """Turns aligned 150x150 face chips into 128-D embeddings."""

    dim: int

    def embed(self, chips: np.ndarray) -> np.ndarray:
        """``(N, 150, 150, 3)`` uint8 RGB chips -> ``(N, dim)`` float32 raw embeddings."""
        ...
