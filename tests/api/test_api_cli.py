"""``openlfr admin create`` and ``openlfr serve``: the first-run rule, and the real command serving."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import typer
from typer.testing import CliRunner

from apikit import free_port
from openlfr import cli_api

LAUNCH = "import typer; from openlfr import cli_api; app = typer.Typer(); cli_api.register(app); app()"


def _app() -> typer.Typer:
    app = typer.Typer()
    cli_api.register(app)
    return app


def test_serve_refuses_without_admin_then_admin_once(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("OPENLFR_DATA_DIR", str(tmp_path))
    runner = CliRunner()
    r = runner.invoke(_app(), ["serve"])
    assert r.exit_code == 2 and "openlfr admin create" in r.output
    pw = "a long password here\n" * 2
    r = runner.invoke(_app(), ["admin", "create", "boss", "--org", "Estate"], input=pw)
    assert r.exit_code == 0, r.output
    r = runner.invoke(_app(), ["admin", "create", "boss2"], input=pw)
    assert r.exit_code == 2 and "already has users" in r.output
    r = runner.invoke(_app(), ["admin", "create", "x"], input="short\nshort\n")
    assert r.exit_code == 2


def test_serve_serves(tmp_path) -> None:
    env = os.environ | {"OPENLFR_DATA_DIR": str(tmp_path), "OPENLFR_ADMIN_PASSWORD": "a long password here",
                        "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-c", LAUNCH, "admin", "create", "boss"], env=env, check=True,
                   capture_output=True)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", LAUNCH, "serve", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
                assert time.monotonic() < deadline, "server did not come up"
                time.sleep(0.2)
        assert r.json()["status"] == "ok"
        token = httpx.post(f"http://127.0.0.1:{port}/api/auth/token",
                           json={"name": "boss", "password": "a long password here"}).json()["token"]
        me = httpx.get(f"http://127.0.0.1:{port}/api/auth/me", headers={"Authorization": f"Bearer {token}"}).json()
        assert me["role"] == "operator_admin"
    finally:
        proc.terminate()
        proc.wait(15)
