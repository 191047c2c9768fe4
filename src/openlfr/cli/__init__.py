"""The ``openlfr`` command line: the app, its global options (the root callback) and
:func:`main`, the console-script entry point. Each command group is a module of this package
with a ``register(app)`` function; :func:`register_all` adds them all.

Every deliberate error (bad input, refused action) ends in one line on stderr and exit
code 2 (:func:`openlfr.cli.support.user_errors`, on every command); nothing is written when
a command fails part-way.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from typer import _click as click
from typer.core import TyperGroup

from openlfr.cli.support import fail, missing_store, user_errors

ROOT_HELP = (
    "openlfr: open, accountable live facial recognition.\n\n"
    "The global options below may be given before or after the command: 'openlfr --data-dir X share list' "
    "and 'openlfr share list --data-dir X' are the same.\n\n"
    "OPENLFR_DATA_DIR (or --data-dir) is the store: the database, encrypted files and keys, made by 'openlfr admin "
    "create' or 'openlfr demo-setup'; any other command refuses a folder that holds no store, unless given --init. "
    "OPENLFR_DATA is something else: the shared face data (LFW, videos, references) that the tests and the demo read."
)

# commands that open no store, and those that make a new one (a mistyped --data-dir is refused by the rest)
STORE_FREE = {("identify",), ("evaluate",), ("calibrate",)}
STORE_MAKERS = {("admin", "create"), ("demo-setup",)}
# the root options that may also come after the command (moved in front of it before parsing)
GLOBAL_OPTIONS = ("data_dir", "backend", "detector", "face_model", "log_level", "init")
COMMAND_PATH = "openlfr.command"  # ctx.meta key: the names of the command being run


class RootGroup(TyperGroup):
    """The ``openlfr`` group: global options are accepted after the command too, and the
    command about to run is known to the root callback (which checks the store for it)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        args = hoist_global_options(args, [p for p in self.params if p.name in GLOBAL_OPTIONS])
        rest = super().parse_args(ctx, args)
        ctx.meta[COMMAND_PATH] = command_path(self, ctx, [*ctx._protected_args, *ctx.args])
        return rest


def hoist_global_options(args: list[str], params: list[click.Parameter]) -> list[str]:
    """``args`` with every occurrence of the options ``params`` (and their values) moved to
    the front, so that they may follow the command; nothing after ``--`` is moved."""
    takes_value = {o: not getattr(p, "is_flag", False) for p in params for o in (*p.opts, *p.secondary_opts)}
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        token = args[i]
        if token == "--":
            rest += args[i:]
            break
        name = token.split("=", 1)[0]
        if name in takes_value:
            if takes_value[name] and "=" not in token and i + 1 < len(args):
                front += args[i:i + 2]
                i += 2
                continue
            front.append(token)
        else:
            rest.append(token)
        i += 1
    return front + rest


def command_path(group: click.Command, ctx: click.Context, args: list[str]) -> tuple[str, ...]:
    """The names of the (sub)commands ``args`` select, e.g. ``("admin", "create")``; empty
    when help is asked for (nothing will run)."""
    if "--help" in args:
        return ()
    path: list[str] = []
    cmd: Any = group
    for token in args:
        sub = getattr(cmd, "commands", {}).get(token)
        if sub is None:
            break
        path.append(token)
        cmd = sub
    return tuple(path) if not hasattr(cmd, "commands") else ()


app = typer.Typer(cls=RootGroup, help=ROOT_HELP, no_args_is_help=True)


def _show_version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            number = version("openlfr")
        except PackageNotFoundError:  # run from a source tree that is not installed
            from openlfr import __version__ as number
        typer.echo(f"openlfr {number}")
        raise typer.Exit()


@app.callback()
@user_errors
def _main(
    ctx: typer.Context,
    data_dir: Annotated[
        Optional[Path], typer.Option(help="The store's folder: database, encrypted files, keys (default: the "
                                          "user's data folder, or OPENLFR_DATA_DIR). Not OPENLFR_DATA, the face "
                                          "data the tests and demo read.")
    ] = None,
    backend: Annotated[
        Optional[str], typer.Option(help="Inference backend: cpu, cuda, auto or dlib (default: OPENLFR_BACKEND or "
                                         "auto).")
    ] = None,
    detector: Annotated[
        Optional[str], typer.Option(help="Face detector: yunet, mmod or hog (needs dlib) (default: OPENLFR_DETECTOR "
                                         "or yunet).")
    ] = None,
    face_model: Annotated[
        Optional[str], typer.Option(help="Face model whose templates are made and matched: sface or dlib-resnet, or "
                                         "one registered in OPENLFR_MODELS_FILE (default: OPENLFR_FACE_MODEL or "
                                         "sface).")
    ] = None,
    log_level: Annotated[
        Optional[str], typer.Option(help="Least severe log record shown: debug, info, warning or error (default: "
                                         "OPENLFR_LOG_LEVEL or info).")
    ] = None,
    init: Annotated[bool, typer.Option(
        "--init", help="Start a new, empty store if the data directory holds none (otherwise only 'admin create' "
                       "and 'demo-setup' make one).")] = False,
    version: Annotated[bool, typer.Option(
        "--version", callback=_show_version, is_eager=True, help="Print openlfr's version and exit.")] = False,
) -> None:
    from pydantic import ValidationError

    from openlfr.config import configure, invalid_setting
    from openlfr.logs import configure_logging

    try:  # the options lie over the environment in this process (os.environ is not written)
        settings = configure(data_dir=data_dir, backend=backend, detector=detector, face_model=face_model,
                             log_level=log_level)
    except ValidationError as err:  # e.g. --backend torch: one line, not a traceback
        field, env, why = invalid_setting(err)
        fail(f"--{field.replace('_', '-')} ({env}): {why}" if field in GLOBAL_OPTIONS else f"{env}: {why}")
    configure_logging()
    path = ctx.meta.get(COMMAND_PATH, ())
    for warning in data_warnings(Path(settings.data_dir)):
        typer.echo(f"warning: {warning}", err=True)
    if path and not init and not any(path[:len(p)] == p for p in STORE_FREE | STORE_MAKERS):
        problem = missing_store()
        if problem is not None:
            fail(problem)


def data_warnings(store_dir: Path) -> list[str]:
    """Warnings for the two easily confused folders: OPENLFR_DATA (face data) pointing at a
    store, and the store's folder (OPENLFR_DATA_DIR, --data-dir) pointing at face data."""
    out = []
    shared = os.environ.get("OPENLFR_DATA")
    if shared and (Path(shared) / "openlfr.db").exists():
        out.append(f"OPENLFR_DATA={shared} is an openlfr store; OPENLFR_DATA is the shared face data (LFW, "
                   "videos) the tests and demo read, and the store's folder is OPENLFR_DATA_DIR (--data-dir)")
    face_data = [n for n in ("lfw", "lfw_pairs.txt", "video") if (store_dir / n).exists()]
    if face_data and not (store_dir / "openlfr.db").exists():
        out.append(f"the data directory {store_dir} holds face data ({', '.join(face_data)}), not a store: "
                   "--data-dir / OPENLFR_DATA_DIR is the store's folder; face data is OPENLFR_DATA")
    return out


def register_all(app: typer.Typer) -> None:
    """Add every command group to ``app``: the one place that lists them (each module's
    ``register`` adds its own; the order is that of ``openlfr --help``)."""
    from openlfr.cli import (admin, agreements, alerts, audit, auth, cameras, demo, deployments, effectiveness, faces,
                             jobs, keys, orgs, pipeline, retention, rights, scan, serve, users)

    for module in (faces, scan, auth, orgs, demo, pipeline, effectiveness, serve, users, agreements, cameras,
                   deployments, retention, audit, alerts, keys, admin, rights, jobs):
        module.register(app)


register_all(app)


def main() -> None:
    """Console-script entry point. Every command, and the root callback, turns deliberate errors
    into one line and exit code 2 (:func:`~openlfr.cli.support.user_errors`); this is only the
    last safety net, with the same words, for one raised outside them, and for Ctrl-C."""
    from openlfr.cli.support import one_line

    try:
        app()
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
    except Exception as exc:
        message = one_line(exc)
        if message is None:
            raise
        sys.stderr.write(f"error: {message}\n")
        sys.exit(2)
