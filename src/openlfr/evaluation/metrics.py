"""Accuracy measures for verification (1:1) and identification (1:N) experiments."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from openlfr.errors import InputError


def roc_auc(genuine: np.ndarray, impostor: np.ndarray) -> float:
    """Area under the ROC curve: P(genuine score > impostor score), ties counting half."""
    g = np.asarray(genuine, np.float64)
    i = np.asarray(impostor, np.float64)
    scores = np.concatenate([g, i])
    order = scores.argsort(kind="mergesort")
    ranks = np.empty(len(scores), np.float64)
    ranks[order] = np.arange(1, len(scores) + 1)
    # average ranks of ties
    sorted_scores = scores[order]
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    for f, c in zip(first, counts):
        if c > 1:
            ranks[order[f : f + c]] = ranks[order[f : f + c]].mean()
    return float((ranks[: len(g)].sum() - len(g) * (len(g) + 1) / 2) / (len(g) * len(i)))


def threshold_at_rate(impostor: np.ndarray, rate: float) -> float:
    """The lowest threshold at which at most ``rate`` of impostor scores are ``>=`` it."""
    imp = np.sort(np.asarray(impostor, np.float64))[::-1]
    allowed = int(np.floor(rate * len(imp)))
    if allowed >= len(imp):
        return float(imp[-1])
    # any threshold just above the (allowed+1)-th highest impostor score
    return float(np.nextafter(imp[allowed], np.inf))


def tar_at_far(genuine: np.ndarray, impostor: np.ndarray, far: float) -> tuple[float, float]:
    """(true-accept rate, threshold) at a false-accept rate."""
    t = threshold_at_rate(impostor, far)
    return float(np.mean(np.asarray(genuine) >= t)), t


def best_threshold(genuine: np.ndarray, impostor: np.ndarray) -> float:
    """Threshold maximising accuracy on these pairs (midpoint between adjacent scores)."""
    scores = np.unique(np.concatenate([genuine, impostor]))
    finite = scores[np.isfinite(scores)]
    cands = np.concatenate([[finite[0] - 1e-6], (finite[1:] + finite[:-1]) / 2, [finite[-1] + 1e-6]])
    g = np.sort(genuine)
    i = np.sort(impostor)
    correct = (len(g) - np.searchsorted(g, cands, side="left")) + np.searchsorted(i, cands, side="left")
    return float(cands[int(np.argmax(correct))])


@dataclass
class CrossValidated:
    """Accuracy under leave-one-fold-out threshold selection."""

    accuracy_mean: float
    accuracy_std: float
    fold_accuracies: list[float]
    thresholds: list[float]


def cross_validated_accuracy(scores: np.ndarray, same: np.ndarray, folds: np.ndarray) -> CrossValidated:
    """Pick the threshold on all other folds, measure accuracy on each fold in turn."""
    if len(np.unique(folds)) < 2:
        raise InputError("cross-validated accuracy needs pairs from at least 2 folds")
    accs, ths = [], []
    for f in np.unique(folds):
        train, test = folds != f, folds == f
        t = best_threshold(scores[train & same], scores[train & ~same])
        pred = scores[test] >= t
        accs.append(float(np.mean(pred == same[test])))
        ths.append(t)
    return CrossValidated(float(np.mean(accs)), float(np.std(accs)), accs, ths)


@dataclass
class OpenSet:
    """Open-set identification results at fixed false-positive identification rates."""

    rank1: float
    fnir_at_fpir: dict[float, float]
    thresholds: dict[float, float]
    mated: int
    non_mated: int


def open_set(
    mated_true_scores: np.ndarray,
    mated_rank1_correct: np.ndarray,
    non_mated_top_scores: np.ndarray,
    fpirs: tuple[float, ...] = (0.01, 0.001),
) -> OpenSet:
    """FNIR at each FPIR (NIST FRVT style, rank 1).

    A mated search is a miss at threshold T unless its mate is the rank-1 candidate with a
    score ``>= T``; a non-mated search is a false positive if its top score is ``>= T``.
    Failed searches (no face) enter as ``-inf`` scores: a miss, or no false alert.
    """
    hit_scores = np.where(mated_rank1_correct, mated_true_scores, -np.inf)
    fnir, ths = {}, {}
    for rate in fpirs:
        t = threshold_at_rate(non_mated_top_scores, rate)
        ths[rate] = t
        fnir[rate] = float(np.mean(hit_scores < t))
    return OpenSet(
        rank1=float(np.mean(mated_rank1_correct)),
        fnir_at_fpir=fnir,
        thresholds=ths,
        mated=len(mated_true_scores),
        non_mated=len(non_mated_top_scores),
    )
