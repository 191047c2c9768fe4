"""``openlfr admin create`` and ``openlfr serve``: the first-run rule (the host organisation and
its first admin, on an empty store only), serve's refusal to start without an admin of the
host who can log in, and the real command serving."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import typer
from typer.testing import CliRunner

from apikit import free_port
from openlfr.cli import admin as cli_admin, auth as cli_auth, orgs as cli_orgs, serve as cli_serve

LAUNCH = ("import typer; from openlfr.cli import admin, serve; app = typer.Typer(); admin.register(app); "
          "serve.register(app); app()")
PASSWORD = "a long password here"


def _app() -> typer.Typer:
    app = typer.Typer()
    for module in (cli_admin, cli_serve, cli_auth, cli_orgs):
        module.register(app)
    return app


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("OPENLFR_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("OPENLFR_CREDENTIALS_FILE", str(tmp_path / "credentials.json"))
    for name in ("OPENLFR_DATABASE_URL", "OPENLFR_TOKEN", "OPENLFR_NEW_PASSWORD", "OPENLFR_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_serve_refuses_without_a_host_admin_then_admin_create_once(store: Path) -> None:
    runner = CliRunner()
    r = runner.invoke(_app(), ["serve"])
    assert r.exit_code == 2 and "openlfr admin create" in r.output and "openlfr admin break-glass" in r.output
    r = runner.invoke(_app(), ["admin", "create", "x", "--org", "Estate"], input="short\nshort\n")
    assert r.exit_code == 2 and "at least 10 characters" in r.output
    r = runner.invoke(_app(), ["admin", "create", "boss"], input=f"{PASSWORD}\n" * 2)
    assert r.exit_code == 2 and "--org" in r.output  # the host organisation must be named
    r = runner.invoke(_app(), ["admin", "create", "boss", "--org", "Estate"], input=f"{PASSWORD}\n" * 2)
    assert r.exit_code == 0, r.output
    assert "host organisation Estate (site operator)" in r.output and "openlfr login boss" in r.output
    r = runner.invoke(_app(), ["admin", "create", "boss2", "--org", "Other"], input=f"{PASSWORD}\n" * 2)
    assert r.exit_code == 2 and "already has users" in r.output
    r = runner.invoke(_app(), ["admin", "password", "boss"], input=f"{PASSWORD}\n" * 2)
    assert r.exit_code == 2 and "No such command 'password'" in r.output  # replaced by break-glass
    r = runner.invoke(_app(), ["login", "boss"], env={"OPENLFR_PASSWORD": PASSWORD})
    assert r.exit_code == 0 and "admin of Estate" in r.output


def test_an_admin_of_another_organisation_does_not_let_serve_start(store: Path) -> None:
    """The check is for the host's own admin: an enrolled police admin is not one."""
    runner = CliRunner()
    r = runner.invoke(_app(), ["org", "register", "Met Police", "--kind", "police_force"])
    assert r.exit_code == 0, r.output
    token = r.stdout.split("enrolment token: ")[1].split()[0]
    r = runner.invoke(_app(), ["enrol", token, "met-admin"], env={"OPENLFR_NEW_PASSWORD": PASSWORD})
    assert r.exit_code == 0, r.output
    r = runner.invoke(_app(), ["serve"])
    assert r.exit_code == 2 and "no admin of the host organisation can log in" in r.output


def test_serve_serves(tmp_path: Path) -> None:
    env = os.environ | {"OPENLFR_DATA_DIR": str(tmp_path), "OPENLFR_NEW_PASSWORD": PASSWORD, "OMP_NUM_THREADS": "1",
                        "OPENLFR_CREDENTIALS_FILE": str(tmp_path / "credentials.json")}
    env.pop("OPENLFR_DATABASE_URL", None)
    subprocess.run([sys.executable, "-c", LAUNCH, "admin", "create", "boss", "--org", "Estate Ltd"], env=env,
                   check=True, capture_output=True)
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
                           json={"name": "boss", "password": PASSWORD}).json()["token"]
        me = httpx.get(f"http://127.0.0.1:{port}/api/auth/me", headers={"Authorization": f"Bearer {token}"}).json()
        assert me["role"] == "admin" and me["organisation"] == "Estate Ltd"
    finally:
        proc.terminate()
        proc.wait(15)
