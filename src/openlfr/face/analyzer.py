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
from openlfr.errors import InputError, MultipleFacesError, NoFaceError, QualityError
from openlfr.face.image import as_rgb, load_image
from openlfr.face.quality import DEFAULT_POLICY, QualityPolicy, assess
from openlfr.face.registry import ARCFACE5, EmbedderEntry, registry
from openlfr.face.types import Detection, Detector, Embedder, Face, Landmarker
from openlfr.matching.similarity import to_template


def flip_fuse(embeddings: np.ndarray, mirrored: np.ndarray) -> np.ndarray:
    """One face's template direction from its chip's and its mirror image's embeddings
    (the mean of their unit templates)."""
    return (to_template(embeddings) + to_template(mirrored)) / 2.0


@dataclass
class FaceStage:
    """The chain's parts; built by :func:`build_stage` from settings and the model registry.

    ``landmarker`` is ``None`` when the detector gives the 5 points the model aligns on.
    """

    detector: Detector
    landmarker: Landmarker | None
    embedder: Embedder
    model: EmbedderEntry

    @property
    def model_id(self) -> str:
        """The id of the face model whose templates this chain makes."""
        return self.model.model_id


def build_stage(detector: str | None = None, backend: str | None = None, model: str | None = None) -> FaceStage:
    """Build the chain: the configured detector, the 5 points the face model aligns on, the
    model's aligner and embedder (see :mod:`openlfr.face.registry`).

    ``backend`` is ``cpu`` (ONNX Runtime), ``cuda`` (GPU), ``auto`` or ``dlib`` (dlib
    itself, the reference implementation of the dlib models, when it is installed).
    """
    from openlfr.face.detectors import make_detector
    from openlfr.face.shape_predictor import DlibLandmarker, ShapePredictor5

    settings = get_settings()
    backend = backend or settings.models.backend
    reg = registry()
    entry = reg.embedder(model or settings.models.face_model)
    det_name = detector or settings.models.detector
    det_entry = reg.detector(det_name)
    landmarker: Landmarker | None = None
    if entry.landmarks == ARCFACE5:
        if det_entry.landmarks != ARCFACE5:
            raise InputError(f"face model {entry.name} aligns on ArcFace's 5 points, which the {det_name} detector "
                             f"does not give: use a detector that does (yunet)")
    else:
        landmarker = DlibLandmarker() if backend == "dlib" else ShapePredictor5()
    found = make_detector(det_name, backend=backend) if det_name in ("hog", "mmod") else det_entry.factory(backend)
    return FaceStage(detector=found, landmarker=landmarker, embedder=entry.factory(backend), model=entry)


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

    def landmarks(self, image: np.ndarray, detections: list[Detection]) -> list[np.ndarray]:
        """The 5 points the model aligns on, for each detection (the detector's own, or dlib's)."""
        if self.stage.landmarker is not None:
            return self.stage.landmarker.landmarks(image, [d.box for d in detections])
        if any(d.landmarks is None for d in detections):
            raise InputError(f"face model {self.stage.model.name} needs detections with 5 points")
        return [np.asarray(d.landmarks, dtype=np.float32) for d in detections]

    def chip(self, image: np.ndarray, points: np.ndarray) -> np.ndarray:
        """One aligned face chip, the way the model expects it."""
        return self.stage.model.align(image, points)

    def align(self, image: np.ndarray, detections: list[Detection]) -> tuple[list[np.ndarray], np.ndarray]:
        """Landmarks and aligned chips ``(N, S, S, 3)`` for the given detections."""
        marks = self.landmarks(image, detections)
        return marks, np.stack([self.chip(image, m) for m in marks])

    def assess(self, points: np.ndarray, chip: np.ndarray):  # noqa: ANN201 - Quality
        """Quality of one face from its points and chip (the points' scheme is the model's)."""
        return assess(points, chip, self.policy, self.stage.model.landmarks)

    @property
    def model_id(self) -> str:
        """The id of the face model whose templates this analyzer makes."""
        return self.stage.model_id

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
        model_id = self.model_id
        return [
            Face(d, m, c, e, t, self.assess(m, c), model_id)
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
def default_analyzer(detector: str | None = None, backend: str | None = None, model: str | None = None) -> FaceAnalyzer:
    """A process-wide analyzer built from the settings (models load once)."""
    return FaceAnalyzer(build_stage(detector, backend, model))


def enrolment_template(image_bytes: bytes) -> tuple[np.ndarray, float, str]:
    """Template, quality score and face model id of the one face in an enrolment image (bytes),
    made with the configured face model.

    Raises :class:`~openlfr.errors.ImageError`, :class:`NoFaceError`,
    :class:`MultipleFacesError` or :class:`QualityError` with a one-line reason.
    """
    face = default_analyzer().enrol(load_image(image_bytes))
    return face.template, face.quality.score, face.model_id
