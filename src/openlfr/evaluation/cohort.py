"""An impostor cohort: faces of people who are not on the watchlist, used to calibrate.

A cohort folder is either in LFW layout (one sub-folder per person; several images of one
person give the mated scores from which the miss rate is predicted) or flat (every image a
different person). Nothing is bundled: cohort images are supplied by the operator.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from openlfr.errors import InputError
from openlfr.evaluation import calibration, facecache
from openlfr.face.analyzer import FaceAnalyzer
from openlfr.face.types import Detector

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".pgm", ".webp"}


def cohort_images(folder: Path) -> tuple[list[Path], list[str]]:
    """Image paths and the person of each (sub-folder name, or file stem in a flat folder)."""
    folder = Path(folder).resolve()
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder")
    paths, names = [], []
    for entry in sorted(folder.iterdir()):
        if entry.is_dir():
            for p in sorted(entry.iterdir()):
                if p.suffix.lower() in IMAGE_SUFFIXES:
                    paths.append(p)
                    names.append(entry.name)
        elif entry.suffix.lower() in IMAGE_SUFFIXES:
            paths.append(entry)
            names.append(entry.stem)
    if not paths:
        raise InputError(f"{folder}: no images found")
    # the same global order as an LFW-layout evaluation, so cached face data is shared
    pairs = sorted(zip(paths, names))
    return [p for p, _ in pairs], [n for _, n in pairs]


def load_cohort(
    folder: Path,
    analyzer: FaceAnalyzer,
    cache_dir: Path | None = None,
    fallback: Detector | None = None,
    progress: Callable[[int], None] | None = None,
) -> facecache.FaceData:
    """Face data of every cohort image (cached)."""
    from openlfr.evaluation.effectiveness import pipeline_key

    paths, _ = cohort_images(folder)
    data = facecache.face_data(paths, analyzer, cache_dir, pipeline_key(analyzer, fallback), fallback, progress)
    if data.found.sum() < 2:
        raise InputError(f"{folder}: fewer than two faces found; a cohort needs many")
    return data


def _names(data: facecache.FaceData) -> list[str]:
    # sub-folder name for LFW layout; a flat folder's files all share a parent, so use the stem
    parents = {p.parent for p in data.paths}
    return [p.stem if len(parents) == 1 else p.parent.name for p in data.paths]


def calibrate_size(data: facecache.FaceData, flip: bool, watchlist_size: int, rate: float) -> calibration.Calibration:
    """Threshold for a watchlist of ``watchlist_size`` people (size method)."""
    t = data.templates(flip)
    names = _names(data)
    return calibration.calibrate_for_size(
        calibration.impostor_pair_scores(t, names), watchlist_size, rate, calibration.mated_pair_scores(t, names)
    )


def calibrate_against(data: facecache.FaceData, flip: bool, index: object, rate: float) -> calibration.Calibration:
    """Threshold from the cohort searched against an actual watchlist index (watchlist method)."""
    t = data.templates(flip)
    t = t[~np.isnan(t[:, 0])]
    top = index.subject_scores(t).max(axis=1)  # type: ignore[attr-defined]
    names = _names(data)
    mated = calibration.mated_pair_scores(data.templates(flip), names)
    return calibration.calibrate_for_watchlist(top, len(index), rate, mated)  # type: ignore[arg-type]


def configured_calibrator() -> Callable[[int, float], dict] | None:
    """The calibrator for deployment requests from ``OPENLFR_CALIBRATION_COHORT``, or ``None``
    when no cohort is configured (a request with a target rate is then refused, saying so)."""
    from openlfr.config import get_settings
    from openlfr.face.analyzer import default_analyzer

    settings = get_settings()
    if settings.models.calibration_cohort is None:
        return None
    return size_calibrator(settings.models.calibration_cohort, default_analyzer(), settings.data_dir / "eval-cache")


def size_calibrator(
    folder: Path, analyzer: FaceAnalyzer, cache_dir: Path | None = None, fallback: Detector | None = None
) -> Callable[[int, float], dict]:
    """A calibrator for deployment requests: ``(watchlist size, target rate) -> record``
    (see :func:`openlfr.governance.deployments.request`), from a cohort folder."""
    data = load_cohort(folder, analyzer, cache_dir, fallback)

    def calibrate(size: int, rate: float) -> dict:
        record = calibrate_size(data, analyzer.flip, size, rate).to_dict()
        record["cohort_faces"] = int(data.found.sum())
        record["model_id"] = analyzer.model_id  # a threshold holds only on its own model's scale
        return record

    return calibrate


def configured_floor() -> Callable[[str, int], float | None] | None:
    """For authorisation: ``(model id, watchlist size) -> FPIR-1% threshold`` on the cohort in
    ``OPENLFR_CALIBRATION_COHORT`` (``None`` for another model than the cohort's, or when no
    cohort is configured; the model's own table then applies)."""
    from openlfr.face.analyzer import default_analyzer

    calibrate = configured_calibrator()
    if calibrate is None:
        return None
    model = default_analyzer().model_id

    def floor(model_id: str, size: int) -> float | None:
        return float(calibrate(size, 0.01)["threshold"]) if model_id == model else None

    return floor
