"""The governance command line, end to end on a real store (SQLite, and PostgreSQL when set)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import typer
from sqlalchemy import text
from typer.testing import CliRunner

from openlfr import cli_governance
from openlfr.store import make_engine

from govkit import fake_template

runner = CliRunner()


@pytest.fixture
def app(db_url: str, monkeypatch: pytest.MonkeyPatch) -> typer.Typer:
    monkeypatch.setenv("OPENLFR_DATABASE_URL", db_url)
    main = typer.Typer()

    @main.callback()
    def _root() -> None:
        """openlfr (test)"""

    cli_governance.register(main)
    return main


def ok(app: typer.Typer, *args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, f"{args}: {result.output}"
    return result.output


def test_cli_full_flow(app: typer.Typer, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_governance, "_template_fn", lambda: fake_template)
    now = datetime.now(UTC).replace(microsecond=0)
    day = now.date().isoformat()
    ok(app, "user", "add", "alice", "--role", "operator_admin", "--org", "Estate Ltd")
    for name, role in [("met", "supplier"), ("ao", "authorising_officer"), ("dpo", "auditor")]:
        ok(app, "user", "add", name, "--role", role, "--as", "alice")
    out = ok(app, "agreement", "create", "--as", "met", "--operator", "Estate Ltd", "--purpose", "warrants",
             "--lawful-basis", "DPA 2018 s.35", "--from", (now - timedelta(hours=1)).isoformat(),
             "--until", (now + timedelta(days=10)).isoformat(), "--limit", "5", "--category", "wanted")
    assert "agreement 1 created" in out
    ok(app, "agreement", "approve", "1", "--as", "ao")
    image = tmp_path / "face.jpg"
    image.write_bytes(b"pretend jpeg")
    assert "image 1 shared" in ok(app, "share", "add", "1", str(image), "--as", "met", "--category", "wanted",
                                  "--reason", "warrant 1", "--subject", "S-1", "--image-date", "2025-01-01")
    dup = runner.invoke(app, ["share", "add", "1", str(image), "--as", "met", "--category", "wanted",
                              "--reason", "again", "--subject", "S-1", "--image-date", "2025-01-01"])
    assert dup.exit_code == 2 and "already shared" in dup.output
    ok(app, "camera", "add", "gate", "--as", "alice", "--location", "north gate")
    ok(app, "camera", "signage", "1", "--as", "alice", "--text", "LFR in use", "--checked-on", day)
    ok(app, "deployment", "watchlist-create", "wl", "--as", "alice", "--criteria", "warrants", "--cap", "10")
    ok(app, "deployment", "watchlist-add", "1", "1", "--as", "alice", "--label", "person", "--reason", "warrant",
       "--review-date", (now + timedelta(days=7)).date().isoformat())
    ok(app, "deployment", "request", "--as", "alice", "--purpose", "find wanted", "--watchlist", "1", "--camera", "1",
       "--start", (now - timedelta(minutes=1)).isoformat(), "--end", (now + timedelta(hours=2)).isoformat(),
       "--threshold", "0.6", "--dpia", "D-1", "--necessity", "necessary and proportionate here")
    refused = runner.invoke(app, ["deployment", "authorise", "1", "--as", "alice"])
    assert refused.exit_code == 2 and "authorising_officer" in refused.output
    assert re.search(r"sha256 [0-9a-f]{64}", ok(app, "deployment", "authorise", "1", "--as", "ao"))
    ok(app, "deployment", "start", "1", "--as", "alice")
    locked = runner.invoke(app, ["deployment", "threshold", "1", "0.5", "--as", "alice"])
    assert locked.exit_code == 2 and "locked" in locked.output
    assert "status=live" in ok(app, "share", "list", "--as", "met")
    assert "status=live" in ok(app, "deployment", "list")
    assert "chain OK" in ok(app, "audit", "verify")
    export = tmp_path / "audit.jsonl"
    seq, digest = re.search(r"head #(\d+) ([0-9a-f]{64})", ok(app, "audit", "export", str(export))).groups()
    assert "chain OK" in ok(app, "audit", "verify", "--export", str(export), "--head", f"{seq}:{digest}")
    wrong = runner.invoke(app, ["audit", "verify", "--head", f"{seq}:{'0' * 64}"])
    assert wrong.exit_code == 1 and f"BROKEN at event #{seq}" in wrong.output
    ok(app, "agreement", "end", "1", "--as", "met", "--reason", "operation over")
    assert "status=purged" in ok(app, "share", "list", "--as", "dpo", "--supplier", "met")

    engine = make_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_events SET actor = 'mallory' WHERE seq = 5"))
    engine.dispose()
    broken = runner.invoke(app, ["audit", "verify"])
    assert broken.exit_code == 1 and "BROKEN at event #5" in broken.output


def test_cli_bad_input_is_one_line(app: typer.Typer) -> None:
    ok(app, "user", "add", "alice", "--role", "operator_admin")
    bad = runner.invoke(app, ["agreement", "approve", "99", "--as", "alice"])
    assert bad.exit_code == 2 and bad.output.strip().startswith("error:") and len(bad.output.strip().splitlines()) == 1
    bad = runner.invoke(app, ["user", "add", "bob", "--role", "wizard", "--as", "alice"])
    assert bad.exit_code == 2 and "role" in bad.output
    bad = runner.invoke(app, ["agreement", "create", "--as", "alice", "--operator", "x", "--purpose", "p",
                              "--lawful-basis", "b", "--from", "2030-02-01", "--until", "2030-01-01", "--limit", "1",
                              "--category", "c"])
    assert bad.exit_code == 2 and "valid_until must be after valid_from" in bad.output


@pytest.mark.slow
def test_demo_setup_with_the_real_face_pipeline(app: typer.Typer, data_dir: Path) -> None:
    """The one test that uses the real enrolment pipeline (LFW photos from the shared data)."""
    try:
        from openlfr.face.analyzer import enrolment_template  # noqa: F401
    except ImportError as err:
        pytest.skip(f"face pipeline not available yet: {err}")
    out = ok(app, "demo-setup", "--images", str(data_dir / "lfw"), "--count", "2")
    assert "demo estate ready" in out and "chain OK" in out
    assert out.count("shared ") == 2, out
    assert "status=live" in ok(app, "deployment", "list")


def test_cli_deployment_request_with_a_target_false_alert_rate(
    app: typer.Typer, db_url: str, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not db_url.startswith("sqlite"):
        pytest.skip("calibration does not depend on the database; run once")
    monkeypatch.setattr(cli_governance, "_template_fn", lambda: fake_template)
    now = datetime.now(UTC).replace(microsecond=0)
    ok(app, "user", "add", "alice", "--role", "operator_admin", "--org", "Estate Ltd")
    for name, role in [("met", "supplier"), ("ao", "authorising_officer")]:
        ok(app, "user", "add", name, "--role", role, "--as", "alice")
    ok(app, "agreement", "create", "--as", "met", "--operator", "Estate Ltd", "--purpose", "warrants",
       "--lawful-basis", "DPA 2018 s.35", "--from", (now - timedelta(hours=1)).isoformat(),
       "--until", (now + timedelta(days=10)).isoformat(), "--limit", "5", "--category", "wanted")
    ok(app, "agreement", "approve", "1", "--as", "ao")
    image = tmp_path / "face.jpg"
    image.write_bytes(b"pretend jpeg")
    ok(app, "share", "add", "1", str(image), "--as", "met", "--category", "wanted", "--reason", "warrant 1",
       "--subject", "S-1", "--image-date", "2025-01-01")
    ok(app, "camera", "add", "gate", "--as", "alice", "--location", "north gate")
    ok(app, "deployment", "watchlist-create", "wl", "--as", "alice", "--criteria", "warrants", "--cap", "10")
    ok(app, "deployment", "watchlist-add", "1", "1", "--as", "alice", "--label", "person", "--reason", "warrant",
       "--review-date", (now + timedelta(days=7)).date().isoformat())
    request = ["deployment", "request", "--as", "alice", "--purpose", "find wanted", "--watchlist", "1",
               "--camera", "1", "--start", now.isoformat(), "--end", (now + timedelta(hours=2)).isoformat(),
               "--dpia", "D-1", "--necessity", "necessary and proportionate here", "--false-alert-rate", "0.01"]
    refused = runner.invoke(app, request)
    assert refused.exit_code == 2 and "calibration cohort" in refused.output

    # a cohort of 60 people who are on no watchlist (real faces, linked, not copied)
    cohort = tmp_path / "cohort"
    singles = [d for d in sorted((data_dir / "lfw").iterdir()) if len(list(d.glob("*.jpg"))) == 1][:60]
    for d in singles:
        (cohort / d.name).mkdir(parents=True)
        for f in d.glob("*.jpg"):
            (cohort / d.name / f.name).symlink_to(f)
    monkeypatch.setenv("OPENLFR_CALIBRATION_COHORT", str(cohort))
    from openlfr.config import get_settings

    get_settings.cache_clear()
    out = ok(app, *request)
    threshold = float(re.search(r"calibrated threshold (\d\.\d+)", out).group(1))
    assert 0.8 < threshold < 1.0
    listing = ok(app, "deployment", "list", "--json")
    assert str(round(threshold, 4))[:5] in listing
