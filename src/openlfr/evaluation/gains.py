"""Accuracy gains with the same model, each switchable so it can be measured on and off.

* **flip** — average each face's embedding with that of its mirror image.
* **quality gating** — refuse probe faces that fail the quality policy's physical limits
  (:mod:`openlfr.face.quality`); a refused mated search counts as a miss and is reported.
  At enrolment, prefer images that pass the policy (what ``enrol`` does in practice).
* **cohort normalisation** — adaptive symmetric score normalisation (AS-norm, Matějka et al.
  2017, as used in speaker verification): each score is standardised against the top-``k``
  scores of the probe and of the gallery entry against an *impostor cohort*, faces of people
  on neither side. Faces that resemble everyone ("hubs") stop raising false alerts.
* **template fusion** — one template from several enrolment images (or a track's frames),
  the quality-weighted mean direction.

Cohort discipline: the cohort must be disjoint from the gallery and from the searches it
normalises. :func:`cohort_halves` splits the non-listed people in two by a hash of their
names; each search is normalised with the half it is not in.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from openlfr.evaluation import openset
from openlfr.evaluation.facecache import FaceData
from openlfr.matching.similarity import to_template

DEFAULT_COHORT_TOP_K = 200  # a common AS-norm choice; not tuned on the evaluation data


@dataclass(frozen=True)
class Config:
    """One pipeline configuration; each field switches one gain."""

    flip: bool = False
    quality_gate: bool = False
    cohort_norm: bool = False
    cohort_top_k: int = DEFAULT_COHORT_TOP_K
    enrol_images: int = 1  # >1: fuse up to this many enrolment images per person

    def label(self) -> str:
        parts = []
        if self.flip:
            parts.append("flip")
        if self.quality_gate:
            parts.append("quality gate")
        if self.cohort_norm:
            parts.append(f"cohort AS-norm (k={self.cohort_top_k})")
        if self.enrol_images > 1:
            parts.append(f"fuse {self.enrol_images} enrolment images")
        return " + ".join(parts) or "plain"


@dataclass
class Split:
    """A watchlist experiment on a labelled folder.

    ``gallery``: (person, enrolment images); ``mated``: (person, image) searches of listed
    people; ``non_mated``: (person, image) searches of people not on the list.
    """

    gallery: list[tuple[str, list[Path]]]
    mated: list[tuple[str, Path]]
    non_mated: list[tuple[str, Path]]


def split_folder(folder: dict[str, list[Path]], enrol_images: int = 1, probes_from: int = 1) -> Split:
    """Gallery: people with 2+ images, enrolled with up to ``enrol_images`` of their first
    images (always leaving one to search with); mated searches: images from index
    ``max(probes_from, enrolled)`` on; non-mated: people with one image.

    With ``enrol_images=1, probes_from=1`` this is the split of
    :func:`openlfr.evaluation.lfw.split_1n`. Comparing fusion of ``k`` images with a single
    image on the same searches: ``split_folder(f, 1, k)`` versus ``split_folder(f, k, k)``.
    """
    gallery: list[tuple[str, list[Path]]] = []
    mated: list[tuple[str, Path]] = []
    non_mated: list[tuple[str, Path]] = []
    for name, imgs in folder.items():
        if len(imgs) >= 2:
            e = min(enrol_images, len(imgs) - 1)
            start = min(max(probes_from, e), len(imgs) - 1)
            gallery.append((name, list(imgs[:e])))
            mated.extend((name, p) for p in imgs[start:])
        else:
            non_mated.append((name, imgs[0]))
    return Split(gallery, mated, non_mated)


def stable_half(name: str, salt: str = "") -> int:
    """0 or 1 from a hash of a name (and a salt, for repeated random splits): a split that
    does not depend on list order."""
    return hashlib.sha256((salt + name).encode()).digest()[0] & 1


def fuse(templates: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Quality-weighted mean direction of several unit templates (unit length)."""
    t = np.asarray(templates, np.float64)
    w = np.ones(len(t)) if weights is None else np.maximum(np.asarray(weights, np.float64), 1e-3)
    return to_template((t * w[:, None]).sum(axis=0)).astype(np.float32)


def _top_k_stats(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of each row's ``k`` highest scores."""
    k = max(1, min(k, scores.shape[1]))
    top = -np.partition(-scores, k - 1, axis=1)[:, :k]
    return top.mean(axis=1), np.maximum(top.std(axis=1), 1e-6)


def as_norm(raw: np.ndarray, probe_cohort: np.ndarray, gallery_cohort: np.ndarray, k: int) -> np.ndarray:
    """Adaptive symmetric normalisation of a probe x gallery score matrix.

    ``probe_cohort``: probe x cohort scores; ``gallery_cohort``: gallery x cohort scores.
    """
    mp, sp = _top_k_stats(probe_cohort, k)
    mg, sg = _top_k_stats(gallery_cohort, k)
    return 0.5 * ((raw - mp[:, None]) / sp[:, None] + (raw - mg[None, :]) / sg[None, :])


@dataclass
class Run:
    """Searches of one configuration, ready for :func:`openlfr.evaluation.openset.evaluate`."""

    config: Config
    mated: openset.Searches
    non_mated: openset.Searches
    mated_names: list[str]
    non_mated_paths: list[Path]
    mated_paths: list[Path]
    gallery_size: int


class Experiment:
    """Runs configurations on one folder's face data (computed once, see ``facecache``)."""

    def __init__(self, folder: dict[str, list[Path]], data: FaceData) -> None:
        self.folder = folder
        self.data = data
        self.row = data.row()

    def _templates(self, paths: list[Path], flip: bool) -> np.ndarray:
        return self.data.subset(paths).templates(flip)

    def _usable(self, paths: list[Path], gate: bool) -> np.ndarray:
        idx = [self.row[p] for p in paths]
        ok = self.data.found[idx]
        return ok & self.data.acceptable[idx] if gate else ok

    def gallery_templates(self, split: Split, cfg: Config) -> tuple[list[str], np.ndarray]:
        """Names and fused templates of the people that could be enrolled."""
        names, temps = [], []
        for name, imgs in split.gallery:
            usable = self._usable(imgs, False)
            if cfg.quality_gate and self._usable(imgs, True).any():
                usable = self._usable(imgs, True)  # enrol only images that pass the policy
            if not usable.any():
                continue
            chosen = [p for p, u in zip(imgs, usable) if u]
            t = self._templates(chosen, cfg.flip)
            w = self.data.quality[[self.row[p] for p in chosen]]
            names.append(name)
            temps.append(fuse(t, w) if len(chosen) > 1 else t[0])
        dim = self.data.embeddings.shape[1]
        return names, np.stack(temps) if temps else np.zeros((0, dim), np.float32)

    def run(self, cfg: Config, split: Split | None = None) -> Run:
        """All mated and non-mated searches of one configuration."""
        split = split or split_folder(self.folder, cfg.enrol_images)
        g_names, g_t = self.gallery_templates(split, cfg)
        col = {n: i for i, n in enumerate(g_names)}
        cohorts = self._cohorts(split, cfg.flip) if cfg.cohort_norm else None

        def searches(probes: list[tuple[str, Path]]) -> openset.Searches:
            paths = [p for _, p in probes]
            t = np.nan_to_num(self._templates(paths, cfg.flip))
            usable = self._usable(paths, cfg.quality_gate)
            raw = t @ g_t.T
            if cohorts is not None:
                # each probe is normalised with the cohort half that does not contain it
                half = np.array([1 - stable_half(n) for n, _ in probes])
                scores = np.empty_like(raw)
                for h, c in enumerate(cohorts):
                    rows = half == h
                    if rows.any() and len(c):
                        scores[rows] = as_norm(raw[rows], t[rows] @ c.T, g_t @ c.T, cfg.cohort_top_k)
                    elif rows.any():
                        scores[rows] = raw[rows]
                raw = scores
            mate = np.array([col.get(n, -1) for n, _ in probes], dtype=np.int64)
            return openset.search(raw, mate, usable)

        return Run(
            config=cfg,
            mated=searches(split.mated),
            non_mated=searches(split.non_mated),
            mated_names=[n for n, _ in split.mated],
            non_mated_paths=[p for _, p in split.non_mated],
            mated_paths=[p for _, p in split.mated],
            gallery_size=len(g_names),
        )

    def _cohorts(self, split: Split, flip: bool) -> list[np.ndarray]:
        """Templates of the two halves of the non-listed people (faces found only)."""
        out = []
        for h in (0, 1):
            paths = [p for n, p in split.non_mated if stable_half(n) == h]
            ok = self._usable(paths, False)
            out.append(self._templates([p for p, u in zip(paths, ok) if u], flip).astype(np.float32))
        return out


@dataclass
class GainRow:
    """One line of the gains table."""

    config: str
    settings: dict
    gallery: int
    mated: int
    non_mated: int
    rank1: float
    fnir_at_fpir_1pct: float
    fnir_at_fpir_0_1pct: float
    refusal_rate_mated: float
    refusal_rate_non_mated: float
    threshold_at_fpir_0_1pct: float


def row_of(run: Run) -> GainRow:
    """Summarise a run as a table row."""
    r = openset.evaluate(run.mated, run.non_mated)
    return GainRow(
        config=run.config.label(),
        settings=asdict(run.config),
        gallery=run.gallery_size,
        mated=r.mated,
        non_mated=r.non_mated,
        rank1=r.rank1,
        fnir_at_fpir_1pct=r.fnir_at_fpir["0.01"],
        fnir_at_fpir_0_1pct=r.fnir_at_fpir["0.001"],
        refusal_rate_mated=r.refused_mated / max(r.mated, 1),
        refusal_rate_non_mated=r.refused_non_mated / max(r.non_mated, 1),
        threshold_at_fpir_0_1pct=r.thresholds["0.001"],
    )


PLAIN = Config()


def single_gain_configs(best: Config | None = None) -> list[Config]:
    """The plain pipeline, each gain alone, and all the kept gains together."""
    configs = [
        PLAIN,
        replace(PLAIN, flip=True),
        replace(PLAIN, quality_gate=True),
        replace(PLAIN, cohort_norm=True),
    ]
    if best is not None:
        configs.append(best)
    return configs


def gains_table(exp: Experiment, configs: list[Config]) -> list[GainRow]:
    """Rows for each configuration on the standard split."""
    return [row_of(exp.run(c)) for c in configs]


def fusion_table(exp: Experiment, base: Config, k: int = 2) -> list[GainRow]:
    """Enrolment with one image versus ``k`` fused images, on the same mated searches
    (images from index ``k`` on of people with 2+ images)."""
    one = exp.run(replace(base, enrol_images=1), split_folder(exp.folder, 1, k))
    fused_cfg = replace(base, enrol_images=k)
    many = exp.run(fused_cfg, split_folder(exp.folder, k, k))
    return [row_of(one), row_of(many)]
