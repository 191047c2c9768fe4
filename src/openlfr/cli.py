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
from typing import Annotated, Optional

import typer
from rich.console import Console

from openlfr.config import get_settings
from openlfr.errors import OpenLFRError
from openlfr.matching.similarity import DEFAULT_THRESHOLD

err_console = Console(stderr=True)



class UserError(OpenLFRError):
    """A usage problem found by the command line itself."""


app = typer.Typer(help="openlfr: open, accountable live facial recognition.", no_args_is_help=True)
watchlist_app = typer.Typer(help="A local watchlist kept in the data directory.", no_args_is_help=True)
app.add_typer(watchlist_app, name="watchlist")
evaluate_app = typer.Typer(help="Measure accuracy on labelled face data.", no_args_is_help=True)
app.add_typer(evaluate_app, name="evaluate")


@app.callback()
def _main(
    data_dir: Annotated[
        Optional[Path], typer.Option(help="Data directory (default: the user's data folder, or OPENLFR_DATA_DIR).")
    ] = None,
    backend: Annotated[
        Optional[str], typer.Option(help="Inference backend: cpu, cuda, auto or dlib (default: OPENLFR_BACKEND or auto).")
    ] = None,
    detector: Annotated[
        Optional[str], typer.Option(help="Face detector: hog or mmod (default: OPENLFR_DETECTOR or mmod; hog needs dlib).")
    ] = None,
) -> None:
    for name, value in (("OPENLFR_DATA_DIR", data_dir), ("OPENLFR_BACKEND", backend), ("OPENLFR_DETECTOR", detector)):
        if value is not None:
            os.environ[name] = str(value)
    get_settings.cache_clear()


def _analyzer():  # noqa: ANN202
    from openlfr.face.analyzer import default_analyzer

    return default_analyzer()


def _watchlist():  # noqa: ANN202
    from openlfr.matching.local_watchlist import LocalWatchlist

    return LocalWatchlist(get_settings().data_dir)


def _print_json(obj: object) -> None:
    sys.stdout.write(json.dumps(obj, indent=2) + "\n")


@watchlist_app.command("add")
def watchlist_add(
    name: Annotated[str, typer.Argument(help="Name of the person.")],
    images: Annotated[list[Path], typer.Argument(help="One or more enrolment images, each showing exactly this person.")],
) -> None:
    """Enrol a person from one or more images (all or nothing)."""
    from openlfr.face.image import load_image

    analyzer = _analyzer()
    wl = _watchlist()
    entries = []
    for path in images:
        face = analyzer.enrol(load_image(path), label=str(path))
        entries.append((str(path), path.read_bytes(), face.template, face.quality.score))
    subject = wl.add(name, entries)
    wl.save()
    typer.echo(f"enrolled {name!r}: {len(entries)} image(s) added, {len(subject.images)} in total")


@watchlist_app.command("list")
def watchlist_list(json_out: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
    """List the people on the local watchlist."""
    wl = _watchlist()
    rows = [{"name": s.name, "images": len(s.images), "quality": [i.quality for i in s.images]} for s in wl.subjects]
    if json_out:
        _print_json(rows)
        return
    if not rows:
        typer.echo("the watchlist is empty")
    for r in rows:
        typer.echo(f"{r['name']}\t{r['images']} image(s)")


@watchlist_app.command("remove")
def watchlist_remove(name: Annotated[str, typer.Argument(help="Name of the person to remove.")]) -> None:
    """Remove a person and all their templates."""
    wl = _watchlist()
    subject = wl.remove(name)
    wl.save()
    typer.echo(f"removed {subject.name!r} ({len(subject.images)} template(s))")


@app.command()
def identify(
    image: Annotated[Path, typer.Argument(help="Image to search.")],
    top: Annotated[int, typer.Option(help="Candidates shown per face.")] = 3,
    threshold: Annotated[float, typer.Option(help="Similarity at or above which a candidate is a match.")] = DEFAULT_THRESHOLD,
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Every face in an image: its box, quality and best watchlist candidates."""
    from openlfr.face.image import load_image

    img = load_image(image)
    faces = _analyzer().analyze(img)
    index = _watchlist().index()
    results = index.search([f.template for f in faces], k=top) if faces else []
    out = []
    for face, cands in zip(faces, results):
        out.append(
            {
                "box": face.box.as_list(),
                "detector_score": round(face.detection.score, 4),
                "quality": round(face.quality.score, 4),
                "quality_issues": face.quality.reasons,
                "candidates": [
                    {"name": c.label, "score": round(c.score, 4), "match": c.score >= threshold} for c in cands
                ],
            }
        )
    if json_out:
        _print_json({"image": str(image), "faces": out})
        return
    if not out:
        typer.echo(f"{image}: no face found")
    for k, f in enumerate(out, 1):
        cands = ", ".join(f"{c['name']} {c['score']:.3f}{' MATCH' if c['match'] else ''}" for c in f["candidates"])
        typer.echo(f"face {k}: box {f['box']} quality {f['quality']:.2f}  candidates: {cands or '(watchlist empty)'}")


@app.command()
def scan(
    video: Annotated[Path, typer.Argument(help="Video file to scan.")],
    fps: Annotated[float, typer.Option(help="Frames analysed per second of video.")] = 5.0,
    threshold: Annotated[float, typer.Option(help="Similarity at or above which a face raises an alert.")] = DEFAULT_THRESHOLD,
    cooldown: Annotated[float, typer.Option(help="Seconds without a match before the same person alerts again.")] = 10.0,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object per alert line.")] = False,
) -> None:
    """Match the faces in a video file against the local watchlist; one line per alert."""
    from openlfr.scan import scan_video
    from openlfr.video.file_source import VideoFileSource

    source = VideoFileSource(video, sample_fps=fps)
    index = _watchlist().index()
    if not len(index):
        raise UserError("the watchlist is empty: add someone with 'openlfr watchlist add'")
    for alert in scan_video(source, index, _analyzer(), threshold=threshold, cooldown=cooldown):
        if json_out:
            sys.stdout.write(json.dumps(asdict(alert)) + "\n")
        else:
            sys.stdout.write(f"{alert.timestamp}\t{alert.name}\t{alert.score:.3f}\n")
        sys.stdout.flush()


@evaluate_app.command("lfw")
def evaluate_lfw(
    lfw: Annotated[Path, typer.Option(help="LFW folder (one sub-folder per person).")],
    pairs: Annotated[Path, typer.Option(help="LFW View 2 pairs file.")],
    flip: Annotated[bool, typer.Option(help="Average each template with its mirror image's.")] = True,
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    identification: Annotated[bool, typer.Option(help="Also run the 1:N watchlist experiment.")] = True,
) -> None:
    """Verification accuracy on LFW pairs, and a 1:N watchlist experiment on the same folder."""
    from rich.progress import Progress

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
    key = f"{settings.backend}|{settings.detector}|{type(analyzer.stage.embedder).__name__}"
    with Progress(console=err_console, transient=True, disable=json_out and not sys.stderr.isatty()) as bar:
        task = bar.add_task("computing templates", total=len(paths))
        data = face_data(
            paths, analyzer, cache_dir=settings.data_dir / "eval-cache", key=key, progress=lambda n: bar.advance(task, n)
        )
    ts = ev.TemplateSet.from_face_data(data, flip)
    ver = ev.verification(ts, pair_list)
    result: dict = {"verification": asdict(ver), "images": len(paths), "images_without_face": len(ts.failed)}
    if split is not None:
        result["identification"] = asdict(ev.identification(ts, split))
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
    from openlfr import cli_api, cli_effectiveness, cli_governance, cli_pipeline

    cli_governance.register(app)
    cli_pipeline.register(app)
    cli_effectiveness.register(app, evaluate_app)
    cli_api.register(app)


_register_extensions()


def main() -> None:
    """Console-script entry point: deliberate errors become one line and exit code 2."""
    try:
        app()
    except OpenLFRError as exc:
        sys.stderr.write(f"error: {exc}\n")
        sys.exit(2)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)


if __name__ == "__main__":
    main()
