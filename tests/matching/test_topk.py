"""The fast exact selections return exactly what a plain stable sort of every score returns."""

from __future__ import annotations

import numpy as np
import pytest

from openlfr.matching.similarity import similarity, to_template
from openlfr.matching.topk import BLOCK_ALIGN, top_k


def _unit(n: int, seed: int, dim: int = 128) -> np.ndarray:
    return to_template(np.random.default_rng(seed).normal(size=(n, dim)))


def _plain(gallery: np.ndarray, probes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The plain search: every score, sorted (stable: equal scores in index order), cut at k."""
    scores = similarity(np.atleast_2d(probes), gallery)
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(scores, order, axis=1)


def _same(got: tuple[np.ndarray, np.ndarray], want: tuple[np.ndarray, np.ndarray], bits: bool = False) -> None:
    """Same entries in the same order; scores bit for bit where every BLAS computes them exactly
    (``bits``), else to float32 rounding (a BLAS may round a block's product in another last bit)."""
    assert got[0].dtype == np.int64 and got[0].shape == want[0].shape
    assert np.array_equal(got[0], want[0])
    if bits:
        assert np.array_equal(got[1], want[1])
    else:
        assert np.allclose(got[1], want[1], rtol=0, atol=1e-6)


@pytest.mark.parametrize("probes", [1, 7])
@pytest.mark.parametrize("k", [1, 10, 100])
def test_top_k_is_the_plain_search_on_random_templates(probes: int, k: int) -> None:
    gallery = _unit(3 * BLOCK_ALIGN + 123, 1)  # several blocks and a ragged last one
    p = _unit(probes, 2)
    p[0] = to_template(gallery[5000] + 0.1 * p[0])  # a mated probe: its mate must come first
    got = top_k(gallery, p, k, block_rows=BLOCK_ALIGN)
    _same(got, _plain(gallery, p, k))
    assert got[0][0, 0] == 5000


def test_top_k_of_a_single_probe_vector_matches_its_matrix_vector_scores() -> None:
    gallery = _unit(2 * BLOCK_ALIGN + 7, 3)
    probe = _unit(1, 4)[0]
    idx, sc = top_k(gallery, probe, 5, block_rows=BLOCK_ALIGN)
    order = np.argsort(-(gallery @ probe), kind="stable")[:5]  # the plain single-probe search
    assert np.array_equal(idx[0], order) and np.allclose(sc[0], (gallery @ probe)[order], rtol=0, atol=1e-6)


def test_ties_are_broken_by_index_across_blocks_exactly_as_a_stable_sort() -> None:
    # entries in eighths: every product and sum is exact, so equal rows give exactly equal
    # scores whatever order the BLAS adds in; many ties straddle the block boundaries and the cut
    rng = np.random.default_rng(5)
    base = rng.integers(-4, 5, size=(6, 16)).astype(np.float32) / 8
    gallery = base[rng.integers(0, 6, size=3 * BLOCK_ALIGN + 50)]
    probes = rng.integers(-4, 5, size=(4, 16)).astype(np.float32) / 8
    for k in (1, 3, 50, 5000, len(gallery) + 10):
        got = top_k(gallery, probes, k, block_rows=BLOCK_ALIGN)
        _same(got, _plain(gallery, probes, k), bits=True)
        assert got[0].shape == (4, min(k, len(gallery)))


def test_blocks_smaller_than_k_and_an_empty_gallery() -> None:
    gallery = _unit(3 * BLOCK_ALIGN + 3, 6)
    p = _unit(2, 7)
    _same(top_k(gallery, p, BLOCK_ALIGN + 1, block_rows=BLOCK_ALIGN), _plain(gallery, p, BLOCK_ALIGN + 1))
    idx, sc = top_k(np.zeros((0, 128), np.float32), p, 5)
    assert idx.shape == sc.shape == (2, 0)
