"""Exact top-k search of a large gallery, faster than sorting every score.

:func:`top_k` returns exactly what a stable sort of all scores (best first; equal scores in
index order) cut at ``k`` returns, without sorting them all: the ``k`` best entries of a
large gallery per probe (a retrospective, exact search). The gallery is scored block by block
(one matrix product per block for all probes, so a batch of probes reads the gallery once)
and only scores that can still be in the top ``k`` are kept. (The live matcher needs only
each face's best candidate: ``np.argmax``, in :meth:`openlfr.pipeline.camera.CameraPipeline._match`.)

The selection is exact: ties included, the same entries in the same order as the stable
sort of the same scores (``tests/matching/test_topk.py`` checks it with scores that every
BLAS computes exactly). The scores are :func:`openlfr.matching.similarity.similarity`'s,
computed block by block. A BLAS may round a product differently in the last bit (about
2e-7) depending on the shape of the call (one probe or a batch, a small block or a large
one), so blocks start at multiples of :data:`BLOCK_ALIGN` rows and hold at least
``block_rows`` rows: with OpenBLAS this gives the same bits as one call over the whole
gallery, and a gallery of under two blocks is scored in that one call.
"""

from __future__ import annotations

import numpy as np

from openlfr.matching.similarity import similarity

#: gallery blocks start at multiples of this many rows (see the module docstring)
BLOCK_ALIGN = 4096


def top_k(gallery: np.ndarray, probes: np.ndarray, k: int, *,
          block_rows: int = 16 * BLOCK_ALIGN) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` most similar gallery rows to each probe, exactly.

    ``gallery``: ``(N, D)`` unit templates; ``probes``: ``(D,)`` or ``(M, D)``. Returns
    ``(indices, scores)``, each ``(M, min(k, N))``: best first, equal scores in index order,
    as ``np.argsort(-similarity(probes, gallery), kind="stable", axis=1)[:, :k]`` gives.
    """
    gallery = np.asarray(gallery, dtype=np.float32)
    probes = np.atleast_2d(np.asarray(probes, dtype=np.float32))
    n, m = len(gallery), len(probes)
    k = max(0, min(k, n))
    if k == 0:
        return np.zeros((m, 0), np.int64), np.zeros((m, 0), np.float32)
    block_rows = max(BLOCK_ALIGN, block_rows // BLOCK_ALIGN * BLOCK_ALIGN)
    best_idx = [np.zeros(0, np.int64) for _ in range(m)]
    best_score = [np.zeros(0, np.float32) for _ in range(m)]
    # per probe, a score every member of its final top k reaches (its k-th best so far)
    floor = np.full(m, -np.inf, np.float32)
    # the last block takes the ragged tail (a tiny matrix product may take another BLAS path)
    starts = list(range(0, max(n - block_rows, 0) + 1, block_rows))
    for start, stop in zip(starts, [*starts[1:], n], strict=True):
        scores = similarity(probes, gallery[start:stop])
        cut = floor.copy()
        short = np.fromiter((len(b) < k for b in best_idx), bool, m)
        if short.any() and scores.shape[1] >= k:
            # this block alone holds k scores at least this high: nothing lower can be in the top k
            cut[short] = -np.partition(-scores[short], k - 1, axis=1)[:, k - 1]
        rows, cols = np.nonzero(scores >= cut[:, None])  # ties at the cut kept: index order decides
        bounds = np.searchsorted(rows, np.arange(m + 1))
        for p in range(m):
            lo, hi = bounds[p], bounds[p + 1]
            if lo == hi:
                continue
            idx = np.concatenate([best_idx[p], cols[lo:hi].astype(np.int64) + start])
            sc = np.concatenate([best_score[p], scores[p, cols[lo:hi]]])
            keep = np.lexsort((idx, -sc))[:k]  # score descending, then index ascending
            best_idx[p], best_score[p] = idx[keep], sc[keep]
            if len(keep) == k:
                floor[p] = best_score[p][-1]
    return np.stack(best_idx), np.stack(best_score)


def top_of_scores(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best columns of each row of a score matrix, exactly as :func:`top_k` selects
    them (best first, equal scores in column order): for scores already computed, such as a
    subject's best over its several templates. Returns ``(indices, scores)``, each ``(M, min(k, N))``."""
    scores = np.atleast_2d(scores)
    m, n = scores.shape
    k = max(0, min(k, n))
    idx = np.zeros((m, k), np.int64)
    if k == 0:
        return idx, np.zeros((m, 0), scores.dtype)
    kth = -np.partition(-scores, k - 1, axis=1)[:, k - 1]
    for p in range(m):
        cand = np.flatnonzero(scores[p] >= kth[p])  # ties at the k-th kept: column order decides
        idx[p] = cand[np.lexsort((cand, -scores[p, cand]))[:k]]
    return idx, np.take_along_axis(scores, idx, axis=1)
