"""Effectiveness commands: ``openlfr evaluate lfw|openset`` and ``openlfr calibrate``.
:func:`register` adds them to the main app.
"""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Optional

import typer

from openlfr.cli.support import JsonOption, print_json, progress, user_errors
from openlfr.errors import InputError

evaluate_app = typer.Typer(help="Measure accuracy on labelled face data.", no_args_is_help=True)


def _analyzer_and_fallback():  # noqa: ANN202
    """The configured analyzer, and the other detector as a fallback for faces it misses."""
    from openlfr.config import get_settings
    from openlfr.face.analyzer import default_analyzer
    from openlfr.face.detectors import make_detector

    settings = get_settings()
    analyzer = default_analyzer()
    if analyzer.stage.landmarker is None:  # the model aligns on its detector's own points: no other detector serves
        return analyzer, None
    name = getattr(analyzer.stage.detector, "name", settings.models.detector)
    other = "hog" if name == "mmod" else "mmod"
    return analyzer, make_detector(other, backend=settings.models.backend)


def _cache_dir(cache_dir: Path | None) -> Path:
    from openlfr.config import get_settings

    return cache_dir or get_settings().data_dir / "eval-cache"


@user_errors
def evaluate_lfw(
    lfw: Annotated[Path, typer.Option(help="LFW folder (one sub-folder per person).")],
    pairs: Annotated[Path, typer.Option(help="LFW View 2 pairs file.")],
    flip: Annotated[bool, typer.Option(help="Average each template with its mirror image's.")] = True,
    json_out: JsonOption = False,
    identification: Annotated[bool, typer.Option(help="Also run the 1:N watchlist experiment.")] = True,
) -> None:
    """Verification accuracy on LFW pairs, and a 1:N watchlist experiment on the same folder.

    Progress goes to stderr (a bar on a terminal, else a line every 10 s), then a summary line."""
    from openlfr.cli.faces import analyzer as configured_analyzer
    from openlfr.config import get_settings
    from openlfr.evaluation import lfw as ev
    from openlfr.evaluation.facecache import face_data

    analyzer = configured_analyzer()
    pair_list = ev.read_pairs(pairs, lfw)
    paths = sorted({p.a for p in pair_list} | {p.b for p in pair_list})
    split = None
    if identification:
        split = ev.split_1n(ev.people(lfw))
        paths = sorted(set(paths) | {p for _, p in split.gallery + split.mated + split.non_mated})
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise InputError(f"{len(missing)} image(s) named by the pairs file are missing, e.g. {missing[0]}")
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
        print_json(result)
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


@user_errors
def evaluate_openset(
    folder: Annotated[Path, typer.Option(help="Labelled folder in LFW layout (one sub-folder per person).")],
    groups: Annotated[Optional[Path], typer.Option(
        help="CSV of image,group labels for demographic differentials.")] = None,
    report: Annotated[Optional[Path], typer.Option(
        help="Write report.html, report.json and plots into this folder.")] = None,
    splits: Annotated[int, typer.Option(help="Random halvings for the out-of-sample calibration check.")] = 10,
    cache_dir: Annotated[Optional[Path], typer.Option(
        help="Where face data is cached (default: <data dir>/eval-cache).")] = None,
    json_out: JsonOption = False,
) -> None:
    """Open-set (watchlist) accuracy: FNIR at FPIR, rank-1, CMC, each gain on/off, calibration check.

    Progress goes to stderr (a bar on a terminal, else a line every 10 s), then a summary line."""
    from openlfr.evaluation import demographics, effectiveness, lfw
    from openlfr.evaluation import report as rep

    if splits < 1:
        raise InputError("--splits must be at least 1")
    labels = demographics.read_groups(groups) if groups is not None else None
    analyzer, fallback = _analyzer_and_fallback()
    n = sum(len(v) for v in lfw.people(folder).values())
    with progress("templates made for", n, "images") as bar:
        result = effectiveness.evaluate_folder(
            folder, analyzer, cache_dir=_cache_dir(cache_dir), fallback=fallback, groups=labels, out_dir=report,
            calibration_splits=splits, progress=bar.advance,
        )
        if report is not None:
            html_file, json_file = rep.write_evaluation(result, report)
            result["report"] = {"html": str(html_file), "json": str(json_file)}
        bar.done(f"evaluated {result['people']} people on {result['images']} images "
                 f"({result['images_without_face']} without a face)")
    if json_out:
        sys.stdout.write(rep.dumps(result) + "\n")
        return
    _print_summary(result)


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{v * 100:.1f}%"


def _print_summary(result: dict) -> None:
    typer.echo(
        f"{result['people']} people, {result['images']} images ({result['images_without_face']} without a face); "
        f"pipeline {result['pipeline']}"
    )
    typer.echo(f"{'configuration':48s} {'rank-1':>7s} {'FNIR@1%':>8s} {'FNIR@0.1%':>9s} {'refused':>8s}")
    for r in result["gains"]:
        typer.echo(
            f"{r['config']:48s} {_pct(r['rank1']):>7s} {_pct(r['fnir_at_fpir_1pct']):>8s} "
            f"{_pct(r['fnir_at_fpir_0_1pct']):>9s} {_pct(r['refusal_rate_mated']):>8s}"
        )
    typer.echo(f"kept: {', '.join(result['kept_gains']) or 'none'}; recommended: {result['recommended']['config']}")
    for r in result["fusion"]:
        typer.echo(
            f"  same searches, {r['config']:44s} {_pct(r['rank1']):>7s} {_pct(r['fnir_at_fpir_1pct']):>8s} "
            f"{_pct(r['fnir_at_fpir_0_1pct']):>9s}"
        )
    for c in result["calibration_check"].values():
        for p in c["pooled"]:
            typer.echo(
                f"calibration ({c['config']}, {p['method']}): target FPIR {p['target_fpir'] * 100:g}% -> observed "
                f"{p['observed_fpir'] * 100:.3f}% out of sample (x{p['ratio']:.2f}); FNIR predicted "
                f"{_pct(p['mean_predicted_fnir'])}, observed {_pct(p['mean_observed_fnir'])}"
            )
    demo = result.get("demographics")
    if demo:
        for rate, d in demo["at_fpir"].items():
            for g in d["groups"]:
                typer.echo(
                    f"FPIR {rate} threshold: group {g['group']}: FNIR {_pct(g['fnir'])} ({g['misses']}/{g['mated']}), "
                    f"FPIR {_pct(g['fpir'])} ({g['false_alerts']}/{g['non_mated']})"
                )
    if "report" in result:
        typer.echo(f"report: {result['report']['html']}")


@user_errors
def calibrate(
    watchlist_size: Annotated[Optional[int], typer.Option(help="Number of people on the watchlist.")] = None,
    false_alert_rate: Annotated[float, typer.Option(
        help="Tolerated false alerts per face searched, e.g. 0.0001.")] = 1e-4,
    cohort: Annotated[Optional[Path], typer.Option(
        help="Faces of people NOT on the watchlist (LFW layout or flat folder).")] = None,
    cache_dir: Annotated[Optional[Path], typer.Option(help="Where cohort face data is cached.")] = None,
    json_out: JsonOption = False,
) -> None:
    """Threshold for a watchlist size and a target false-alert rate, with the expected rates.

    Progress goes to stderr (a bar on a terminal, else a line every 10 s), then a summary line."""
    from openlfr.evaluation import cohort as coh
    from openlfr.evaluation import report as rep

    if cohort is None:
        raise InputError("--cohort is required: a folder of faces of people who are not on the watchlist")
    analyzer, fallback = _analyzer_and_fallback()
    if watchlist_size is None:
        raise InputError("--watchlist-size is required: the number of people on the watchlist")
    with progress("templates made for", None, "cohort images") as bar:
        data = coh.load_cohort(cohort, analyzer, _cache_dir(cache_dir), fallback, bar.advance)
        result = coh.calibrate_size(data, analyzer.flip, watchlist_size, false_alert_rate)
        bar.done(f"calibrated on {int(data.found.sum())} cohort faces of {len(data.paths)} images")
    out = result.to_dict()
    out["expected_false_alerts_per_10000_faces"] = false_alert_rate * 10_000
    out["cohort"] = {"folder": str(cohort), "faces": int(data.found.sum()), "images": len(data.paths)}
    if json_out:
        sys.stdout.write(rep.dumps(out) + "\n")
        return
    typer.echo(
        f"threshold {result.threshold:.4f} (cosine) for a watchlist of {result.watchlist_size} at "
        f"{false_alert_rate:g} false alerts per face searched ({false_alert_rate * 10_000:g} per 10,000 faces)"
    )
    if result.per_comparison_rate is not None:
        typer.echo(f"per-comparison false-match rate aimed at: {result.per_comparison_rate:.3g}")
    typer.echo(
        f"expected miss rate (FNIR) for listed people: {_pct(result.predicted_fnir)} "
        f"(from {out['cohort']['faces']} cohort faces, method {result.method})"
    )
    if result.note:
        typer.echo(f"note: {result.note}")


evaluate_app.command("lfw")(evaluate_lfw)
evaluate_app.command("openset")(evaluate_openset)


def register(app: typer.Typer) -> None:
    """Add ``openlfr evaluate`` and ``openlfr calibrate`` to the main app."""
    app.command("calibrate")(calibrate)
    app.add_typer(evaluate_app, name="evaluate")
