"""The first hour of a new user, as the README tells it: a fresh clone, a fresh virtual
environment, the README's set-up command (install, ``openlfr demo-setup``, ``openlfr serve``),
then a real browser.

What must happen: the demo's cameras stream the shared clips through the real source path;
within a minute a reviewer's queue shows the alert for Lin-Manuel Miranda (on the demo
watchlist, in the Hamilton clip) with its thumbnail; two reviewers verify it; the public page
counts it; the audit chain verifies; rerunning the README's command works. Every console page
each demo user can reach is photographed into ``artifacts/first-hour/``.

The clone is of this working tree (its committed files plus any uncommitted ones), so the test
checks the code under test, not the last commit. The virtual environment sees the
already-installed dependencies (``--system-site-packages``) so the install step needs no
network beyond what the README's own command asks for.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts" / "first-hour"
PASSWORD = "first hour demo password"
REVIEWERS = ("ruth", "sam")  # the demo's two reviewers (demo-setup's DEMO_USERS)

pytestmark = pytest.mark.slow


def readme_setup_commands() -> tuple[list[str], str]:
    """The README's set-up block: (the steps of its first command, its test command)."""
    text = (ROOT / "README.md").read_text()
    block = text.split("## Set-up", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    lines = [line.split("#", 1)[0].strip() for line in block.strip().splitlines()]
    lines = [line for line in lines if line]
    return [step.strip() for step in lines[0].split("&&")], lines[1]


def test_readme_names_install_demo_serve_and_tests() -> None:
    steps, tests = readme_setup_commands()
    assert [s.split()[:3] for s in steps] == [["python3", "-m", "pip"], ["openlfr", "demo-setup"], ["openlfr", "serve"]]
    assert tests == "python3 -m pytest"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Fresh:
    clone: Path
    env: dict[str, str]
    url: str
    serve: subprocess.Popen[str]
    log: Path


def _clone(tmp: Path) -> Path:
    clone = tmp / "openlfr"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
                           capture_output=True, text=True).stdout.split("\0")
    for name in filter(None, files):  # this tree's uncommitted state too: the code under test
        src = ROOT / name
        if src.is_file():
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, clone / name)
    return clone


def _run(cmd: str, env: dict[str, str], cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(shlex.split(cmd), env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def _start_serve(cmd: str, env: dict[str, str], cwd: Path, port: int, log: Path) -> subprocess.Popen[str]:
    out = log.open("a")
    proc = subprocess.Popen(shlex.split(cmd) + ["--port", str(port)], env=env, cwd=cwd, stdout=out,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()[-3000:]
        try:
            if httpx.get(f"http://127.0.0.1:{port}/transparency", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.5)
    raise AssertionError("serve did not answer within 60 s:\n" + log.read_text()[-3000:])


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


@pytest.fixture(scope="module")
def fresh(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Iterator[Fresh]:
    if not (data_dir / "video" / "short_hamilton_clip.mp4").is_file():
        pytest.skip(f"the shared clips are not in {data_dir} (set OPENLFR_DATA)")
    tmp = tmp_path_factory.mktemp("first-hour")
    clone = _clone(tmp)
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENLFR_")}
    env |= {"PATH": f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", "VIRTUAL_ENV": str(venv),
            "OPENLFR_DATA_DIR": str(tmp / "store"), "OPENLFR_DATA": str(data_dir),
            "OPENLFR_DEMO_PASSWORD": PASSWORD, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    install, demo, serve = readme_setup_commands()[0]
    log = tmp / "serve.log"
    _run(install, env, clone, 900)
    assert (venv / "bin" / "openlfr").is_file()  # the clone's command, in the fresh environment
    _run(demo, env, clone, 600)
    port = _free_port()
    started = time.monotonic()
    proc = _start_serve(serve, env, clone, port, log)
    try:
        yield Fresh(clone, env, f"http://127.0.0.1:{port}", proc, log)
    finally:
        _stop(proc)
    assert time.monotonic() - started > 0


def _login(browser, url: str, name: str):  # type: ignore[no-untyped-def]
    page = browser.new_context(viewport={"width": 1200, "height": 850}).new_page()
    page.goto(f"{url}/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/console/.*"))
    return page


def _shoot_every_page(page, url: str, who: str) -> list[str]:  # type: ignore[no-untyped-def]
    """Photograph every kind of console page reachable by links from where ``who`` lands (one
    of each kind: /console/alerts/7 stands for every alert page); returns their paths."""
    seen: dict[str, str] = {}  # kind -> path
    todo = [page.url.removeprefix(url)]
    while todo and len(seen) < 30:
        path = todo.pop(0)
        kind = re.sub(r"/\d+", "/N", path.split("?", 1)[0])
        if kind in seen:
            continue
        seen[kind] = path
        response = page.goto(url + path)
        assert response is not None and response.status == 200, (who, path, response and response.status)
        assert "text/html" in (response.headers.get("content-type") or ""), (who, path)
        name = re.sub(r"[^a-z0-9]+", "-", f"{who}{kind.replace('/N', '-n')}".lower()).strip("-")
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
        links = page.eval_on_selector_all("a[href^='/console']", "els => els.map(e => e.getAttribute('href'))")
        todo += [h for h in links if not h.endswith(("/thumb", "/row"))]
    return list(seen.values())


def test_first_hour(fresh: Fresh, browser) -> None:  # type: ignore[no-untyped-def]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    public = browser.new_context(viewport={"width": 1200, "height": 900}).new_page()
    public.goto(f"{fresh.url}/transparency")
    public.screenshot(path=str(ARTIFACTS / "public-transparency-before.png"), full_page=True)

    first = _login(browser, fresh.url, REVIEWERS[0])
    # the demo camera streaming the Hamilton clip raises Miranda's alert within a minute
    row = first.wait_for_selector("#queue tr[data-alert]:has(td.candidate:has-text('miranda'))", timeout=90_000)
    thumb = row.query_selector("td.thumb img")
    assert thumb is not None
    first.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=thumb, timeout=10_000)
    alert_id = row.get_attribute("data-alert")
    first.screenshot(path=str(ARTIFACTS / "reviewer-queue-miranda.png"), full_page=True)
    first.click(f"#queue tr[data-alert='{alert_id}'] a")
    first.wait_for_url(f"{fresh.url}/console/alerts/{alert_id}")
    first.fill("textarea[name=note]", "same person as the watchlist image")
    first.click("button[value=confirm]")
    first.wait_for_selector("h1 .status-confirmed_once")

    second = _login(browser, fresh.url, REVIEWERS[1])
    second.goto(f"{fresh.url}/console/alerts/{alert_id}")
    second.fill("textarea[name=note]", "agree")
    second.click("button[value=confirm]")
    second.wait_for_selector("h1 .status-verified")
    second.screenshot(path=str(ARTIFACTS / "reviewer-alert-verified.png"), full_page=True)

    public.goto(f"{fresh.url}/transparency")
    verified = sum(int(v.inner_text()) for v in public.locator("dd.verified").all())
    assert verified == 1  # the alert the two reviewers verified
    public.screenshot(path=str(ARTIFACTS / "public-transparency-after.png"), full_page=True)

    # every console page of every demo user (each organisation's admins and staff)
    for who in ("alice", "ruth", "supt-brown", "met", "ico", "dana", "estate-admin", "met-admin", "ico-admin"):
        page = _login(browser, fresh.url, who)
        assert _shoot_every_page(page, fresh.url, who)

    # the audit chain of the whole demo run verifies (from the fresh environment's command)
    proc = _run("openlfr audit verify", fresh.env, fresh.clone, 120)
    assert "ok" in proc.stdout.lower()

    # the README's command again, on the same store: works (serve restarted on a new port)
    _stop(fresh.serve)
    install, demo, serve = readme_setup_commands()[0]
    _run(demo, fresh.env, fresh.clone, 600)
    again = _start_serve(serve, fresh.env, fresh.clone, _free_port(), fresh.log)
    _stop(again)
