"""Exact 1:N search: ranking, per-subject best template, thresholds."""

from __future__ import annotations

import numpy as np

from openlfr.matching.index import TemplateIndex
from openlfr.matching.similarity import fuse, similarity, to_template


def _rand(n: int, seed: int = 0) -> np.ndarray:
    return to_template(np.random.default_rng(seed).normal(size=(n, 128)))


def test_templates_are_unit_length_and_scale_is_cosine():
    t = _rand(3)
    assert np.allclose(np.linalg.norm(t, axis=1), 1.0, atol=1e-6)
    s = similarity(t, t)
    assert np.allclose(np.diag(s), 1.0, atol=1e-6)
    assert np.all(s <= 1.0 + 1e-6)


def test_search_ranks_the_mate_first_and_uses_best_template_per_subject():
    g = _rand(50)
    ids = [f"s{i // 2}" for i in range(50)]  # 25 subjects, two templates each
    index = TemplateIndex(ids, ids, g)
    assert len(index) == 25 and index.template_count == 50
    probe = to_template(g[7] + 0.05 * _rand(1, 1)[0])
    cands = index.search(probe, k=3)[0]
    assert cands[0].subject_id == "s3" and cands[0].rank == 1
    assert cands[0].score == np.max(similarity(probe, g[6:8]))
    assert [c.score for c in cands] == sorted((c.score for c in cands), reverse=True)
    assert len({c.subject_id for c in cands}) == 3


def test_threshold_filters_candidates_and_empty_index_returns_nothing():
    g = _rand(10)
    ids = [str(i) for i in range(10)]
    index = TemplateIndex(ids, ids, g)
    assert index.search(_rand(1, 5), k=5, threshold=0.99) == [[]]
    assert index.search(g[2], k=1, threshold=0.99)[0][0].subject_id == "2"
    empty = TemplateIndex([], [], np.zeros((0, 128)))
    assert empty.search(g[:2], k=3) == [[], []]


def test_fuse_is_mean_direction():
    t = _rand(4)
    f = fuse(t)
    assert np.isclose(np.linalg.norm(f), 1.0, atol=1e-6)
    assert np.all(similarity(f, t) > 0)


def test_there_is_no_local_watchlist_file():
    """Named templates are kept only in a deployment's governed, encrypted snapshot."""
    import importlib

    import pytest

    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("openlfr.matching.local_watchlist")
