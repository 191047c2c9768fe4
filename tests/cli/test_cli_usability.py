"""The command line for a new user: global options after the command, --version, a missing
store refused, help on every option, cameras by name or id, one-line errors for a missing
backend and a bad image, and progress with a summary (on real runs: scan in
tests/pipeline/test_pipe_retrospective.py, evaluate lfw in tests/cli/test_cli.py, evaluate openset
and calibrate in tests/effectiveness/test_eff_lfw_sample.py). In-process (typer's CliRunner) on the real app."""

from __future__ import annotations

import importlib
import io
import os
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path
from types import SimpleNamespace

import pytest
import typer
from rich.console import Console
from sqlalchemy import select
from typer.testing import CliRunner

from openlfr.cli import GLOBAL_OPTIONS, app, hoist_global_options
from openlfr.cli.support import Progress, progress, user_errors
from openlfr.config import get_settings

runner = CliRunner()
PW = "a password for the usability tests"


@pytest.fixture(autouse=True)
def _environment(tmp_path: Path) -> Iterator[None]:
    """The root callback writes its options into os.environ (for the code it runs): put it back."""
    saved = dict(os.environ)
    for name in ("OPENLFR_DATABASE_URL", "OPENLFR_TOKEN", "OPENLFR_BACKEND", "OPENLFR_DETECTOR", "OPENLFR_FACE_MODEL"):
        os.environ.pop(name, None)
    os.environ["OPENLFR_CREDENTIALS_FILE"] = str(tmp_path / "credentials.json")
    get_settings.cache_clear()
    yield
    os.environ.clear()
    os.environ.update(saved)
    get_settings.cache_clear()


def one_error(result, fragment: str) -> str:
    """The result is exit 2 with an ``error:`` line holding ``fragment``, and no traceback."""
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and fragment in errors[0], result.output
    assert "Traceback" not in result.output
    return errors[0]


def make_store(folder: Path) -> None:
    """A store in ``folder`` by the command that makes one (its host and first admin)."""
    result = runner.invoke(app, ["admin", "create", "boss", "--org", "Estate", "--data-dir", str(folder)],
                           env={"OPENLFR_NEW_PASSWORD": PW})
    assert result.exit_code == 0, result.output


# ---------------------------------------------------------------- global options, --version
def test_global_options_are_accepted_after_the_command(tmp_path: Path) -> None:
    store = tmp_path / "store"
    make_store(store)  # --data-dir after "admin create"
    for args in (["org", "list", "--json", "--data-dir", str(store)], ["org", "list", f"--data-dir={store}", "--json"],
                 ["--data-dir", str(store), "org", "list", "--json"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0 and '"name": "Estate"' in result.output, (args, result.output)
    # a bad global option after the command is checked like one before it
    one_error(runner.invoke(app, ["org", "list", "--backend", "torch", "--data-dir", str(store)]), "--backend")
    # nothing after "--" is moved; a sub-command's own options stay where they are
    params = [p for p in typer.main.get_command(app).params if p.name in GLOBAL_OPTIONS]
    assert hoist_global_options(["scan", "v.mp4", "--fps", "2", "--init", "--detector", "hog", "--", "--init"],
                                params) == ["--init", "--detector", "hog", "scan", "v.mp4", "--fps", "2", "--",
                                            "--init"]
    assert "before or after the command" in runner.invoke(app, ["--help"]).output


def test_version_comes_from_the_installed_package() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"openlfr {version('openlfr')}"


# ---------------------------------------------------------------- a data directory without a store
def test_a_data_dir_that_holds_no_store_is_refused_and_nothing_is_created(tmp_path: Path) -> None:
    typo = tmp_path / "stroe"
    for args in (["org", "list"], ["share", "list"], ["login", "boss"], ["retention", "sweep"], ["audit", "verify"],
                 ["deployment", "list"], ["alert", "list"], ["key", "status"]):
        line = one_error(runner.invoke(app, [*args, "--data-dir", str(typo)], env={"OPENLFR_PASSWORD": PW}),
                         f"no openlfr store at {typo / 'openlfr.db'}")
        assert "--init" in line and "admin create" in line
        assert not typo.exists(), args
    # OPENLFR_DATA_DIR is checked the same way
    one_error(runner.invoke(app, ["org", "list"], env={"OPENLFR_DATA_DIR": str(typo)}), "no openlfr store at")
    # commands that need no store still run; --init starts an empty one on purpose
    one_error(runner.invoke(app, ["calibrate", "--watchlist-size", "5", "--data-dir", str(typo)]), "--cohort")
    result = runner.invoke(app, ["--init", "org", "list", "--data-dir", str(typo)])
    assert result.exit_code == 0 and result.output.strip() == "(none)", result.output
    assert (typo / "openlfr.db").stat().st_size > 0
    # help never needs a store
    assert runner.invoke(app, ["share", "list", "--help", "--data-dir", str(tmp_path / "other")]).exit_code == 0


def test_a_database_url_without_a_store_is_refused(db_url: str, tmp_path: Path) -> None:
    """The same on PostgreSQL: an empty database is not a store (a migrated one is)."""
    from sqlalchemy import text

    from openlfr.store import make_engine

    os.environ["OPENLFR_DATABASE_URL"] = db_url
    assert runner.invoke(app, ["org", "list"]).output.strip() == "(none)"
    if db_url.startswith("sqlite"):  # a file that is not there
        missing = tmp_path / "elsewhere" / "openlfr.db"
        os.environ["OPENLFR_DATABASE_URL"] = f"sqlite:///{missing}"
        one_error(runner.invoke(app, ["org", "list"]), f"no openlfr store at {missing} (check OPENLFR_DATABASE_URL")
        assert not missing.exists()
        return
    engine = make_engine(db_url)  # a database without openlfr's tables
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    one_error(runner.invoke(app, ["org", "list"]), "holds no openlfr store (check OPENLFR_DATABASE_URL")


def test_the_two_data_folders_are_told_apart(tmp_path: Path, data_dir: Path) -> None:
    """OPENLFR_DATA (face data for the tests and the demo) and OPENLFR_DATA_DIR (the store)."""
    store = tmp_path / "store"
    make_store(store)
    result = runner.invoke(app, ["org", "list", "--data-dir", str(store)], env={"OPENLFR_DATA": str(store)})
    assert result.exit_code == 0 and "warning: OPENLFR_DATA=" in result.output and "OPENLFR_DATA_DIR" in result.output
    result = runner.invoke(app, ["org", "list", "--data-dir", str(data_dir)])
    assert f"warning: the data directory {data_dir} holds face data" in result.output
    one_error(result, "no openlfr store at")
    quiet = runner.invoke(app, ["org", "list", "--data-dir", str(store)], env={"OPENLFR_DATA": str(data_dir)})
    assert quiet.exit_code == 0 and "warning" not in quiet.output
    assert "OPENLFR_DATA is something else" in " ".join(runner.invoke(app, ["--help"]).output.split())


# ---------------------------------------------------------------- help on every option
def _commands(cmd, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], object]]:
    yield path, cmd
    for name, sub in getattr(cmd, "commands", {}).items():
        yield from _commands(sub, (*path, name))


def test_every_command_and_parameter_has_help_without_backticks() -> None:
    root = typer.main.get_command(app)
    globals_ = {o for p in root.params if p.name in GLOBAL_OPTIONS for o in (*p.opts, *p.secondary_opts)}
    missing, ticks, clashes, seen = [], [], [], 0
    for path, cmd in _commands(root):
        seen += 1
        if not (cmd.help or "").strip():
            missing.append(" ".join(path) or "openlfr")
        for param in cmd.params:
            if not (getattr(param, "help", None) or "").strip():
                missing.append(f"{' '.join(path)} {param.name}")
            if path and globals_ & {*param.opts, *param.secondary_opts}:
                clashes.append(f"{' '.join(path)} {param.name}")  # it would be taken for the global option
        shown = runner.invoke(app, [*path, "--help"], terminal_width=200)
        assert shown.exit_code == 0, (path, shown.output)
        if "`" in shown.output:
            ticks.append(" ".join(path) or "openlfr")
    assert seen > 60  # the whole tree was walked
    assert not missing, f"without help: {missing}"
    assert not ticks, f"backticks in the help of: {ticks}"
    assert not clashes, f"options named like a global option: {clashes}"


# ---------------------------------------------------------------- cameras by name or id
def _operator_admin(db_url: str) -> tuple[object, str]:
    """A store with the host organisation, its operator admin 'alice' (returns the store and her token)."""
    from openlfr.governance import (
        Governance,
        OrgKind,
        Role,
        credentials,
        organisations,
        users,
    )
    from openlfr.governance.schemas import OrganisationCreate, UserCreate
    from openlfr.store.models import User

    gov = Governance(db_url)

    def token(name: str) -> str:
        with gov.transaction() as ctx:
            user = ctx.session.execute(select(User).where(User.name == name)).scalar_one()
            return credentials.new_token(ctx.session, user, "cli", timedelta(days=1), ctx.now())[0]

    with gov.transaction() as ctx:
        _, enrolment = organisations.register(ctx, OrganisationCreate(name="Estate", kind=OrgKind.SITE_OPERATOR),
                                              "test", is_host=True)
        organisations.enrol(ctx, enrolment.token, "estate-admin", PW)
    from openlfr.governance import Actor

    admin = Actor(token("estate-admin"), "estate-admin")
    with gov.transaction() as ctx:
        users.create_user(ctx, admin, UserCreate(name="alice", role=Role.OPERATOR_ADMIN), None)
    return gov, token("alice")


def test_cameras_are_named_by_name_or_id_in_every_command(db_url: str) -> None:
    from openlfr.governance.searches import _camera
    from openlfr.store.models import AuditEvent

    os.environ["OPENLFR_DATABASE_URL"] = db_url
    gov, alice = _operator_admin(db_url)
    env = {"OPENLFR_TOKEN": alice}
    added = runner.invoke(app, ["camera", "add", "north-gate", "--location", "North gate"], env=env)
    assert added.exit_code == 0, added.output
    cam_id = int(added.output.split()[1])
    notice = ["--text", "Live facial recognition is in use here"]
    for ref in ("north-gate", str(cam_id)):
        result = runner.invoke(app, ["camera", "signage", ref, *notice], env=env)
        assert result.exit_code == 0 and "checked on" in result.output, result.output
    one_error(runner.invoke(app, ["camera", "signage", "nowhere", *notice], env=env), "no camera named or numbered")
    now = datetime.now(UTC).replace(microsecond=0)
    request = ["deployment", "request", "--purpose", "p", "--watchlist", "999", "--start", now.isoformat(),
               "--end", (now + timedelta(hours=1)).isoformat(), "--legal-basis", "ukgdpr_a6_1f_a9_2g_sch1_para10",
               "--dpia", "D-1", "--dpia-date", "2024-06-03", "--eia-ref", "E-1", "--eia-date", "2024-06-03",
               "--necessity", "n " * 12, "--proportionality", "p " * 12, "--threshold", "0.5"]
    # a camera's name passes (the refusal is then about the watchlist); an unknown one is refused, audited
    assert "camera" not in one_error(runner.invoke(app, [*request, "--camera", "north-gate"], env=env), "")
    one_error(runner.invoke(app, [*request, "--camera", "nowhere"], env=env), "no camera named or numbered 'nowhere'")
    with gov.transaction() as ctx:
        refusals = ctx.session.execute(select(AuditEvent).where(AuditEvent.action.in_(
            ["signage.record.refused", "deployment.request.refused"]))).scalars().all()
        assert {(e.actor, e.action) for e in refusals if "nowhere" in e.details} == {
            ("alice", "signage.record.refused"), ("alice", "deployment.request.refused")}
    gov.close()
    # a search's --camera: the name, or else the id
    dep = SimpleNamespace(id=1, cameras=[SimpleNamespace(id=7, name="12"), SimpleNamespace(id=12, name="gate")])
    assert _camera(dep, "gate").id == 12 and _camera(dep, "7").id == 7 and _camera(dep, "12").id == 7


# ---------------------------------------------------------------- clear errors
def test_a_missing_optional_backend_is_one_error_line() -> None:
    one_error(runner.invoke(app, ["--backend", "torch", "calibrate", "--watchlist-size", "5"]),
              "--backend (OPENLFR_BACKEND): Input should be 'auto', 'cpu', 'cuda' or 'dlib', not 'torch'")

    @user_errors
    def needs_torch() -> None:
        importlib.import_module("openlfr_no_such_backend")  # stands in for torch or dlib not being installed

    one_error(runner.invoke(_single(needs_torch), ["x"]), "'openlfr_no_such_backend' is not installed")


def test_the_hog_detector_without_dlib_is_one_error_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from openlfr.face.analyzer import default_analyzer

    monkeypatch.setitem(sys.modules, "dlib", None)  # "import dlib" fails, as where it is not installed
    default_analyzer.cache_clear()  # built from the settings of this run, not an earlier one
    try:
        one_error(runner.invoke(app, ["calibrate", "--watchlist-size", "5", "--cohort", str(tmp_path),
                                      "--detector", "hog", "--face-model", "dlib-resnet"]), "needs dlib")
    finally:
        default_analyzer.cache_clear()


def _single(fn) -> typer.Typer:
    """A one-command app around ``fn``."""
    one = typer.Typer(add_completion=False)
    one.command("x")(fn)

    @one.callback()
    def _root() -> None:
        """test"""

    return one


def test_share_add_errors_name_the_file(db_url: str, tmp_path: Path) -> None:
    from PIL import Image

    os.environ["OPENLFR_DATABASE_URL"] = db_url
    gov, alice = _operator_admin(db_url)
    gov.close()
    blank = tmp_path / "blank-wall.png"
    Image.new("RGB", (240, 240), (128, 128, 128)).save(blank)
    args = ["share", "add", "1", str(blank), "--category", "wanted_serious", "--reason", "r", "--subject", "S-1",
            "--image-date", "2024-01-01"]
    line = one_error(runner.invoke(app, args, env={"OPENLFR_TOKEN": alice}), f"{blank}: no face found")
    assert "<bytes>" not in line and "image:" not in line


# ---------------------------------------------------------------- progress and a summary
def test_progress_is_a_plain_line_off_a_terminal_and_always_ends_in_a_summary() -> None:
    out = io.StringIO()
    with progress("scanned", 1000, "frames", console=Console(file=out, force_terminal=False), every_s=0) as bar:
        bar.update(250, note="0 alerts")
        bar.advance(1)
        bar.done("0 alerts in 251 frames analysed")
    lines = out.getvalue().splitlines()
    assert lines[:2] == ["scanned 250 of 1000 frames, 0 alerts", "scanned 251 of 1000 frames, 0 alerts"]
    assert lines[2].startswith("0 alerts in 251 frames analysed (") and lines[2].endswith(" s)")
    quiet = io.StringIO()  # between the periodic lines nothing is printed, but the summary always is
    with progress("scanned", None, "frames", console=Console(file=quiet, force_terminal=False), every_s=3600) as bar:
        bar.advance(5)
        bar.done("0 alerts in 5 frames analysed")
    assert quiet.getvalue().startswith("0 alerts in 5 frames analysed (") and len(quiet.getvalue().splitlines()) == 1


def test_progress_is_a_bar_on_a_terminal() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100)
    bar = Progress("scanned", 10, "frames", console=console, every_s=0)
    bar._start()
    assert bar._bar is not None  # a Rich bar, not the plain lines
    bar.update(4, note="1 alert")
    bar._bar.refresh()
    bar.done("1 alert in 4 frames analysed")
    text = out.getvalue()
    assert "4/10" in text and "1 alert" in text and "scanned 4 of 10" not in text
    assert "1 alert in 4 frames analysed (" in text
