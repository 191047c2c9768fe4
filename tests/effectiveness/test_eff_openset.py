"""Open-set measures on small cases whose answers are known."""

from __future__ import annotations

import numpy as np

from openlfr.evaluation import openset


def test_search_ranks_mates_and_skips_unusable_probes():
    scores = np.array(
        [
            [0.9, 0.2, 0.1],  # mate 0 at rank 1
            [0.5, 0.7, 0.6],  # mate 2 at rank 2
            [0.3, 0.8, 0.1],  # not listed
            [0.9, 0.9, 0.9],  # unusable (refused)
        ]
    )
    s = openset.search(scores, np.array([0, 2, -1, 1]), np.array([True, True, True, False]))
    assert list(s.mate_rank) == [1, 2, 0, 0]
    assert s.top_score[2] == 0.8 and s.top_index[2] == 1
    assert np.isneginf(s.top_score[3]) and np.isneginf(s.mate_score[3])
    assert s.hit_score[0] == 0.9 and np.isneginf(s.hit_score[1])


def test_evaluate_counts_misses_at_the_threshold_set_on_non_mated_searches():
    # 1000 non-mated searches with top scores 0..0.999; 10 mated, hits at 0.95..0.999 or misses
    nm = openset.Searches(np.arange(1000) / 1000.0, np.zeros(1000, int), np.full(1000, -np.inf), np.zeros(1000, int))
    mate_scores = np.array([0.9995, 0.9985, 0.995, 0.991, 0.98, 0.97, 0.5, 0.4, 0.999, 0.3])
    ranks = np.array([1, 1, 1, 1, 1, 1, 1, 1, 2, 0])
    m = openset.Searches(mate_scores, np.zeros(10, int), mate_scores, ranks)
    r = openset.evaluate(m, nm, (0.01, 0.001))
    # FPIR 1%: 10 non-mated at or above t -> t just above 0.989; hits: 0.9995, 0.9985, 0.995, 0.991
    assert abs(r.thresholds["0.01"] - 0.989) < 1e-9
    assert r.fnir_at_fpir["0.01"] == 0.6
    # FPIR 0.1%: one non-mated (0.999) allowed -> t just above 0.998: hits 0.9995, 0.9985
    assert r.fnir_at_fpir["0.001"] == 0.8
    assert r.rank1 == 0.8 and r.cmc[0] == 0.8 and r.cmc[1] == 0.9 and r.cmc[-1] == 0.9


def test_det_curve_is_monotone_and_bootstrap_interval_brackets_the_estimate():
    rng = np.random.default_rng(0)
    hits = rng.normal(2.0, 1.0, 3000)
    nm = rng.normal(0.0, 1.0, 3000)
    fp, fn, th = openset.det_curve(hits, nm)
    assert np.all(np.diff(th) <= 0) and np.all(np.diff(fp) >= 0) and np.all(np.diff(fn) <= 0)
    lo, hi = openset.fnir_interval(hits, nm, 0.01, resamples=200)
    t = np.quantile(nm, 0.99)
    point = np.mean(hits < t)
    assert lo < point < hi and hi - lo < 0.2
    far, tar = openset.roc_curve(hits, nm)
    assert np.all(np.diff(far) >= 0) and np.all(np.diff(tar) >= 0)
