"""The shape of the ``openlfr.cli`` package: one error decorator on every command, one ``--json``
option, one store opener and one JSON printer, and no dependency on the HTTP layer."""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
from pathlib import Path

import typer

import openlfr.cli as cli
from openlfr.cli.support import user_errors

PACKAGE = Path(cli.__file__).parent
# the one module that may load openlfr.api, inside its command, and why (the read models both
# doors print live below the API: openlfr.governance.deployment_view)
API_USERS = {
    "serve.py": "serves the HTTP API itself",
}


def _commands(cmd, path=()):  # noqa: ANN001, ANN202
    """(path, click command) for the root and every group and command under it."""
    yield path, cmd
    for name, sub in getattr(cmd, "commands", {}).items():
        yield from _commands(sub, (*path, name))


def _tree():  # noqa: ANN202
    return list(_commands(typer.main.get_command(cli.app)))


def _sources() -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(PACKAGE.glob("*.py"))}


def test_every_command_goes_through_the_one_error_decorator() -> None:
    wrapped_code = user_errors(lambda: None).__code__
    runnable = [(path, cmd) for path, cmd in _tree() if cmd.callback is not None]
    assert len(runnable) > 70  # the whole tree, not an empty walk
    for path, cmd in runnable:
        if hasattr(cmd, "commands") and path:  # a group's own callback (none has one) does no work
            continue
        # typer wraps the function it was given (functools.wraps): one level down is user_errors' wrapper
        given = cmd.callback.__wrapped__
        assert given.__code__ is wrapped_code, f"openlfr {' '.join(path)}: not decorated with @user_errors"


def test_one_json_option() -> None:
    options = [(path, p) for path, cmd in _tree() for p in cmd.params if "--json" in p.opts]
    assert len(options) > 20
    for path, option in options:
        assert option.is_flag and option.help == "Machine-readable output.", f"openlfr {' '.join(path)} --json"
    declared = [name for name, text in _sources().items() if '"--json"' in text]
    assert declared == ["support.py"], declared  # JsonOption, declared once


def test_one_store_opener_and_one_printer() -> None:
    for name, text in _sources().items():
        if name != "store.py":
            assert "Governance(" not in text, f"{name} opens the store itself: use openlfr.cli.store"
        if name != "support.py":
            assert "json.dumps(" not in text or name == "cameras.py", f"{name} prints JSON itself: use print_json"
    cameras = _sources()["cameras.py"]
    assert cameras.count("json.dumps(") == 1 and "settings={json.dumps(" in cameras  # a value inside a text line


def test_the_command_line_does_not_stand_on_the_http_layer() -> None:
    importers = set()
    for name, text in _sources().items():
        for node in ast.walk(ast.parse(text)):
            modules = ([a.name for a in node.names] if isinstance(node, ast.Import)
                       else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(m == "openlfr.api" or m.startswith("openlfr.api.") for m in modules):
                importers.add(name)
                assert not isinstance(node, ast.ImportFrom) or node.col_offset > 0, \
                    f"{name} imports openlfr.api at module level"
    assert importers == set(API_USERS), importers
    # ... and loading the command line (what every command does) loads none of it
    script = "import sys, openlfr.cli; print(sorted(m for m in sys.modules if m.startswith('openlfr.api')))"
    loaded = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]", loaded


def test_nothing_else_stands_on_the_command_line() -> None:
    for path in sorted(PACKAGE.parent.rglob("*.py")):
        if PACKAGE in path.parents:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            modules = ([a.name for a in node.names] if isinstance(node, ast.Import)
                       else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(m.startswith("openlfr.cli") for m in modules), \
                f"{path.relative_to(PACKAGE.parent)} imports the command line ({modules})"


def test_each_group_is_registered_once_from_one_place() -> None:
    source = inspect.getsource(cli.register_all)
    modules = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__", "__main__", "support", "store", "credentials",
                                                       "args"}
    for module in modules:  # every command module, and only those, has register(app) and is listed
        assert f" {module}," in source or f" {module})" in source, f"{module} is not registered by register_all"
        text = _sources()[f"{module}.py"]
        assert "\ndef register(app: typer.Typer) -> None:" in text, module
