"""openlfr's logging (openlfr.logs): the two forms parse back, configuring twice writes each
record once, and a real ``openlfr serve`` writes openlfr's records and uvicorn's in the same
form, at the level of ``--log-level`` / ``OPENLFR_LOG_LEVEL``."""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from openlfr import logs
from openlfr.logs import configure_logging

PASSWORD = "a long password here"
# key=value, the value bare or a JSON string
PAIR = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|[^\s"]+)')


def parse_text(line: str) -> dict[str, str]:
    """One text-form line back into its fields (the whole line must be pairs)."""
    pairs = list(PAIR.finditer(line))
    assert " ".join(m.group(0) for m in pairs) == line, line
    return {m.group(1): json.loads(m.group(2)) if m.group(2).startswith('"') else m.group(2) for m in pairs}


@pytest.fixture
def fresh_logging() -> Iterator[logging.Logger]:
    """openlfr's logger as the test found it, afterwards."""
    logger = logging.getLogger("openlfr")
    saved = (logger.handlers[:], logger.level, logger.propagate, dict(logs._context))
    logger.handlers = []
    yield logger
    logger.handlers, logger.level, logger.propagate = saved[0], saved[1], saved[2]
    logs._context.clear()
    logs._context.update(saved[3])


def _lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return capsys.readouterr().err.splitlines()


def test_text_and_json_forms_parse_back(fresh_logging: logging.Logger, capsys: pytest.CaptureFixture[str]) -> None:
    log = logging.getLogger("openlfr.governance.retention")
    configure_logging("info", "text", context={"camera": "front door"})
    log.info("swept %d alerts", 3, extra={"deployment": 7, "note": 'say "x=1"'})
    log.debug("not shown at info")
    [line] = _lines(capsys)
    fields = parse_text(line)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", fields.pop("ts"))
    assert fields == {"level": "info", "logger": "openlfr.governance.retention", "msg": "swept 3 alerts",
                      "camera": "front door", "deployment": "7", "note": 'say "x=1"'}
    assert ' msg="swept 3 alerts" camera="front door" deployment=7 ' in line

    configure_logging("debug", "json")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        log.exception("sweep failed")
    log.debug("shown at debug")
    first, second = (json.loads(line) for line in _lines(capsys))
    assert first["level"] == "error" and first["msg"] == "sweep failed" and first["camera"] == "front door"
    assert "RuntimeError: boom" in first["exc"]
    assert list(second) == ["ts", "level", "logger", "msg", "camera"] and second["level"] == "debug"


def test_configuring_twice_keeps_one_handler(fresh_logging: logging.Logger,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info", "text")
    configure_logging("warning", "text")
    assert len(fresh_logging.handlers) == 1 and fresh_logging.propagate is False
    logging.getLogger("openlfr.pipeline.events").info("hidden")
    logging.getLogger("openlfr.pipeline.events").warning("once")
    [line] = _lines(capsys)
    assert parse_text(line)["msg"] == "once"
    with pytest.raises(ValueError, match="loud"):
        configure_logging("loud", "text")


def _env(store: Path, **extra: str) -> dict[str, str]:
    env = os.environ | {"OPENLFR_DATA_DIR": str(store), "OPENLFR_NEW_PASSWORD": PASSWORD, "OMP_NUM_THREADS": "1",
                        "OPENLFR_CREDENTIALS_FILE": str(store / "credentials.json"), **extra}
    for name in ("OPENLFR_DATABASE_URL", "OPENLFR_LOG_LEVEL", "OPENLFR_LOG_FORMAT"):
        if name not in extra:
            env.pop(name, None)
    return env


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("logs-store")
    subprocess.run([sys.executable, "-m", "openlfr.cli", "admin", "create", "boss", "--org", "Estate Ltd"],
                   env=_env(root), check=True, capture_output=True)
    return root


def _serve_stderr(store: Path, args: list[str], env: dict[str, str]) -> list[str]:
    """The stderr lines of ``openlfr serve`` run until it answers a request, then stopped."""
    with socket.socket() as probe:  # a free loopback port
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "openlfr.cli", "serve", "--no-cameras", "--port", str(port),
                             *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline, "server did not come up"
                time.sleep(0.2)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=15)
    return err.splitlines()


def test_serve_writes_openlfr_and_uvicorn_records_in_one_form(store: Path) -> None:
    lines = _serve_stderr(store, [], _env(store, OPENLFR_LOG_LEVEL="info", OPENLFR_LOG_FORMAT="json"))
    records = [json.loads(line) for line in lines]  # every stderr line is a record
    by_logger = {r["logger"] for r in records}
    assert {"openlfr.governance.retention", "uvicorn.error", "uvicorn.access"} <= by_logger, lines
    assert any(r["msg"] == "retention sweep every 300 s" and r["level"] == "info" for r in records)
    assert any("GET /health" in r["msg"] for r in records if r["logger"] == "uvicorn.access")

    quiet = _serve_stderr(store, ["--log-level", "warning"], _env(store, OPENLFR_LOG_LEVEL="debug"))
    assert not any("level=info" in line or "retention sweep" in line or "GET /health" in line for line in quiet), quiet


def test_an_unknown_level_is_one_line() -> None:
    r = subprocess.run([sys.executable, "-m", "openlfr.cli", "--log-level", "loud", "identify", "x.jpg"],
                       check=False, capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        "error: --log-level (OPENLFR_LOG_LEVEL): Input should be 'debug', 'info', 'warning' or 'error', not 'loud'"]
