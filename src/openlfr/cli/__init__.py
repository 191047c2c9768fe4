"""The ``openlfr`` command line.

Every deliberate error (bad input, refused action) ends in one line on stderr and exit
code 2; nothing is written when a command fails part-way.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from typer import _click as click
from typer.core import TyperGroup

from openlfr.cli.support import fail, missing_store, user_errors
from openlfr.config import get_settings
from openlfr.errors import OpenLFRError



class UserError(OpenLFRError):
    """A usage problem found by the command line itself."""


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
evaluate_app = typer.Typer(help="Measure accuracy on labelled face data.", no_args_is_help=True)
app.add_typer(evaluate_app, name="evaluate")


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
def _main(
    ctx: typer.Context,
    data_dir: Annotated[
        Optional[Path], typer.Option(help="The store's folder: database, encrypted files, keys (default: the "
                                          "user's data folder, or OPENLFR_DATA_DIR). Not OPENLFR_DATA, the face "
                                          "data the tests and demo read.")
    ] = None,
    backend: Annotated[
        Optional[str], typer.Option(help="Inference backend: cpu, cuda, auto or dlib (default: OPENLFR_BACKEND or auto).")
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

    from openlfr.config import configure
    from openlfr.logs import configure_logging

    try:
        settings = configure(data_dir=data_dir, backend=backend, detector=detector, face_model=face_model,
                             log_level=log_level)
    except ValidationError as err:  # e.g. --backend torch: one line, not a traceback
        first = err.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "setting"
        fail(f"--{field.replace('_', '-')} (OPENLFR_{field.upper()}): {first['msg']}, not {first.get('input')!r}")
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


def _analyzer():  # noqa: ANN202
    from openlfr.face.analyzer import default_analyzer

    return default_analyzer()


def _print_json(obj: object) -> None:
    sys.stdout.write(json.dumps(obj, indent=2) + "\n")


@app.command()
@user_errors
def identify(
    image: Annotated[Path, typer.Argument(help="Image to analyse.")],
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Every face in an image: its box, detector score, quality and quality issues.

    No matching: there is no watchlist outside an authorised deployment
    (live cameras: 'openlfr run'; recordings: 'openlfr scan --deployment ID').
    """
    from openlfr.face.image import load_image

    faces = _analyzer().analyze(load_image(image))
    out = [
        {
            "box": face.box.as_list(),
            "detector_score": round(face.detection.score, 4),
            "quality": round(face.quality.score, 4),
            "quality_issues": face.quality.reasons,
        }
        for face in faces
    ]
    if json_out:
        _print_json({"image": str(image), "faces": out})
        return
    if not out:
        typer.echo(f"{image}: no face found")
    for k, f in enumerate(out, 1):
        issues = ", ".join(f["quality_issues"]) or "none"
        typer.echo(f"face {k}: box {f['box']} detector {f['detector_score']:.2f} quality {f['quality']:.2f} "
                   f"(issues: {issues})")


@app.command()
@user_errors
def scan(
    video: Annotated[str, typer.Argument(help="Recorded video file to search.")],
    deployment: Annotated[Optional[int], typer.Option(
        "--deployment", help="The started retrospective deployment the search runs in (required).")] = None,
    camera: Annotated[Optional[str], typer.Option(
        help="The deployment's camera whose footage this is, by name or id (default: its only camera).")] = None,
    fps: Annotated[Optional[float], typer.Option(help="Frames analysed per second of video (default 5).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Search a recording in a started retrospective deployment, as the user logged in.

    Only an operator admin or reviewer of the deployment's organisation may
    search, while its window is open; the file's SHA-256 is audited. Matches
    become alerts of the deployment, stored with their encrypted crop for its
    reviewers: one line each as it is committed, then a summary line. Progress goes to
    stderr: a bar on a terminal, else a line every 10 s (OPENLFR_PROGRESS_SECONDS). A refused
    search stores nothing but the audited refusal.
    """
    from openlfr.cli.auth import saved, verify
    from openlfr.cli.support import progress
    from openlfr.governance import Actor, Governance
    from openlfr.scan import SearchResult, SearchStopped, format_time, search_recording

    def show(event) -> None:  # noqa: ANN001
        if json_out:
            sys.stdout.write(json.dumps({"alert": event.alert_id, "time": format_time(event.video_time),
                                         "video_time": event.video_time, "score": event.score, "label": event.label,
                                         "deployment": event.deployment_id, "camera": event.camera_id,
                                         "track": event.track_id, "at": event.at}) + "\n")
        else:
            sys.stdout.write(f"{format_time(event.video_time)}\talert {event.alert_id}\t{event.score:.3f}\t"
                             f"{event.label}\n")
        sys.stdout.flush()

    bars: list = []  # the progress display, while the search runs
    seen = [0]  # alerts so far

    def on_alert(event) -> None:  # noqa: ANN001
        seen[0] += 1
        show(event)

    def on_frame(read: int, expected: int | None) -> None:
        bars[0].update(read, note=f"{seen[0]} alert{'' if seen[0] == 1 else 's'}", total=expected)

    def summary(result: SearchResult) -> None:
        if bars:
            n = len(result.alerts)
            bars[0].done(f"{n} alert{'s' if n != 1 else ''} in {result.analysed} frames analysed"
                         + (" (stopped early)" if result.stopped else ""))
        counts = {"frames_analysed": result.analysed, "people_passes": result.passes, "tracks": result.tracks,
                  "alerts": len(result.alerts)}
        if json_out:
            sys.stdout.write(json.dumps({"summary": {**counts, "deployment": result.grant.deployment_id,
                                                     "camera": result.grant.camera_name,
                                                     "sha256": result.grant.sha256,
                                                     "stopped": result.stopped or None}}) + "\n")
        else:
            sys.stdout.write(f"searched {Path(video).name} in deployment {result.grant.deployment_id} "
                             f"(camera {result.grant.camera_name}): {result.analysed} frames analysed, "
                             f"{result.passes} people passes, {len(result.alerts)} alert(s)"
                             f"{' (stopped early)' if result.stopped else ''}\n")
        sys.stdout.flush()

    gov = Governance()
    try:
        found = saved()  # OPENLFR_TOKEN, else this store's credential from 'openlfr login'
        # none: refused and audited here; a token that is not valid is refused (and audited) by the search's rule
        actor = Actor(found.token, found.name) if found is not None else verify(gov, "search.start")
        with progress("scanned", None, "frames") as bar:
            bars.append(bar)
            try:
                result = search_recording(gov, actor, deployment, video, camera, fps=fps, on_alert=on_alert,
                                          on_frame=on_frame)
            except SearchStopped as err:
                summary(err.result)
                raise
            summary(result)
    finally:
        gov.close()


@evaluate_app.command("lfw")
def evaluate_lfw(
    lfw: Annotated[Path, typer.Option(help="LFW folder (one sub-folder per person).")],
    pairs: Annotated[Path, typer.Option(help="LFW View 2 pairs file.")],
    flip: Annotated[bool, typer.Option(help="Average each template with its mirror image's.")] = True,
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    identification: Annotated[bool, typer.Option(help="Also run the 1:N watchlist experiment.")] = True,
) -> None:
    """Verification accuracy on LFW pairs, and a 1:N watchlist experiment on the same folder.

    Progress goes to stderr (a bar on a terminal, else a line every 10 s), then a summary line."""
    from openlfr.cli.support import progress
    from openlfr.evaluation import lfw as ev
    from openlfr.evaluation.facecache import face_data

    analyzer = _analyzer()
    pair_list = ev.read_pairs(pairs, lfw)
    paths = sorted({p.a for p in pair_list} | {p.b for p in pair_list})
    split = None
    if identification:
        split = ev.split_1n(ev.people(lfw))
        paths = sorted(set(paths) | {p for _, p in split.gallery + split.mated + split.non_mated})
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise UserError(f"{len(missing)} image(s) named by the pairs file are missing, e.g. {missing[0]}")
    settings = get_settings()
    from openlfr.evaluation.effectiveness import pipeline_key

    key = pipeline_key(analyzer, None)
    with progress("templates made for", len(paths), "images") as bar:
        data = face_data(paths, analyzer, cache_dir=settings.data_dir / "eval-cache", key=key, progress=bar.advance)
        ts = ev.TemplateSet.from_face_data(data, flip)
        ver = ev.verification(ts, pair_list)
        result: dict = {"verification": asdict(ver), "images": len(paths), "images_without_face": len(ts.failed)}
        if split is not None:
            result["identification"] = asdict(ev.identification(ts, split))
        bar.done(f"evaluated {ver.pairs} pairs" + (" and the 1:N experiment" if split is not None else "")
                 + f" on {len(paths)} images ({len(ts.failed)} without a face)")
    if json_out:
        _print_json(result)
        return
    typer.echo(
        f"verification: {ver.accuracy_mean * 100:.2f}% ± {ver.accuracy_std * 100:.2f} over {ver.folds} folds "
        f"({ver.pairs} pairs), ROC AUC {ver.roc_auc:.4f}, TAR {ver.tar_at_far_0_1pct * 100:.1f}% at FAR 0.1%"
    )
    typer.echo(f"images without a face: {len(ts.failed)} of {len(paths)}")
    if split is not None:
        ident = result["identification"]
        typer.echo(
            f"1:N: gallery {ident['gallery_size']}, {ident['mated_searches']} mated / {ident['non_mated_searches']} "
            f"non-mated searches; rank-1 {ident['rank1'] * 100:.1f}%; FNIR {ident['fnir_at_fpir_1pct'] * 100:.1f}% at "
            f"FPIR 1% (threshold {ident['threshold_at_fpir_1pct']:.3f}), {ident['fnir_at_fpir_0_1pct'] * 100:.1f}% at "
            f"FPIR 0.1% (threshold {ident['threshold_at_fpir_0_1pct']:.3f})"
        )


def _register_extensions() -> None:
    # each command group lives beside the part of openlfr it drives
    from openlfr.cli import alerts, api, effectiveness, governance, keys, pipeline, rights

    governance.register(app)
    alerts.register(app)
    keys.register(app)
    pipeline.register(app)
    effectiveness.register(app, evaluate_app)
    api.register(app)
    rights.register(app)


_register_extensions()


def main() -> None:
    """Console-script entry point: deliberate errors and store faults become one line and exit code 2."""
    from sqlalchemy.exc import DBAPIError

    try:
        app()
    except OpenLFRError as exc:
        sys.stderr.write(f"error: {exc}\n")
        sys.exit(2)
    except ModuleNotFoundError as exc:  # an optional backend (torch, dlib...) that is not installed
        from openlfr.cli.support import missing_module

        sys.stderr.write(f"error: {missing_module(exc)}\n")
        sys.exit(2)
    except DBAPIError as exc:  # a corrupt, missing or unreachable database: one line, not a traceback
        first = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else type(exc).__name__
        sys.stderr.write(f"error: the store's database cannot be used ({first}); check OPENLFR_DATABASE_URL "
                         "or OPENLFR_DATA_DIR\n")
        sys.exit(2)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
