"""The gains' mechanics on synthetic face data (the LFW measurements are in docs/effectiveness.md)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from openlfr.evaluation import gains
from openlfr.evaluation.facecache import FaceData


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_split_folder_matches_the_standard_split_and_fusion_keeps_searches_equal():
    folder = {"a": [Path("a1"), Path("a2"), Path("a3")], "b": [Path("b1"), Path("b2")], "c": [Path("c1")]}
    s = gains.split_folder(folder)
    assert s.gallery == [("a", [Path("a1")]), ("b", [Path("b1")])]
    assert [p for _, p in s.mated] == [Path("a2"), Path("a3"), Path("b2")] and s.non_mated == [("c", Path("c1"))]
    one, two = gains.split_folder(folder, 1, 2), gains.split_folder(folder, 2, 2)
    assert one.mated == two.mated == [("a", Path("a3")), ("b", Path("b2"))]
    assert two.gallery[0] == ("a", [Path("a1"), Path("a2")]) and two.gallery[1] == ("b", [Path("b1")])


def test_fuse_weights_by_quality():
    t = np.array([[1.0, 0.0], [0.0, 1.0]])
    f = gains.fuse(t, np.array([3.0, 1.0]))
    assert abs(np.linalg.norm(f) - 1) < 1e-6 and f[0] > f[1] > 0


def test_as_norm_demotes_a_hub_probe():
    # every face shares a common direction; the hub probe *is* that direction, so its raw
    # score with any listed face beats a genuine (noisy) mate's score
    raw_hub_wins = norm_mate_wins = 0
    for seed in range(30):
        rng = np.random.default_rng(seed)
        dim = 128
        common = _unit(rng.normal(size=dim))
        cohort = _unit(_unit(rng.normal(size=(300, dim))) + common)
        gallery = _unit(_unit(rng.normal(size=(5, dim))) + common)
        mate = _unit(gallery[2] + 1.2 * _unit(rng.normal(size=dim)))
        probes = np.vstack([common, mate])
        raw = probes @ gallery.T
        norm = gains.as_norm(raw, probes @ cohort.T, gallery @ cohort.T, 50)
        raw_hub_wins += raw[0].max() > raw[1, 2]
        norm_mate_wins += norm[1, 2] > norm[0].max()
    assert raw_hub_wins >= 27
    assert norm_mate_wins >= 25


def _synthetic(people: int, singles: int, rng: np.random.Generator) -> tuple[dict, FaceData]:
    dim = 32
    folder, paths, emb = {}, [], []
    for i in range(people):
        centre = rng.normal(size=dim)
        imgs = [Path(f"p{i}/{k}.jpg") for k in range(3)]
        folder[f"p{i}"] = imgs
        for _ in imgs:
            paths.append(None)
            emb.append(centre + 0.6 * rng.normal(size=dim))
        paths[-3:] = imgs
    for j in range(singles):
        p = Path(f"s{j}/0.jpg")
        folder[f"s{j}"] = [p]
        paths.append(p)
        emb.append(rng.normal(size=dim))
    e = np.asarray(emb, np.float32)
    fd = FaceData(paths, e, e + 0.1 * rng.normal(size=e.shape).astype(np.float32), np.ones(len(e), np.float32),
                  np.ones(len(e), bool), np.full(len(e), "hog"))
    fd.acceptable[1] = False  # one refused probe
    return folder, fd


def test_experiment_runs_every_configuration_and_counts_refusals():
    rng = np.random.default_rng(3)
    folder, fd = _synthetic(40, 300, rng)
    exp = gains.Experiment(folder, fd)
    rows = gains.gains_table(exp, gains.single_gain_configs(gains.Config(flip=True, cohort_norm=True)))
    assert [r.config for r in rows][:2] == ["plain", "flip"]
    assert all(r.gallery == 40 and r.mated == 80 and r.non_mated == 300 for r in rows)
    gated = rows[2]
    assert gated.refusal_rate_mated == 1 / 80 and rows[0].refusal_rate_mated == 0
    assert all(0 <= r.fnir_at_fpir_0_1pct <= 1 and r.rank1 > 0.8 for r in rows)
    fusion = gains.fusion_table(exp, gains.PLAIN, 2)
    assert fusion[0].mated == fusion[1].mated == 40
    assert fusion[1].rank1 >= fusion[0].rank1
