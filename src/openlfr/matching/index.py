"""Exact 1:N search of probe templates against a watchlist's templates (numpy).

A subject may have several templates (several enrolment images); a subject's score is its
best template's similarity (see :mod:`openlfr.matching.similarity` for the scale).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from openlfr.matching.similarity import similarity
from openlfr.matching.topk import top_k, top_of_scores


@dataclass(frozen=True)
class Candidate:
    """One watchlist subject proposed for a probe."""

    subject_id: str
    label: str
    score: float
    rank: int


class TemplateIndex:
    """Templates of watchlist subjects, searchable by cosine similarity."""

    def __init__(self, subject_ids: Sequence[str], labels: Sequence[str], templates: np.ndarray) -> None:
        templates = np.asarray(templates, dtype=np.float32)
        templates = templates.reshape(len(subject_ids), templates.shape[-1] if templates.size else 0)
        if len(subject_ids) != len(labels):
            raise ValueError("subject_ids and labels differ in length")
        # Group rows by subject once, so search can take each subject's best row.
        order = np.argsort(np.asarray(subject_ids, dtype=object), kind="stable")
        ids = [subject_ids[i] for i in order]
        self._templates = templates[order]
        starts = [i for i in range(len(ids)) if i == 0 or ids[i] != ids[i - 1]]
        self._starts = np.asarray(starts, dtype=np.int64)
        self.subject_ids = [ids[i] for i in starts]
        self.labels = [labels[order[i]] for i in starts]

    def __len__(self) -> int:
        """Number of subjects (not templates)."""
        return len(self.subject_ids)

    @property
    def template_count(self) -> int:
        return len(self._templates)

    def subject_scores(self, probes: np.ndarray) -> np.ndarray:
        """``(M, subjects)`` best similarity of each probe to each subject."""
        probes = np.atleast_2d(np.asarray(probes, dtype=np.float32))
        if not len(self.subject_ids):
            return np.zeros((len(probes), 0), np.float32)
        scores = similarity(probes, self._templates)
        return np.maximum.reduceat(scores, self._starts, axis=1)

    def search(
        self, probes: np.ndarray, k: int = 5, threshold: float | None = None
    ) -> list[list[Candidate]]:
        """Top-``k`` subjects per probe, best first (equal scores in subject-id order); only
        those ``>= threshold`` if given. Exact: with one template per subject the gallery is
        searched block by block without scoring it all at once (:func:`~openlfr.matching.topk.top_k`),
        else each subject's best score is taken first."""
        probes = np.atleast_2d(np.asarray(probes, dtype=np.float32))
        if len(self._starts) == len(self._templates):  # one template per subject
            top, scores = top_k(self._templates, probes, k)
        else:
            top, scores = top_of_scores(self.subject_scores(probes), k)
        return [[Candidate(self.subject_ids[j], self.labels[j], float(score), rank + 1)
                 for rank, (j, score) in enumerate(zip(row, row_scores, strict=True))
                 if threshold is None or score >= threshold]
                for row, row_scores in zip(top, scores, strict=True)]
