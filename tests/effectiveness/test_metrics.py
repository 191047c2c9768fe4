"""The accuracy measures, checked on cases whose answers are known."""

from __future__ import annotations

import numpy as np

from openlfr.evaluation import metrics


def test_auc_perfect_random_and_ties():
    assert metrics.roc_auc(np.array([3.0, 4.0]), np.array([1.0, 2.0])) == 1.0
    assert metrics.roc_auc(np.array([1.0, 2.0]), np.array([3.0, 4.0])) == 0.0
    assert metrics.roc_auc(np.array([1.0]), np.array([1.0])) == 0.5
    rng = np.random.default_rng(1)
    assert abs(metrics.roc_auc(rng.normal(size=4000), rng.normal(size=4000)) - 0.5) < 0.03


def test_threshold_at_rate_allows_exactly_that_many_impostors():
    imp = np.arange(1000, dtype=float)
    t = metrics.threshold_at_rate(imp, 0.01)
    assert np.sum(imp >= t) == 10
    t = metrics.threshold_at_rate(imp, 0.0)
    assert np.sum(imp >= t) == 0


def test_cross_validated_accuracy_separable_and_noisy():
    folds = np.repeat(np.arange(5), 20)
    same = np.tile(np.r_[np.ones(10, bool), np.zeros(10, bool)], 5)
    scores = np.where(same, 0.9, 0.1) + np.linspace(0, 0.01, 100)
    assert metrics.cross_validated_accuracy(scores, same, folds).accuracy_mean == 1.0
    flipped = scores.copy()
    flipped[0] = 0.0  # one genuine pair scored like an impostor
    cv = metrics.cross_validated_accuracy(flipped, same, folds)
    assert cv.accuracy_mean == 1.0 - 1 / 100


def test_open_set_counts_wrong_rank1_and_failures_as_misses():
    non_mated = np.linspace(0, 0.5, 1000)
    mated = np.array([0.9, 0.9, 0.9, 0.2, -np.inf])
    correct = np.array([True, True, False, True, False])
    r = metrics.open_set(mated, correct, non_mated, fpirs=(0.01,))
    assert r.rank1 == 3 / 5
    assert r.fnir_at_fpir[0.01] == 3 / 5  # wrong identity, below threshold, no face
