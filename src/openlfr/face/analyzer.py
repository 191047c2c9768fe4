"""The face stage as one facade: image -> detected, aligned, embedded, quality-scored faces.

Like insightface's ``FaceAnalysis``, one object owns the chain of small models; each
model can be swapped for another implementation of the same protocol
(:mod:`openlfr.face.types`), for example a user's own ONNX embedder.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from openlfr.config import get_settings
from openlfr.errors import MultipleFacesError, NoFaceError, QualityError
from openlfr.face.image import as_rgb, load_image
from openlfr.face.quality import DEFAULT_POLICY, QualityPolicy, assess
from openlfr.face.types import Detection, Detector, Embedder, Face, Landmarker
from openlfr.matching.similarity import to_template


def flip_fuse(embeddings: np.ndarray, mirrored: np.ndarray) -> np.ndarray:
    """One face's template direction from its chip's and its mirror image's embeddings
    (the mean of their unit templates)."""
    return (to_template(embeddings) + to_template(mirrored)) / 2.0


@dataclass
class FaceStage:
    """The chain's parts; built by :func:`build_stage` from settings."""

    detector: Detector
    landmarker: Landmarker
    embedder: Embedder


def build_stage(detector: str | None = None, backend: str | None = None) -> FaceStage:
    """Build the default chain: the configured detector, 5-point landmarks, ResNet embedder.

    ``backend`` is ``cpu`` (ONNX Runtime), ``cuda`` (GPU), ``auto`` or ``dlib`` (dlib
    itself, the reference implementation, when it is installed).
    """
    from openlfr.face.detectors import make_detector
    from openlfr.face.embedders import make_embedder
    from openlfr.face.shape_predictor import DlibLandmarker, ShapePredictor5

    settings = get_settings()
    backend = backend or settings.backend
    landmarker: Landmarker = DlibLandmarker() if backend == "dlib" else ShapePredictor5()
    return FaceStage(
        detector=make_detector(detector or settings.detector, backend=backend),
        landmarker=landmarker,
        embedder=make_embedder(backend),
    )


class FaceAnalyzer:
    """Detect, align, embed and score faces.

    ``flip`` averages each face's template with that of its mirror image: a test-time
    augmentation that costs a second embedding per face and, measured with
    ``openlfr evaluate lfw``, raises LFW verification accuracy from 98.60% to 99.10% and
    cuts the 1:N miss rate at FPIR 0.1% from 76.9% to 64.3% (see the README).
    """

    def __init__(
        self,
        stage: FaceStage | None = None,
        *,
        flip: bool = True,
        policy: QualityPolicy = DEFAULT_POLICY,
    ) -> None:
        self.stage = stage or build_stage()
        self.flip = flip
        self.policy = policy

    def detect(self, image: np.ndarray) -> list[Detection]:
        """The detector's faces, best first."""
        return self.stage.detector.detect(as_rgb(image))

    def embed_chips(self, chips: np.ndarray) -> np.ndarray:
        """Embeddings of aligned chips; with ``flip``, the mean of the chip's and its mirror's
        unit templates (so the result is a template direction, not a raw embedding)."""
        if len(chips) == 0:
            return np.zeros((0, self.stage.embedder.dim), np.float32)
        if not self.flip:
            return self.stage.embedder.embed(chips)
        both = self.stage.embedder.embed(np.concatenate([chips, chips[:, :, ::-1]]))
        return flip_fuse(both[: len(chips)], both[len(chips) :])

    def align(self, image: np.ndarray, detections: list[Detection]) -> tuple[list[np.ndarray], np.ndarray]:
        """Landmarks and aligned chips ``(N, 150, 150, 3)`` for the given detections."""
        from openlfr.face.align import face_chip

        marks = self.stage.landmarker.landmarks(image, [d.box for d in detections])
        return marks, np.stack([face_chip(image, m) for m in marks])

    def analyze(self, image: np.ndarray, detections: list[Detection] | None = None) -> list[Face]:
        """Every face in ``image`` (or at the given detections), fully processed."""
        image = as_rgb(image)
        if detections is None:
            detections = self.detect(image)
        if not detections:
            return []
        marks, chips = self.align(image, detections)
        embeddings = self.embed_chips(chips)
        templates = to_template(embeddings)
        return [
            Face(d, m, c, e, t, assess(m, c, self.policy))
            for d, m, c, e, t in zip(detections, marks, chips, embeddings, templates)
        ]

    def enrol(self, image: np.ndarray, label: str = "image") -> Face:
        """The single, good-quality face of an enrolment image, or a clear error."""
        faces = self.analyze(image)
        if not faces:
            raise NoFaceError(f"{label}: no face found")
        if len(faces) > 1:
            raise MultipleFacesError(
                f"{label}: {len(faces)} faces found; an enrolment image must show exactly one person"
            )
        face = faces[0]
        if not face.quality.acceptable:
            raise QualityError(f"{label}: face refused: {'; '.join(face.quality.reasons)}")
        return face


@lru_cache(maxsize=4)
def default_analyzer(detector: str | None = None, backend: str | None = None) -> FaceAnalyzer:
    """A process-wide analyzer built from the settings (models load once)."""
    return FaceAnalyzer(build_stage(detector, backend))


def enrolment_template(image_bytes: bytes) -> tuple[np.ndarray, float]:
    """Template and quality score of the one face in an enrolment image (bytes).

    Raises :class:`~openlfr.errors.ImageError`, :class:`NoFaceError`,
    :class:`MultipleFacesError` or :class:`QualityError` with a one-line reason.
    """
    face = default_analyzer().enrol(load_image(image_bytes))
    return face.template, face.quality.score
