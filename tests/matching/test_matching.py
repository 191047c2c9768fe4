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


def _reference(index: TemplateIndex, probes: np.ndarray, k: int) -> list[list[tuple[str, float]]]:
    """Every subject's score, stably sorted (equal scores in subject order), cut at k."""
    scores = index.subject_scores(probes)
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return [[(index.subject_ids[j], float(row[j])) for j in top] for row, top in zip(scores, order, strict=True)]


def _found(index: TemplateIndex, probes: np.ndarray, k: int) -> list[list[tuple[str, float]]]:
    return [[(c.subject_id, c.score) for c in cands] for cands in index.search(probes, k=k)]


def test_search_is_the_stable_sort_of_every_subject_with_one_or_several_templates():
    g = _rand(500, 3)
    probes = np.vstack([to_template(g[7] + 0.2 * _rand(1, 4)[0]), _rand(4, 5)])
    single = TemplateIndex([f"s{i:03d}" for i in range(500)], ["x"] * 500, g)
    several = TemplateIndex([f"s{i // 3:03d}" for i in range(500)], ["x"] * 500, g)  # 3 templates a subject
    for index in (single, several):
        for k in (1, 10, 600):
            got, want = _found(index, probes, k), _reference(index, probes, k)
            assert [[s for s, _ in row] for row in got] == [[s for s, _ in row] for row in want]
            assert np.allclose([x for row in got for _, x in row], [x for row in want for _, x in row], atol=1e-6)
    assert _found(single, probes[:1], 1)[0][0][0] == "s007"


def test_equal_scores_at_the_cut_are_taken_in_subject_order_every_time():
    # five subjects with the same template: every probe scores them equally; k=2 cuts among them
    same = np.repeat(_rand(1, 6), 5, axis=0)
    others = _rand(20, 7)
    ids = [f"t{i}" for i in (4, 0, 3, 1, 2)] + [f"u{i:02d}" for i in range(20)]
    for templates in (np.vstack([same, others]), np.vstack([same, same, others])):  # one, then two rows each
        n_ids = ids if len(templates) == 25 else [*ids[:5], *ids[:5], *ids[5:]]
        index = TemplateIndex(n_ids, ["x"] * len(n_ids), templates)
        for _ in range(3):
            assert [c.subject_id for c in index.search(same[0], k=2)[0]] == ["t0", "t1"]
