"""The command line on real faces: identify (no matching), no local watchlist, and every bad input
refused cleanly. Searches of recordings are tested in tests/pipeline/test_pipe_retrospective.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def _cli_env(home: Path, extra_env: dict[str, str] | None) -> dict[str, str | None]:
    """What a command's environment changes: the data folder ``home``, no store address and no
    credential from the caller's environment (``None`` removes a variable), then ``extra_env``."""
    env: dict[str, str | None] = {"OPENLFR_DATA_DIR": str(home), "OPENLFR_DATABASE_URL": None,
                                  "OPENLFR_CREDENTIALS_FILE": str(home / "no-credentials.json"), "OPENLFR_TOKEN": None}
    return env | (extra_env or {})


def run(args: list[str], home: Path, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    changes = _cli_env(home, extra_env)
    env = {k: v for k, v in (os.environ | changes).items() if v is not None}
    return subprocess.run(
        [sys.executable, "-m", "openlfr.cli", *args], env=env, capture_output=True, text=True, timeout=600
    )


def run_here(args: list[str], home: Path, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """The same command as :func:`run`, in this process (typer's runner): the same code and error
    handling, without a second of interpreter start each. Each test still runs ``openlfr`` as a
    real process for its first command."""
    from typer.testing import CliRunner

    from openlfr.cli import app

    result = CliRunner().invoke(app, args, env=_cli_env(home, extra_env))
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)


def assert_clean_error(proc: subprocess.CompletedProcess, fragment: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert fragment in lines[0]
    assert "Traceback" not in proc.stderr + proc.stdout


@pytest.fixture()
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def test_identify_reports_every_face_and_matches_nothing(data_dir: Path, home: Path):
    import json

    proc = run(["identify", str(data_dir / "misc" / "two_people.jpg"), "--json"], home)
    assert proc.returncode == 0, proc.stderr
    faces = json.loads(proc.stdout)["faces"]
    assert len(faces) == 2
    for f in faces:
        assert set(f) == {"box", "detector_score", "quality", "quality_issues"}  # no candidates: no watchlist
        left, top, right, bottom = f["box"]
        assert right > left and bottom > top
        assert 0.0 <= f["quality"] <= 1.0 and f["detector_score"] > 0
        assert isinstance(f["quality_issues"], list)
    text = run(["identify", str(data_dir / "misc" / "two_people.jpg")], home)
    assert text.returncode == 0 and len(text.stdout.strip().splitlines()) == 2
    assert all(line.startswith("face ") and "quality" in line for line in text.stdout.splitlines())
    assert "No matching" in run(["identify", "--help"], home).stdout
    assert not home.exists() or not any(home.rglob("watchlist*"))


def test_no_local_watchlist(data_dir: Path, home: Path):
    """Templates of named people are kept nowhere but in a deployment's governed snapshot."""
    good = data_dir / "video" / "references" / "lin-manuel-miranda.png"
    for args in (["watchlist", "add", "Lin", str(good)], ["watchlist", "list"], ["watchlist", "remove", "Lin"]):
        proc = run(args, home)
        assert proc.returncode == 2 and "No such command 'watchlist'" in proc.stderr, proc.stderr
    assert not home.exists() or not [p for p in home.rglob("*") if p.is_file()]


def test_bad_inputs_are_refused_and_nothing_is_half_written(data_dir: Path, home: Path, tmp_path: Path):
    clip = data_dir / "video" / "short_hamilton_clip.mp4"
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes((data_dir / "misc" / "obama.jpg").read_bytes()[:3000])
    text = tmp_path / "notes.jpg"
    text.write_text("not an image at all\n")
    huge = tmp_path / "huge.png"
    from PIL import Image

    Image.new("1", (8000, 7000)).save(huge)

    assert_clean_error(run(["identify", str(tmp_path / "missing.jpg")], home), "no such file")
    assert_clean_error(run_here(["identify", str(text)], home), "not an image")
    assert_clean_error(run_here(["identify", str(truncated)], home), "truncated")
    assert_clean_error(run_here(["identify", str(huge)], home), "megapixel")

    # a data directory that holds no store is refused, creating nothing (--init starts one)
    assert_clean_error(run(["scan", str(clip), "--deployment", "1"], home), "no openlfr store at")
    assert not home.exists() or not any(home.iterdir())
    # a search needs a credential first (see tests/pipeline/test_pipe_retrospective.py)
    assert_clean_error(run_here(["scan", str(clip), "--deployment", "1", "--init"], home), "log in first")
    login = {"OPENLFR_TOKEN": "some-token"}
    assert_clean_error(run_here(["scan", str(truncated), "--deployment", "1"], home, login), "video")
    missing = str(tmp_path / "missing.mp4")
    assert_clean_error(run_here(["scan", missing, "--deployment", "1"], home, login), "no such video")
    assert_clean_error(run_here(["scan", str(clip), "--deployment", "1", "--fps", "0"], home, login), "fps")
    stream = "rtsp://camera.example/live"
    assert_clean_error(run_here(["scan", stream, "--deployment", "1"], home, login), "recorded video")
    assert not home.exists() or not any(home.rglob("blobs/*/*"))


def test_evaluate_lfw_on_a_few_pairs(data_dir: Path, home: Path, tmp_path: Path):
    import json

    lines = (data_dir / "lfw_pairs.txt").read_text().splitlines()
    # two folds of 10 same-person and 10 different-person pairs each
    fold1, fold2 = lines[1:11] + lines[301:311], lines[601:611] + lines[901:911]
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("\n".join(["2\t10", *fold1, *fold2]) + "\n")
    proc = run(["evaluate", "lfw", "--lfw", str(data_dir / "lfw"), "--pairs", str(pairs), "--no-identification",
                "--json"], home)
    assert proc.returncode == 0, proc.stderr
    ver = json.loads(proc.stdout)["verification"]
    assert ver["pairs"] == 40 and ver["folds"] == 2
    assert ver["roc_auc"] > 0.97
    assert ver["images_without_face"] == 0
    assert "evaluated 40 pairs on " in proc.stderr and " s)" in proc.stderr  # the summary line, with its time
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


def test_a_corrupt_database_is_one_error_line(tmp_path: Path) -> None:
    """A store file that is not a database (disk fault, wrong file): one line, exit 2, no traceback."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "openlfr.db").write_bytes(b"SQLite format 3\0" + bytes(range(256)) * 40)
    for args in (["org", "list"], ["deployment", "list"], ["retention", "sweep"]):
        proc = run(args, home)
        assert_clean_error(proc, "database cannot be used")
