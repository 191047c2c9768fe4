"""Threshold calibration: from a target false-alert rate to a threshold, with predictions.

A deployment states how many false alerts it tolerates *per face searched* (a template compared
against the watchlist) (FPIR, e.g. 1 in 10,000). The threshold follows from the scores of faces
that are *not* on the watchlist:

* ``watchlist`` method — the watchlist's templates are known: search a cohort of non-listed
  faces against it and put the threshold where the target share of cohort searches would
  alert (exactly the quantity to control; resolution ``1 / cohort size``);
* ``size`` method — only the watchlist size ``N`` is known: with the per-comparison
  false-match rate ``FMR(t)`` of impostor pairs, ``FPIR(t) ≈ 1 - (1 - FMR(t))^N``
  (comparisons treated as independent), so the threshold is set at
  ``FMR = 1 - (1 - R)^(1/N)``. Where the impostor scores are too few to reach that rate
  directly, their upper tail is extrapolated with an exponential fitted to the highest
  scores (peaks over threshold), and the result says so.

The expected miss rate (FNIR) is predicted from mated scores: the share of same-person
scores below the threshold (a lower bound for 1:N, where a different person may also
outrank the mate; with thresholds this strict that is rare).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from openlfr.errors import InputError
from openlfr.evaluation.metrics import threshold_at_rate

MIN_EXCEEDANCES = 20  # below this many impostor scores above the threshold, extrapolate the tail
TAIL_SIZE = 500  # highest impostor scores used to fit the exponential tail


@dataclass
class Calibration:
    """A calibrated operating point and what it predicts."""

    method: str  # "watchlist" or "size"
    watchlist_size: int
    target_false_alert_rate: float  # FPIR: alerts per non-listed face searched
    threshold: float
    per_comparison_rate: float | None  # FMR aimed at (size method)
    predicted_fnir: float | None
    impostor_scores: int
    extrapolated: bool
    note: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def _check_rate(rate: float) -> None:
    if not 0.0 < rate < 1.0:
        raise InputError(f"false-alert rate must be between 0 and 1 (exclusive), got {rate}")


def per_comparison_rate(watchlist_size: int, false_alert_rate: float) -> float:
    """FMR per comparison giving ``false_alert_rate`` per search of ``watchlist_size`` entries."""
    _check_rate(false_alert_rate)
    if watchlist_size < 1:
        raise InputError(f"watchlist size must be at least 1, got {watchlist_size}")
    # -expm1(log1p(-R)/N) = 1 - (1-R)^(1/N), accurate for tiny rates
    return float(-np.expm1(np.log1p(-false_alert_rate) / watchlist_size))


def threshold_at_fmr(impostor: np.ndarray, fmr: float) -> tuple[float, bool]:
    """Threshold with ``fmr`` of impostor scores at or above it; ``(threshold, extrapolated)``.

    Empirical where at least :data:`MIN_EXCEEDANCES` scores lie above it; otherwise an
    exponential tail is fitted to the top :data:`TAIL_SIZE` scores
    (``P(s >= u + x) = p_u * exp(-x / mean excess)``) and solved for ``fmr``.
    """
    imp = np.asarray(impostor, np.float64)
    imp = imp[np.isfinite(imp)]
    if len(imp) == 0:
        raise InputError("no impostor scores to calibrate from")
    if fmr * len(imp) >= MIN_EXCEEDANCES or len(imp) <= TAIL_SIZE:
        return threshold_at_rate(imp, fmr), False
    top = np.sort(imp)[-(TAIL_SIZE + 1) :]
    u = top[0]
    mean_excess = max(float(np.mean(top[1:] - u)), 1e-9)
    p_u = TAIL_SIZE / len(imp)
    return float(u + mean_excess * np.log(p_u / fmr)), True


def fmr_at(impostor: np.ndarray, threshold: float) -> float:
    """Share of impostor scores at or above a threshold (tail model beyond the data)."""
    imp = np.asarray(impostor, np.float64)
    imp = imp[np.isfinite(imp)]
    k = int(np.sum(imp >= threshold))
    if k >= MIN_EXCEEDANCES or len(imp) <= TAIL_SIZE:
        return k / len(imp)
    top = np.sort(imp)[-(TAIL_SIZE + 1) :]
    u = top[0]
    mean_excess = max(float(np.mean(top[1:] - u)), 1e-9)
    return float(TAIL_SIZE / len(imp) * np.exp(-(threshold - u) / mean_excess))


def predicted_fpir(impostor: np.ndarray, threshold: float, watchlist_size: int) -> float:
    """FPIR expected at ``threshold`` for a watchlist of ``watchlist_size`` (size model)."""
    return float(-np.expm1(watchlist_size * np.log1p(-fmr_at(impostor, threshold))))


def _fnir(mated: np.ndarray | None, threshold: float) -> float | None:
    if mated is None or len(mated) == 0:
        return None
    m = np.asarray(mated, np.float64)
    return float(np.mean(m < threshold))


def calibrate_for_size(
    impostor: np.ndarray, watchlist_size: int, false_alert_rate: float, mated: np.ndarray | None = None
) -> Calibration:
    """Threshold for a watchlist of a given size from per-comparison impostor scores."""
    fmr = per_comparison_rate(watchlist_size, false_alert_rate)
    t, extrapolated = threshold_at_fmr(impostor, fmr)
    n = int(np.isfinite(np.asarray(impostor, np.float64)).sum())
    note = (
        f"only {fmr * n:.1f} impostor scores expected above the threshold: tail extrapolated, "
        "supply a larger cohort for a measured value"
        if extrapolated
        else ""
    )
    return Calibration("size", watchlist_size, false_alert_rate, t, fmr, _fnir(mated, t), n, extrapolated, note)


def calibrate_for_watchlist(
    cohort_top_scores: np.ndarray, watchlist_size: int, false_alert_rate: float, mated: np.ndarray | None = None
) -> Calibration:
    """Threshold from the best scores of non-listed cohort faces searched against the watchlist."""
    _check_rate(false_alert_rate)
    top = np.asarray(cohort_top_scores, np.float64)
    top = top[np.isfinite(top)]
    if len(top) == 0:
        raise InputError("no cohort searches to calibrate from")
    t = threshold_at_rate(top, false_alert_rate)
    note = ""
    if false_alert_rate * len(top) < 5:
        note = (
            f"{len(top)} cohort faces resolve rates down to about {5 / len(top):.2g}: "
            "the threshold for this target is set by the few highest cohort scores"
        )
    return Calibration("watchlist", watchlist_size, false_alert_rate, t, None, _fnir(mated, t), len(top), False, note)


def impostor_pair_scores(templates: np.ndarray, labels: list[str] | np.ndarray, limit: int = 20_000_000) -> np.ndarray:
    """Scores of every pair of faces with different labels (upper triangle), at most ``limit``."""
    t = np.asarray(templates, np.float32)
    ok = ~np.isnan(t[:, 0])
    t, lab = t[ok], np.asarray(labels)[ok]
    out = []
    total = 0
    for i in range(0, len(t), 512):
        s = t[i : i + 512] @ t.T
        rows = np.arange(i, min(i + 512, len(t)))
        mask = (np.arange(len(t))[None, :] > rows[:, None]) & (lab[rows][:, None] != lab[None, :])
        out.append(s[mask])
        total += out[-1].size
        if total >= limit:
            break
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def mated_pair_scores(templates: np.ndarray, labels: list[str] | np.ndarray) -> np.ndarray:
    """Scores of every pair of faces with the same label."""
    t = np.asarray(templates, np.float32)
    ok = ~np.isnan(t[:, 0])
    t, lab = t[ok], np.asarray(labels)[ok]
    out = []
    for name in np.unique(lab):
        idx = np.flatnonzero(lab == name)
        if len(idx) > 1:
            s = t[idx] @ t[idx].T
            out.append(s[np.triu_indices(len(idx), 1)])
    return np.concatenate(out) if out else np.zeros(0, np.float32)
