"""What a full run leaves on disk: after the demo, a live run with an alert, its two-person
review, an evaluation and a calibration, the data directory holds no image in clear, no raw
template, no evaluated file name, and every folder is 0700 and every file 0600.

Driven as a user would, through the ``openlfr`` command (the review through the services,
since the command line has no review command), on the real Hamilton clip and LFW faces.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from openlfr.face.registry import model_threshold

PW = "a demo password for tests"
IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"JFIF\x00", b"Exif\x00\x00")  # long enough never to occur by chance


def _openlfr(env: dict[str, str], *args: str, user: str | None = None, timeout: float = 600) -> str:
    if user is not None:
        _openlfr(env, "login", user)
    proc = subprocess.run([sys.executable, "-m", "openlfr.cli", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, f"openlfr {' '.join(args)}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout + proc.stderr


def _unit_vectors(body: bytes, dtype: str, dim: int = 128) -> bool:
    """Whether ``body`` holds, at any aligned offset, ``dim`` consecutive floats of a unit vector."""
    size = np.dtype(dtype).itemsize
    for offset in range(size):
        n = (len(body) - offset) // size
        if n < dim:
            continue
        with np.errstate(all="ignore"):  # random bytes read as floats: NaNs and huge values are expected
            x = np.frombuffer(body, dtype=dtype, count=n, offset=offset).astype(np.float64)
            ok = np.isfinite(x) & (np.abs(x) < 1.0)
            sq = np.where(ok, x * x, 0.0)
        run = np.convolve(ok.astype(np.int32), np.ones(dim, dtype=np.int32), "valid")
        energy = np.convolve(sq, np.ones(dim), "valid")
        if np.any((run == dim) & (np.abs(energy - 1.0) < 1e-3)):
            return True
    return False


def _small_lfw(lfw: Path, dest: Path) -> Path:
    """An LFW-layout folder of links: 12 people with two images, 12 with one."""
    people = sorted(p for p in lfw.iterdir() if p.is_dir())
    pairs = [p for p in people if len(list(p.glob("*.jpg"))) >= 2][:12]
    singles = [p for p in people if len(list(p.glob("*.jpg"))) == 1][:12]
    for person in pairs + singles:
        (dest / person.name).mkdir(parents=True)
        for img in sorted(person.glob("*.jpg"))[:2]:
            (dest / person.name / img.name).symlink_to(img)
    return dest


@pytest.mark.slow
def test_nothing_biometric_in_clear_after_a_full_run(tmp_path: Path, data_dir: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data"
    env = os.environ | {"OPENLFR_DATA_DIR": str(data), "OPENLFR_CREDENTIALS_FILE": str(tmp_path / "creds.json"),
                        "OPENLFR_PASSWORD": PW, "OPENLFR_DEMO_PASSWORD": PW, "OMP_NUM_THREADS": "2"}
    for name in ("OPENLFR_DATABASE_URL", "OPENLFR_TOKEN", "OPENLFR_KEY", "OPENLFR_KEY_FILE"):
        env.pop(name, None)
    clip = data_dir / "video" / "short_hamilton_clip.mp4"
    lin = data_dir / "video" / "references" / "lin-manuel-miranda.png"

    out = _openlfr(env, "demo-setup", "--images", str(data_dir / "lfw"), "--count", "3")
    assert "chain OK" in out
    # the demo put Lin-Manuel Miranda (the shared reference photo) on watchlist 1
    assert f"shared {lin.name}" in out
    cam = re.search(r"camera (\d+)", _openlfr(env, "camera", "add", "stage-door", "--location", "Stage door",
                                                "--stream", str(clip), user="alice")).group(1)
    now = datetime.now(UTC) - timedelta(minutes=1)
    requested = _openlfr(env, "deployment", "request", "--purpose", "Locate a wanted person at the stage door",
                         "--watchlist", "1", "--camera", cam, "--start", now.isoformat(),
                         "--end", (now + timedelta(hours=8)).isoformat(),
                         "--threshold", str(model_threshold()), "--legal-basis", "ukgdpr_a6_1f_a9_2g_sch1_para10",
                         "--dpia", "DPIA-DEMO-2", "--dpia-date", "2024-06-03", "--eia-ref", "EIA-DEMO-2",
                         "--eia-date", "2024-06-03",
                         "--necessity", "A person wanted for a violent offence is expected at the stage door tonight.",
                         "--proportionality", "One camera at one door for eight hours; other faces are discarded.")
    dep = re.search(r"deployment (\d+) requested", requested).group(1)
    _openlfr(env, "camera", "signage", cam, "--deployment", dep, "--text", "Live facial recognition in use")
    _openlfr(env, "deployment", "authorise", dep, user="supt-brown")
    _openlfr(env, "deployment", "start", dep, user="alice")
    _openlfr(env, "run", "--camera", "stage-door")

    from openlfr.governance import Governance
    from openlfr.governance import login, reviews
    from openlfr.store.models import Alert

    monkeypatch.setenv("OPENLFR_DATA_DIR", str(data))  # this process acts on the same store
    from openlfr.config import get_settings

    get_settings.cache_clear()
    gov = Governance()
    try:
        with gov.transaction() as ctx:
            (alert,) = [a.id for a in ctx.session.query(Alert).filter(Alert.deployment_id == int(dep))]
        for reviewer in ("ruth", "sam"):
            actor, _, _ = login.log_in(gov, reviewer, PW, "session", timedelta(hours=1), "test")
            with gov.transaction() as ctx:
                reviews.review(ctx, actor, alert, "confirm", "same person")
        with gov.transaction() as ctx:
            assert ctx.session.get(Alert, alert).review_outcome == "true"
    finally:
        gov.close()

    sample = _small_lfw(data_dir / "lfw", tmp_path / "lfw-sample")
    _openlfr(env, "evaluate", "openset", "--folder", str(sample), "--report", str(tmp_path / "report"))
    _openlfr(env, "calibrate", "--cohort", str(sample), "--watchlist-size", "5", "--false-alert-rate", "0.01")
    _openlfr(env, "audit", "verify")

    names = [p.name.encode() for p in sample.iterdir()]
    files = [p for p in data.rglob("*") if p.is_file()]
    assert any(p.parent.name == "eval-cache" or "eval-cache" in p.parts for p in files), "the evaluation cached nothing"
    for path in [data, *(p for p in data.rglob("*") if p.is_dir())]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o700, path
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        if "models" in path.relative_to(data).parts:
            continue  # converted public model weights (floats by nature), not biometric data
        body = path.read_bytes()
        assert not body.startswith(b"\xff\xd8\xff") and not any(m in body for m in IMAGE_MAGIC), path
        assert not _unit_vectors(body, "<f4") and not _unit_vectors(body, "<f8"), path
        if "eval-cache" in path.relative_to(data).parts:
            assert not any(n in body for n in names), path
