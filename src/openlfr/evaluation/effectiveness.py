"""The whole effectiveness evaluation of a labelled folder, as one JSON-ready dictionary.

Steps: face data for every image (cached); the open-set table for the plain pipeline and each
gain alone; the gains that help at both operating points are *kept* and combined; enrolment
fusion on matched searches; CMC, DET and verification ROC; the out-of-sample calibration
check; demographic differentials when group labels are given; plots when an output folder
is given (see :mod:`openlfr.evaluation.report` for the HTML).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from openlfr.evaluation import calibration, calibration_check, demographics, facecache, gains, openset, plots
from openlfr.evaluation.lfw import people
from openlfr.face.analyzer import FaceAnalyzer
from openlfr.face.types import Detector

FPIRS = openset.DEFAULT_FPIRS
IMPOSTOR_SAMPLE = 2000  # images whose cross-person pairs give the verification ROC (~2M pairs)


def pipeline_key(analyzer: FaceAnalyzer, fallback: Detector | None) -> str:
    """Cache key naming the pipeline that computed the face data."""
    emb = analyzer.stage.embedder
    det = getattr(analyzer.stage.detector, "name", type(analyzer.stage.detector).__name__)
    fb = getattr(fallback, "name", "") if fallback is not None else ""
    # the face model's id (name and weight digest): templates of different models never mix
    return f"{getattr(emb, 'backend', '')}|{det}+{fb}|{analyzer.model_id}"


def kept_config(rows: list[gains.GainRow], configs: list[gains.Config]) -> tuple[gains.Config, list[str]]:
    """Combine the gains whose row beats the plain one (first row): FNIR lower at the strict
    operating point (FPIR 0.1%) and not higher at FPIR 1%."""
    plain = rows[0]
    kept = gains.Config()
    names = []
    for row, cfg in zip(rows[1:], configs[1:]):
        if row.fnir_at_fpir_0_1pct < plain.fnir_at_fpir_0_1pct and row.fnir_at_fpir_1pct <= plain.fnir_at_fpir_1pct:
            names.append(row.config)
            kept = replace(
                kept,
                flip=kept.flip or cfg.flip,
                quality_gate=kept.quality_gate or cfg.quality_gate,
                cohort_norm=kept.cohort_norm or cfg.cohort_norm,
            )
    return kept, names


def _verification(data: facecache.FaceData, names: list[str], flip: bool) -> tuple[np.ndarray, np.ndarray]:
    t = data.templates(flip)
    genuine = calibration.mated_pair_scores(t, names)
    step = max(1, len(t) // IMPOSTOR_SAMPLE)
    impostor = calibration.impostor_pair_scores(t[::step], np.asarray(names)[::step])
    return genuine, impostor


def evaluate_folder(
    root: Path,
    analyzer: FaceAnalyzer,
    *,
    cache_dir: Path | None = None,
    fallback: Detector | None = None,
    groups: dict[str, str] | None = None,
    out_dir: Path | None = None,
    calibration_splits: int = 10,
    progress: Callable[[int], None] | None = None,
) -> dict:
    """Evaluate a folder in LFW layout; write plots to ``out_dir`` if given."""
    root = Path(root).resolve()
    folder = people(root)
    paths = sorted(p for imgs in folder.values() for p in imgs)
    data = facecache.face_data(paths, analyzer, cache_dir, pipeline_key(analyzer, fallback), fallback, progress)
    exp = gains.Experiment(folder, data)

    configs = gains.single_gain_configs()
    runs = [exp.run(c) for c in configs]
    rows = [gains.row_of(r) for r in runs]
    best, kept_names = kept_config(rows, configs)
    if best != gains.PLAIN and best not in configs:
        configs.append(best)
        runs.append(exp.run(best))
        rows.append(gains.row_of(runs[-1]))
    best_run = runs[configs.index(best)]
    plain_run = runs[0]
    fusion = gains.fusion_table(exp, gains.PLAIN, 2) + (gains.fusion_table(exp, best, 2) if best != gains.PLAIN else [])

    def detail(run: gains.Run) -> dict:
        r = openset.evaluate(run.mated, run.non_mated, FPIRS)
        d = asdict(r)
        d["fnir_ci95"] = {
            openset.rate_key(f): openset.fnir_interval(run.mated.hit_score, run.non_mated.top_score, f) for f in FPIRS
        }
        d["config"] = run.config.label()
        return d

    names = [p.parent.name for p in data.paths]
    genuine, impostor = _verification(data, names, best.flip)
    result: dict = {
        "folder": str(root),
        "pipeline": pipeline_key(analyzer, fallback),
        "people": len(folder),
        "images": len(paths),
        "images_without_face": int((~data.found).sum()),
        "found_by_fallback": int(np.sum((data.detector != "") & (data.detector == getattr(fallback, "name", "\0")))),
        "gains": [asdict(r) for r in rows],
        "kept_gains": kept_names,
        "recommended": {"config": best.label(), "settings": asdict(best)},
        "fusion": [asdict(r) for r in fusion],
        "open_set": {"plain": detail(plain_run), "recommended": detail(best_run)},
        "verification": {
            "genuine_pairs": int(len(genuine)),
            "impostor_pairs": int(len(impostor)),
            "roc_auc": _auc(genuine, impostor),
            "tar_at_far": {
                openset.rate_key(f): float(np.mean(genuine >= calibration.threshold_at_fmr(impostor, f)[0]))
                for f in (1e-3, 1e-4)
            },
        },
        "calibration_check": {},
        "demographics": None,
        "plots": {},
    }
    for label, cfg in (("plain", gains.PLAIN), ("recommended", best)):
        check_rows = calibration_check.check(folder, data, cfg, FPIRS, splits=calibration_splits)
        result["calibration_check"][label] = {
            "config": cfg.label(),
            "pooled": [asdict(p) for p in calibration_check.pooled(check_rows)],
            "first_split": calibration_check.summary([r for r in check_rows if not r.direction.startswith("split")]),
        }
    if groups is not None:
        thresholds = openset.evaluate(best_run.mated, best_run.non_mated, FPIRS).thresholds
        result["demographics"] = {
            "config": best.label(),
            "at_fpir": {
                k: demographics.differentials(
                    t, best_run.mated_paths, best_run.mated.hit_score, best_run.non_mated_paths,
                    best_run.non_mated.top_score, groups,
                ).to_dict()
                for k, t in thresholds.items()
            },
        }
    if out_dir is not None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        det = {r.config.label(): (r.mated.hit_score, r.non_mated.top_score) for r in runs}
        result["plots"] = {
            "det": plots.det_plot(det, out_dir / "det.png").name,
            "scores_plain": plots.score_histogram(
                plain_run.mated.hit_score, plain_run.non_mated.top_score, out_dir / "scores_plain.png",
                {k: v for k, v in result["open_set"]["plain"]["thresholds"].items()},
            ).name,
            "scores_recommended": plots.score_histogram(
                best_run.mated.hit_score, best_run.non_mated.top_score, out_dir / "scores_recommended.png",
                {k: v for k, v in result["open_set"]["recommended"]["thresholds"].items()},
            ).name,
            "cmc": plots.cmc_plot(
                {"plain": result["open_set"]["plain"]["cmc"], best.label(): result["open_set"]["recommended"]["cmc"]},
                out_dir / "cmc.png",
            ).name,
            "roc": plots.roc_plot(genuine, impostor, out_dir / "roc.png").name,
        }
    return result


def _auc(genuine: np.ndarray, impostor: np.ndarray) -> float:
    """P(genuine > impostor), ties counting half (sorted search: fast for millions of pairs)."""
    imp = np.sort(np.asarray(impostor, np.float64))
    g = np.asarray(genuine, np.float64)
    if len(g) == 0 or len(imp) == 0:
        return float("nan")
    below = np.searchsorted(imp, g, side="left")
    upto = np.searchsorted(imp, g, side="right")
    return float(np.mean((below + 0.5 * (upto - below)) / len(imp)))
