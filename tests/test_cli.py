"""The command line on real faces: enrol, identify, scan, and every bad input refused cleanly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def run(args: list[str], home: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, OPENLFR_DATA_DIR=str(home))
    return subprocess.run(
        [sys.executable, "-m", "openlfr.cli", *args], env=env, capture_output=True, text=True, timeout=600
    )


def assert_clean_error(proc: subprocess.CompletedProcess, fragment: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert fragment in lines[0]
    assert "Traceback" not in proc.stderr + proc.stdout


@pytest.fixture()
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def test_scan_alerts_on_enrolled_person_and_not_on_stranger(data_dir: Path, home: Path):
    clip = data_dir / "video" / "short_hamilton_clip.mp4"
    refs = data_dir / "video" / "references"

    # Only the person who is not in the clip enrolled: no alert at all.
    assert run(["watchlist", "add", "Alex Lacamoire", str(refs / "alex-lacamoire.png")], home).returncode == 0
    proc = run(["scan", str(clip)], home)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""

    # Lin-Manuel Miranda enrolled too: he is alerted on, once for his one appearance.
    assert run(["watchlist", "add", "Lin-Manuel Miranda", str(refs / "lin-manuel-miranda.png")], home).returncode == 0
    proc = run(["scan", str(clip), "--json"], home)
    assert proc.returncode == 0, proc.stderr
    import json

    alerts = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [a["name"] for a in alerts] == ["Lin-Manuel Miranda"]
    assert alerts[0]["score"] >= 0.94  # the default threshold

    listing = run(["watchlist", "list", "--json"], home)
    assert {r["name"] for r in json.loads(listing.stdout)} == {"Alex Lacamoire", "Lin-Manuel Miranda"}
    assert run(["watchlist", "remove", "Alex Lacamoire"], home).returncode == 0
    assert {r["name"] for r in json.loads(run(["watchlist", "list", "--json"], home).stdout)} == {"Lin-Manuel Miranda"}


def test_identify_reports_every_face(data_dir: Path, home: Path):
    import json

    proc = run(["identify", str(data_dir / "misc" / "two_people.jpg"), "--json"], home)
    assert proc.returncode == 0, proc.stderr
    faces = json.loads(proc.stdout)["faces"]
    assert len(faces) == 2
    for f in faces:
        left, top, right, bottom = f["box"]
        assert right > left and bottom > top
        assert 0.0 <= f["quality"] <= 1.0
        assert f["candidates"] == []  # empty watchlist


def test_bad_inputs_are_refused_and_nothing_is_half_written(data_dir: Path, home: Path, tmp_path: Path):
    good = data_dir / "video" / "references" / "lin-manuel-miranda.png"
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes((data_dir / "misc" / "obama.jpg").read_bytes()[:3000])
    text = tmp_path / "notes.jpg"
    text.write_text("not an image at all\n")
    huge = tmp_path / "huge.png"
    from PIL import Image

    Image.new("1", (8000, 7000)).save(huge)
    noface = tmp_path / "noface.png"
    Image.new("RGB", (320, 240), (120, 160, 200)).save(noface)

    assert_clean_error(run(["identify", str(tmp_path / "missing.jpg")], home), "no such file")
    assert_clean_error(run(["identify", str(text)], home), "not an image")
    assert_clean_error(run(["identify", str(truncated)], home), "truncated")
    assert_clean_error(run(["identify", str(huge)], home), "megapixel")
    assert_clean_error(run(["watchlist", "add", "Nobody", str(noface)], home), "no face")
    assert_clean_error(
        run(["watchlist", "add", "Two", str(data_dir / "misc" / "two_people.jpg")], home), "2 faces found"
    )
    assert_clean_error(run(["scan", str(truncated)], home), "video")
    assert_clean_error(run(["watchlist", "remove", "Nobody"], home), "no watchlist entry")

    # A good image followed by a bad one: the whole command fails and writes nothing.
    assert_clean_error(run(["watchlist", "add", "Lin", str(good), str(truncated)], home), "truncated")
    assert not (home / "watchlist.npz").exists()
    assert run(["watchlist", "add", "Lin", str(good)], home).returncode == 0
    before = (home / "watchlist.npz").read_bytes()
    assert_clean_error(run(["watchlist", "add", "Lin", str(noface)], home), "no face")
    assert_clean_error(run(["watchlist", "add", "Lin", str(good)], home), "already enrolled")
    assert (home / "watchlist.npz").read_bytes() == before
    assert oct((home / "watchlist.npz").stat().st_mode & 0o777) == "0o600"


def test_evaluate_lfw_on_a_few_pairs(data_dir: Path, home: Path, tmp_path: Path):
    import json

    lines = (data_dir / "lfw_pairs.txt").read_text().splitlines()
    # two folds of 10 same-person and 10 different-person pairs each
    fold1, fold2 = lines[1:11] + lines[301:311], lines[601:611] + lines[901:911]
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("\n".join(["2\t10", *fold1, *fold2]) + "\n")
    proc = run(["evaluate", "lfw", "--lfw", str(data_dir / "lfw"), "--pairs", str(pairs), "--no-identification", "--json"], home)
    assert proc.returncode == 0, proc.stderr
    ver = json.loads(proc.stdout)["verification"]
    assert ver["pairs"] == 40 and ver["folds"] == 2
    assert ver["roc_auc"] > 0.97
    assert ver["images_without_face"] == 0
    bad = tmp_path / "bad_pairs.txt"
    bad.write_text("not a pairs file\n")
    assert_clean_error(
        run(["evaluate", "lfw", "--lfw", str(data_dir / "lfw"), "--pairs", str(bad), "--no-identification"], home),
        "not an LFW pairs file",
    )
    one_fold = tmp_path / "one_fold.txt"
    one_fold.write_text("\n".join(["1\t10", *fold1]) + "\n")
    assert_clean_error(
        run(["evaluate", "lfw", "--lfw", str(data_dir / "lfw"), "--pairs", str(one_fold), "--no-identification"], home),
        "at least 2 folds",
    )
