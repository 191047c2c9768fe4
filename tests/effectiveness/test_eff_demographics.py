"""Demographic differentials: the mechanics, on a labels file written for a few identities.

(LFW carries no demographic labels here; the groups below are arbitrary test labels.)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from openlfr.errors import InputError
from openlfr.evaluation import demographics


def test_wilson_interval_known_values():
    lo, hi = demographics.wilson(10, 100)
    assert lo == pytest.approx(0.0552, abs=1e-3) and hi == pytest.approx(0.1744, abs=1e-3)
    lo, hi = demographics.wilson(0, 50)
    assert lo == 0.0 and hi == pytest.approx(0.0714, abs=1e-3)


def test_rates_per_group_from_a_labels_file(tmp_path: Path):
    labels = tmp_path / "labels.csv"
    labels.write_text("image,group\nAnn,g1\nBob,g2\nCarl/Carl_0002.jpg,g2\nDora_0001.jpg,g1\n")
    groups = demographics.read_groups(labels)
    mated = [Path("/x/Ann/Ann_0002.jpg"), Path("/x/Ann/Ann_0003.jpg"), Path("/x/Bob/Bob_0002.jpg"),
             Path("/x/Carl/Carl_0002.jpg"), Path("/x/Eve/Eve_0002.jpg")]
    hits = np.array([0.9, 0.1, 0.9, -np.inf, 0.9])
    non_mated = [Path("/x/Dora/Dora_0001.jpg"), Path("/x/Bob2/Bob2_0001.jpg")]
    top = np.array([0.8, 0.2])
    d = demographics.differentials(0.5, mated, hits, non_mated, top, groups)
    by = {g.group: g for g in d.groups}
    assert (by["g1"].mated, by["g1"].misses, by["g1"].non_mated, by["g1"].false_alerts) == (2, 1, 1, 1)
    assert (by["g2"].mated, by["g2"].misses, by["g2"].non_mated) == (2, 1, 0)
    assert d.unlabelled_mated == 1 and d.unlabelled_non_mated == 1
    assert d.fnir_ratio == 1.0 and d.fpir_ratio is None  # g2 has no non-mated searches
    assert d.note


def test_bad_labels_file_is_one_clear_error(tmp_path: Path):
    bad = tmp_path / "bad.csv"
    bad.write_text("image,group\nAnn\n")
    with pytest.raises(InputError, match="row 1"):
        demographics.read_groups(bad)
    with pytest.raises(InputError):
        demographics.read_groups(tmp_path / "missing.csv")
