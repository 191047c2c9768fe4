"""Open-set (watchlist) identification measures: searches, FNIR(FPIR), DET and CMC curves.

A watchlist search is open-set: most faces a camera sees belong to nobody on the list. As in
NIST FRVT's 1:N reports, at a threshold ``T``

* a *mated* search (the person is on the list) is a **miss** unless the listed person is the
  rank-1 candidate with a score ``>= T`` — FNIR is the miss rate;
* a *non-mated* search is a **false positive** if its best score is ``>= T`` — FPIR.

A search that produced no usable face (none detected, or refused by quality gating) enters
as score ``-inf``: a miss when mated, no false alert when non-mated, and is counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from openlfr.evaluation.metrics import threshold_at_rate

DEFAULT_FPIRS: tuple[float, ...] = (0.01, 0.001)


@dataclass
class Searches:
    """Outcome of searching probes against a gallery (one row per probe).

    ``top_score``/``top_index`` describe the rank-1 candidate; ``mate_score`` and
    ``mate_rank`` (1-based) the probe's true identity in the gallery, where it has one
    (``-inf`` and 0 otherwise). Refused or faceless probes have ``top_score = -inf``.
    """

    top_score: np.ndarray
    top_index: np.ndarray
    mate_score: np.ndarray
    mate_rank: np.ndarray

    def __len__(self) -> int:
        return len(self.top_score)

    @property
    def hit_score(self) -> np.ndarray:
        """The score at which a mated search is a hit: its mate's score if rank 1, else ``-inf``."""
        return np.where(self.mate_rank == 1, self.mate_score, -np.inf)


def search(scores: np.ndarray, mate_index: np.ndarray | None = None, usable: np.ndarray | None = None) -> Searches:
    """Summarise a probe x gallery score matrix.

    ``mate_index[i]`` is the gallery column of probe ``i``'s identity (``-1``: not listed);
    ``usable[i]`` False marks a probe without a usable face (its search yields nothing).
    """
    scores = np.asarray(scores, np.float64)
    n, m = scores.shape
    usable = np.ones(n, bool) if usable is None else np.asarray(usable, bool)
    mate_index = np.full(n, -1) if mate_index is None else np.asarray(mate_index)
    if m == 0:
        nothing = np.full(n, -np.inf)
        return Searches(nothing, np.full(n, -1), nothing.copy(), np.zeros(n, np.int64))
    top = scores.argmax(axis=1)
    top_score = np.where(usable, scores[np.arange(n), top], -np.inf)
    has_mate = (mate_index >= 0) & usable
    mate_score = np.full(n, -np.inf)
    mate_rank = np.zeros(n, np.int64)
    if has_mate.any():
        rows = np.flatnonzero(has_mate)
        ms = scores[rows, mate_index[rows]]
        mate_score[rows] = ms
        # rank = 1 + number of gallery entries scoring strictly higher than the mate
        mate_rank[rows] = 1 + (scores[rows] > ms[:, None]).sum(axis=1)
    return Searches(top_score, np.where(usable, top, -1), mate_score, mate_rank)


@dataclass
class OpenSetResult:
    """Open-set accuracy of one configuration on one set of searches."""

    mated: int
    non_mated: int
    refused_mated: int
    refused_non_mated: int
    rank1: float
    fnir_at_fpir: dict[str, float]
    thresholds: dict[str, float]
    cmc: list[float] = field(default_factory=list)  # identification rate at rank 1..len

    @property
    def refusal_rate_mated(self) -> float:
        return self.refused_mated / max(self.mated, 1)


def rate_key(rate: float) -> str:
    """A stable dictionary key for a rate (``0.001`` -> ``"0.001"``)."""
    return f"{rate:g}"


def fnir_at(hit_scores: np.ndarray, threshold: float) -> float:
    """FNIR at a threshold (hit scores from :attr:`Searches.hit_score`)."""
    return float(np.mean(np.asarray(hit_scores) < threshold)) if len(hit_scores) else float("nan")


def fpir_at(non_mated_top: np.ndarray, threshold: float) -> float:
    """FPIR at a threshold."""
    return float(np.mean(np.asarray(non_mated_top) >= threshold)) if len(non_mated_top) else float("nan")


def cmc(mate_rank: np.ndarray, max_rank: int = 20) -> list[float]:
    """Cumulative match characteristic: share of mated searches with the mate at rank <= k."""
    r = np.asarray(mate_rank)
    if len(r) == 0:
        return []
    return [float(np.mean((r >= 1) & (r <= k))) for k in range(1, max_rank + 1)]


def evaluate(mated: Searches, non_mated: Searches, fpirs: tuple[float, ...] = DEFAULT_FPIRS,
             max_rank: int = 20) -> OpenSetResult:
    """FNIR at each FPIR (threshold set on these non-mated searches), rank-1 and CMC."""
    hits = mated.hit_score
    fnir, ths = {}, {}
    for rate in fpirs:
        t = threshold_at_rate(non_mated.top_score, rate)
        ths[rate_key(rate)] = t
        fnir[rate_key(rate)] = fnir_at(hits, t)
    return OpenSetResult(
        mated=len(mated),
        non_mated=len(non_mated),
        refused_mated=int(np.sum(~np.isfinite(mated.top_score))),
        refused_non_mated=int(np.sum(~np.isfinite(non_mated.top_score))),
        rank1=float(np.mean(mated.mate_rank == 1)) if len(mated) else float("nan"),
        fnir_at_fpir=fnir,
        thresholds=ths,
        cmc=cmc(mated.mate_rank, max_rank),
    )


def det_curve(hit_scores: np.ndarray, non_mated_top: np.ndarray,
              points: int = 200) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(FPIR, FNIR, threshold) over thresholds spanning the non-mated top scores.

    Thresholds are taken just above the non-mated scores (where FPIR changes), as
    :func:`openlfr.evaluation.metrics.threshold_at_rate` sets them, so the curve passes
    through the table's operating points; thinned to at most ``points`` values.
    """
    nm = np.sort(np.asarray(non_mated_top, np.float64)[np.isfinite(non_mated_top)])[::-1]
    if len(nm) == 0:
        return np.zeros(0), np.zeros(0), np.zeros(0)
    idx = np.unique(np.round(np.geomspace(1, len(nm), min(points, len(nm)))).astype(int) - 1)
    ths = np.nextafter(nm[idx], np.inf)
    fp = np.array([fpir_at(non_mated_top, t) for t in ths])
    fn = np.array([fnir_at(hit_scores, t) for t in ths])
    return fp, fn, ths


def roc_curve(genuine: np.ndarray, impostor: np.ndarray, points: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """(FAR, TAR) of a verification experiment at thresholds spread over the impostor scores."""
    g = np.asarray(genuine, np.float64)
    imp = np.sort(np.asarray(impostor, np.float64))[::-1]
    if len(imp) == 0 or len(g) == 0:
        return np.zeros(0), np.zeros(0)
    idx = np.unique(np.round(np.geomspace(1, len(imp), min(points, len(imp)))).astype(int) - 1)
    ths = imp[idx]
    far = np.array([np.mean(imp >= t) for t in ths])
    tar = np.array([np.mean(g >= t) for t in ths])
    return far, tar


def fnir_interval(
    hit_scores: np.ndarray, non_mated_top: np.ndarray, rate: float, resamples: int = 500, seed: int = 0
) -> tuple[float, float]:
    """95% bootstrap interval of FNIR at FPIR ``rate`` (mated and non-mated searches
    resampled independently; the threshold is re-set on each resample)."""
    hits = np.asarray(hit_scores, np.float64)
    nm = np.asarray(non_mated_top, np.float64)
    if len(hits) == 0 or len(nm) == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    values = np.empty(resamples)
    for b in range(resamples):
        t = threshold_at_rate(nm[rng.integers(0, len(nm), len(nm))], rate)
        values[b] = np.mean(hits[rng.integers(0, len(hits), len(hits))] < t)
    lo, hi = np.percentile(values, [2.5, 97.5])
    return float(lo), float(hi)
