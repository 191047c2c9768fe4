"""On real LFW pairs, same-person pairs score above different-person pairs."""

from __future__ import annotations

import numpy as np

from openlfr.evaluation import lfw as ev
from openlfr.evaluation import metrics
from openlfr.evaluation.facecache import compute_face_data
from openlfr.face.analyzer import default_analyzer


def test_genuine_pairs_outscore_impostor_pairs(data_dir):
    pairs = ev.read_pairs(data_dir / "lfw_pairs.txt", data_dir / "lfw")
    assert len(pairs) == 3000 and {p.fold for p in pairs} == set(range(5))
    # 60 same and 60 different pairs from fold 1
    sample = [p for p in pairs if p.fold == 0 and p.same][:60] + [p for p in pairs if p.fold == 0 and not p.same][:60]
    paths = sorted({p.a for p in sample} | {p.b for p in sample})
    ts = ev.TemplateSet.from_face_data(compute_face_data(paths, default_analyzer()), flip=True)
    scores = ev.pair_scores(ts, sample)
    same = np.array([p.same for p in sample])
    assert len(ts.failed) <= 2
    assert np.median(scores[same]) > np.median(scores[~same]) + 0.1
    assert metrics.roc_auc(scores[same], scores[~same]) > 0.97
    t = metrics.best_threshold(scores[same], scores[~same])
    assert np.mean((scores >= t) == same) > 0.95
