"""The README's first command for real: ``openlfr demo-setup`` into an empty data folder, then
``openlfr serve``, which runs the demo's cameras (the shared clips, paced and looping): within
a minute of the start a reviewer sees Lin-Manuel Miranda's alert in ``GET /api/alerts``; the
camera status says the cameras run; Ctrl-C stops everything cleanly.

The fast tests of the same rules: tests/governance/test_gov_demo.py (what demo-setup builds, its
rerun), tests/api/test_api_cameras.py (camera status), tests/pipeline/test_pipe_workers.py and
test_pipe_sources.py (workers, looping recordings)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from apikit import free_port

PW = "a demo password for tests"

pytestmark = pytest.mark.slow


def _env(data: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENLFR_") or k in (
        "OPENLFR_DATA", "OPENLFR_MODEL_CACHE_DIR")}
    # as a new user: the default store, key and recording folder under the data folder
    return env | {"OPENLFR_DATA_DIR": str(data), "OPENLFR_DEMO_PASSWORD": PW, "OMP_NUM_THREADS": "1"}


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_serve_runs_the_demo_cameras_and_a_reviewer_gets_the_alert(tmp_path: Path, data_dir: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    if not (data_dir / "video" / "short_hamilton_clip.mp4").is_file():
        pytest.skip(f"the shared clips are not in {data_dir}")
    data = tmp_path / "data"
    env = _env(data)
    demo = subprocess.run([sys.executable, "-m", "openlfr.cli", "demo-setup", "--count", "3"], env=env,
                          capture_output=True, text=True, timeout=600)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "shared lin-manuel-miranda.png" in demo.stdout and "copied short_hamilton_clip.mp4" in demo.stdout

    port, log = free_port(), tmp_path / "serve.log"
    started = time.monotonic()
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "openlfr.cli", "serve", "--port", str(port)], env=env,
                                stdout=out, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        token = None
        while token is None and time.monotonic() - started < 60:
            assert proc.poll() is None, log.read_text()[-3000:]
            try:
                r = httpx.post(f"{url}/api/auth/token", json={"name": "ruth", "password": PW}, timeout=5)
                token = r.json()["token"] if r.status_code == 200 else None
            except httpx.HTTPError:
                time.sleep(0.5)
        assert token, "serve did not answer within 60 s:\n" + log.read_text()[-3000:]
        client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
        miranda = []
        while not miranda and time.monotonic() - started < 60:
            time.sleep(1)
            miranda = [a for a in client.get("/api/alerts").json() if "miranda" in (a["label"] or "")]
        waited = time.monotonic() - started
        assert miranda, f"no Miranda alert within 60 s of serve's start:\n{log.read_text()[-4000:]}"
        assert miranda[0]["camera"] == "north-gate" and miranda[0]["status"] == "pending"
        print(f"Miranda's alert reached the reviewer {waited:.1f} s after serve started")
        text = log.read_text()
        assert "cameras: running 2" in text and "log in as ruth" in text
        deadline = time.monotonic() + 30  # the workers report every 5 s
        while True:
            status = {s["name"]: s for s in client.get("/api/cameras/status").json()}
            if status["north-gate"]["state"] == "running" and status["north-gate"]["fps"] > 0:
                break
            assert time.monotonic() < deadline, status
            time.sleep(1)
        assert status["north-gate"]["last_frame_at"] and not status["north-gate"]["error"]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in the terminal: the whole process group
        try:
            proc.wait(60)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    text = log.read_text()
    assert proc.returncode == 0 and "stopping the cameras" in text and "Traceback" not in text, text[-4000:]
    deadline = time.monotonic() + 10  # no worker left behind (the helpers of multiprocessing end with serve)
    while _group_alive(proc.pid):
        assert time.monotonic() < deadline, subprocess.run(["ps", "-o", "pid,stat,args", "-g", str(proc.pid)],
                                                           capture_output=True, text=True).stdout
        time.sleep(0.5)
    # each worker said it stopped, in the store
    monkeypatch.setenv("OPENLFR_DATA_DIR", str(data))
    for name in ("OPENLFR_DATABASE_URL", "OPENLFR_KEY", "OPENLFR_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)
    from openlfr.config import get_settings
    from openlfr.governance import Governance
    from openlfr.store.models import CameraStatus

    get_settings.cache_clear()
    gov = Governance()
    try:
        with gov.transaction() as ctx:
            states = {s.camera_id: s.state for s in ctx.session.query(CameraStatus)}
        assert sorted(states.values()) == ["stopped", "stopped"], states
    finally:
        gov.close()
