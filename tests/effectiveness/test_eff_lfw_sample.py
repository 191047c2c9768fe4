"""End to end on a small sample of real LFW faces: ``openlfr evaluate openset`` with a report,
group labels and plots, and ``openlfr calibrate`` on the same faces as a cohort.

The group labels are arbitrary, written here for a few identities to test the mechanics
(LFW has no demographic labels in this project).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from openlfr.cli.effectiveness import register


@pytest.fixture(scope="module")
def cli() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


@pytest.fixture(scope="module")
def sample(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30 people with 3+ images (up to 4 each) and 100 people with one image, as symlinks."""
    root = tmp_path_factory.mktemp("lfw-sample") / "lfw"
    people = sorted(d for d in (data_dir / "lfw").iterdir() if d.is_dir())
    many = [d for d in people if len(list(d.glob("*.jpg"))) >= 3][::10][:30]
    single = [d for d in people if len(list(d.glob("*.jpg"))) == 1][::10][:100]
    for d in many + single:
        (root / d.name).mkdir(parents=True)
        for img in sorted(d.glob("*.jpg"))[:4]:
            (root / d.name / img.name).symlink_to(img)
    return root


def _not_blank(png: Path) -> None:
    import matplotlib.image as mpimg

    assert png.stat().st_size > 10_000, f"{png.name} is suspiciously small"
    img = mpimg.imread(png)[..., :3]
    non_white = np.mean(np.any(img < 0.95, axis=-1))
    colours = len(np.unique((img.reshape(-1, 3) * 255).astype(np.uint8), axis=0))
    assert non_white > 0.02 and colours > 20, f"{png.name} looks blank"


def test_openset_report_calibrate(cli: typer.Typer, sample: Path, tmp_path: Path):
    runner = CliRunner()
    labels = tmp_path / "groups.csv"
    people = sorted(p.name for p in sample.iterdir())
    labels.write_text("person,group\n" + "".join(f"{n},{'g1' if k % 2 else 'g2'}\n" for k, n in enumerate(people[:60])))
    cache = tmp_path / "cache"
    out = tmp_path / "report"
    res = runner.invoke(
        cli,
        ["evaluate", "openset", "--folder", str(sample), "--groups", str(labels), "--report", str(out),
         "--splits", "2", "--cache-dir", str(cache), "--json"],
    )
    assert res.exit_code == 0, res.output
    result = json.loads(res.stdout)
    assert result["people"] == 130 and result["images_without_face"] <= 3
    assert f"evaluated 130 people on {result['images']} images" in res.stderr  # the summary, on stderr
    configs = [r["config"] for r in result["gains"]]
    assert configs[:4] == ["plain", "flip", "quality gate", "cohort AS-norm (k=200)"]
    plain = result["gains"][0]
    assert plain["gallery"] >= 28 and plain["non_mated"] == 100 and plain["rank1"] > 0.8
    assert {p["method"] for p in result["calibration_check"]["plain"]["pooled"]} == {"size", "watchlist"}
    demo = result["demographics"]["at_fpir"]["0.01"]
    assert {g["group"] for g in demo["groups"]} == {"g1", "g2"}
    assert all(0 <= g["fnir_ci95"][0] <= g["fnir"] <= g["fnir_ci95"][1] <= 1 for g in demo["groups"])
    assert (out / "report.html").is_file() and json.loads((out / "report.json").read_text())["people"] == 130
    html = (out / "report.html").read_text()
    assert set(result["plots"]) == {"det", "scores_plain", "scores_recommended", "cmc", "roc"}
    for name in result["plots"].values():
        assert name in html
        _not_blank(out / name)

    # the same faces as a calibration cohort (face data comes from the cache)
    res = runner.invoke(
        cli,
        ["calibrate", "--cohort", str(sample), "--watchlist-size", "20", "--false-alert-rate", "0.01",
         "--cache-dir", str(cache), "--json"],
    )
    assert res.exit_code == 0, res.output
    cal = json.loads(res.stdout)
    assert "calibrated on " in res.stderr and " cohort faces of " in res.stderr
    assert cal["method"] == "size" and 0.0 < cal["threshold"] < 1.0 and 0 <= cal["predicted_fnir"] <= 1
    assert cal["per_comparison_rate"] == pytest.approx(1 - 0.99 ** (1 / 20))

    res = runner.invoke(cli, ["calibrate", "--cohort", str(sample), "--cache-dir", str(cache)])
    assert res.exit_code == 2 and "--watchlist-size is required" in res.output
