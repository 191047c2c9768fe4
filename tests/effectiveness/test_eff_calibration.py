"""Calibration: per-comparison rates, tail extrapolation, and watchlists of random faces."""

from __future__ import annotations

import numpy as np
import pytest

from openlfr.errors import InputError
from openlfr.evaluation import calibration


def test_per_comparison_rate_inverts_the_watchlist_formula():
    fmr = calibration.per_comparison_rate(1000, 1e-3)
    assert abs((1 - (1 - fmr) ** 1000) - 1e-3) < 1e-12
    assert calibration.per_comparison_rate(1, 0.01) == pytest.approx(0.01)
    with pytest.raises(InputError):
        calibration.per_comparison_rate(10, 0.0)
    with pytest.raises(InputError):
        calibration.per_comparison_rate(0, 0.01)


def test_exponential_tail_extrapolates_beyond_the_data():
    rng = np.random.default_rng(1)
    imp = rng.exponential(1.0, 200_000)  # P(s >= t) = exp(-t): the answer is known
    t, extrapolated = calibration.threshold_at_fmr(imp, 1e-7)
    assert extrapolated and abs(t - np.log(1e7)) < 0.5
    t, extrapolated = calibration.threshold_at_fmr(imp, 1e-3)
    assert not extrapolated and abs(t - np.log(1e3)) < 0.2
    assert calibration.fmr_at(imp, np.log(1e7)) == pytest.approx(1e-7, rel=0.5)


def _faces(rng: np.random.Generator, n: int, dim: int = 32) -> np.ndarray:
    x = rng.normal(size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_calibrated_threshold_holds_on_a_new_watchlist_and_new_faces():
    rng = np.random.default_rng(2)
    cohort = _faces(rng, 3000)
    imp = calibration.impostor_pair_scores(cohort, [str(i) for i in range(len(cohort))])
    assert len(imp) == 3000 * 2999 // 2
    cal = calibration.calibrate_for_size(imp, 100, 0.01)
    assert cal.method == "size" and not cal.extrapolated
    watchlist, probes = _faces(rng, 100), _faces(rng, 20000)
    observed = np.mean((probes @ watchlist.T).max(axis=1) >= cal.threshold)
    assert 0.5 * 0.01 <= observed <= 2 * 0.01
    # the watchlist method on the actual watchlist
    cal2 = calibration.calibrate_for_watchlist((cohort @ watchlist.T).max(axis=1), 100, 0.01)
    observed2 = np.mean((probes @ watchlist.T).max(axis=1) >= cal2.threshold)
    assert 0.5 * 0.01 <= observed2 <= 2 * 0.01


def test_predicted_fnir_and_mated_pairs():
    t = np.array([[1, 0], [1, 0], [0, 1], [0.6, 0.8]], np.float32)
    mated = calibration.mated_pair_scores(t, ["a", "a", "b", "b"])
    assert sorted(np.round(mated, 3)) == [0.8, 1.0]
    cal = calibration.calibrate_for_watchlist(np.linspace(0, 0.5, 100), 2, 0.1, mated)
    assert cal.predicted_fnir == 0.0
    with pytest.raises(InputError):
        calibration.calibrate_for_watchlist(np.array([]), 2, 0.1)
