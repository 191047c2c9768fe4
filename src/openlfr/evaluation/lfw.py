"""LFW-layout evaluations: View 2 verification pairs and a 1:N watchlist experiment.

A folder in LFW layout holds one sub-folder per person with ``<Name>_<NNNN>.jpg`` images.
LFW images are centred on the labelled person, so where several faces are found the one
nearest the image centre is used (the protocol's convention, not a tuning choice).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from openlfr.errors import InputError
from openlfr.evaluation import metrics
from openlfr.face.types import Detection
from openlfr.matching.similarity import similarity

if TYPE_CHECKING:
    from openlfr.evaluation.facecache import FaceData


@dataclass
class Pair:
    """One View 2 pair and the fold it belongs to."""

    a: Path
    b: Path
    same: bool
    fold: int


def image_path(root: Path, name: str, number: int) -> Path:
    return root / name / f"{name}_{number:04d}.jpg"


def read_pairs(pairs_file: Path, root: Path) -> list[Pair]:
    """Parse an LFW ``pairs.txt`` (first line: folds and pairs per class per fold)."""
    try:
        lines = Path(pairs_file).read_text().split("\n")
        n_folds, n_per = (int(x) for x in lines[0].split())
    except (OSError, ValueError) as exc:
        raise InputError(f"{pairs_file}: not an LFW pairs file ({exc})") from exc
    pairs: list[Pair] = []
    body = [ln.split() for ln in lines[1:] if ln.strip()]
    if len(body) < n_folds * 2 * n_per:
        raise InputError(f"{pairs_file}: expected {n_folds * 2 * n_per} pairs, found {len(body)}")
    for k, parts in enumerate(body[: n_folds * 2 * n_per]):
        fold = k // (2 * n_per)
        if len(parts) == 3:
            pairs.append(Pair(image_path(root, parts[0], int(parts[1])), image_path(root, parts[0], int(parts[2])),
                              True, fold))
        elif len(parts) == 4:
            pairs.append(Pair(image_path(root, parts[0], int(parts[1])), image_path(root, parts[2], int(parts[3])),
                              False, fold))
        else:
            raise InputError(f"{pairs_file}: bad line {k + 2}: {' '.join(parts)}")
    return pairs


def people(root: Path) -> dict[str, list[Path]]:
    """Each person's images, sorted."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: not a folder")
    out = {d.name: sorted(d.glob("*.jpg")) for d in sorted(root.iterdir()) if d.is_dir()}
    return {k: v for k, v in out.items() if v}


@dataclass
class TemplateSet:
    """Templates of a list of images; rows of failed images are NaN."""

    paths: list[Path]
    templates: np.ndarray
    qualities: np.ndarray
    failed: list[str] = field(default_factory=list)

    def row(self) -> dict[Path, int]:
        return {p: i for i, p in enumerate(self.paths)}

    @classmethod
    def from_face_data(cls, data: FaceData, flip: bool) -> TemplateSet:
        """Templates (flip-averaged or not) of :mod:`openlfr.evaluation.facecache` data."""
        return cls(
            list(data.paths),
            data.templates(flip),
            np.asarray(data.quality, np.float32),
            [str(p) for p, ok in zip(data.paths, data.found) if not ok],
        )


def central(detections: list[Detection], shape: tuple[int, ...]) -> Detection:
    """The detection whose box centre is nearest the image centre."""
    cy, cx = shape[0] / 2.0, shape[1] / 2.0
    return min(detections, key=lambda d: (d.box.center[0] - cx) ** 2 + (d.box.center[1] - cy) ** 2)


def pair_scores(ts: TemplateSet, pairs: list[Pair]) -> np.ndarray:
    """Similarity of each pair; ``-inf`` where either image had no face."""
    row = ts.row()
    a = ts.templates[[row[p.a] for p in pairs]]
    b = ts.templates[[row[p.b] for p in pairs]]
    s = np.einsum("ij,ij->i", a, b)
    return np.where(np.isnan(s), -np.inf, s)


@dataclass
class VerificationResult:
    """LFW View 2 verification figures."""

    pairs: int
    folds: int
    accuracy_mean: float
    accuracy_std: float
    fold_accuracies: list[float]
    thresholds: list[float]
    roc_auc: float
    tar_at_far_0_1pct: float
    threshold_at_far_0_1pct: float
    images_without_face: int


def verification(ts: TemplateSet, pairs: list[Pair]) -> VerificationResult:
    """Accuracy with leave-one-fold-out thresholds, ROC AUC and TAR at FAR 0.1%."""
    scores = pair_scores(ts, pairs)
    same = np.array([p.same for p in pairs])
    folds = np.array([p.fold for p in pairs])
    cv = metrics.cross_validated_accuracy(scores, same, folds)
    tar, t = metrics.tar_at_far(scores[same], scores[~same], 0.001)
    used = {p.a for p in pairs} | {p.b for p in pairs}
    return VerificationResult(
        pairs=len(pairs),
        folds=len(np.unique(folds)),
        accuracy_mean=cv.accuracy_mean,
        accuracy_std=cv.accuracy_std,
        fold_accuracies=cv.fold_accuracies,
        thresholds=cv.thresholds,
        roc_auc=metrics.roc_auc(scores[same], scores[~same]),
        tar_at_far_0_1pct=tar,
        threshold_at_far_0_1pct=t,
        images_without_face=sum(1 for f in ts.failed if Path(f) in used),
    )


@dataclass
class Watchlist1N:
    """The 1:N split of an LFW-layout folder."""

    gallery: list[tuple[str, Path]]
    mated: list[tuple[str, Path]]
    non_mated: list[tuple[str, Path]]


def split_1n(folder: dict[str, list[Path]]) -> Watchlist1N:
    """Gallery: first image of each person with 2+ images; mated: their other images;
    non-mated: people with a single image."""
    gallery: list[tuple[str, Path]] = []
    mated: list[tuple[str, Path]] = []
    non_mated: list[tuple[str, Path]] = []
    for name, imgs in folder.items():
        if len(imgs) >= 2:
            gallery.append((name, imgs[0]))
            mated.extend((name, p) for p in imgs[1:])
        else:
            non_mated.append((name, imgs[0]))
    return Watchlist1N(gallery, mated, non_mated)


@dataclass
class IdentificationResult:
    """Open-set 1:N figures."""

    gallery_size: int
    gallery_without_face: int
    mated_searches: int
    non_mated_searches: int
    rank1: float
    fnir_at_fpir_1pct: float
    fnir_at_fpir_0_1pct: float
    threshold_at_fpir_1pct: float
    threshold_at_fpir_0_1pct: float


def identification(ts: TemplateSet, split: Watchlist1N) -> IdentificationResult:
    """Search every mated and non-mated probe against the gallery."""
    row = ts.row()
    g_names = np.array([n for n, _ in split.gallery])
    g_t = ts.templates[[row[p] for _, p in split.gallery]]
    ok = ~np.isnan(g_t[:, 0])
    g_names, g_t = g_names[ok], g_t[ok]

    def search(probes: list[tuple[str, Path]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        t = ts.templates[[row[p] for _, p in probes]]
        missing = np.isnan(t[:, 0])
        s = similarity(np.nan_to_num(t), g_t)
        top = s.argmax(axis=1)
        top_score = np.where(missing, -np.inf, s[np.arange(len(s)), top])
        return s, top, top_score

    s_m, top_m, top_score_m = search(split.mated)
    true_names = np.array([n for n, _ in split.mated])
    rank1 = (g_names[top_m] == true_names) & np.isfinite(top_score_m)
    _, _, top_score_n = search(split.non_mated)
    os_ = metrics.open_set(top_score_m, rank1, top_score_n)
    return IdentificationResult(
        gallery_size=int(ok.sum()),
        gallery_without_face=int((~ok).sum()),
        mated_searches=len(split.mated),
        non_mated_searches=len(split.non_mated),
        rank1=os_.rank1,
        fnir_at_fpir_1pct=os_.fnir_at_fpir[0.01],
        fnir_at_fpir_0_1pct=os_.fnir_at_fpir[0.001],
        threshold_at_fpir_1pct=os_.thresholds[0.01],
        threshold_at_fpir_0_1pct=os_.thresholds[0.001],
    )
