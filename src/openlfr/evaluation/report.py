"""Evaluation and deployment reports: an HTML page with its plots, and a JSON twin.

The HTML is self-contained apart from the PNG files written beside it; every figure in it
comes from the JSON twin, so the two cannot disagree.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any

STYLE = (
    "body{font-family:sans-serif;max-width:60em;margin:2em auto;color:#222}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;padding:.25em .6em;text-align:right}"
    "th{background:#eee}td:first-child,th:first-child{text-align:left}img{max-width:100%}"
    ".note{color:#555;font-size:.9em}"
)


def _fmt(v: Any, pct: bool = False) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        if math.isnan(v):
            return "–"
        if math.isinf(v):
            return "∞" if v > 0 else "−∞"
        return f"{v * 100:.2f}%" if pct else f"{v:.4g}"
    if isinstance(v, (list, tuple)) and len(v) == 2 and all(isinstance(x, float) for x in v):
        return f"{_fmt(v[0], pct)} – {_fmt(v[1], pct)}"
    return html.escape(str(v))


def table(rows: list[dict], columns: list[tuple[str, str, bool]]) -> str:
    """An HTML table: ``columns`` are (key, heading, as percentage)."""
    head = "".join(f"<th>{html.escape(h)}</th>" for _, h, _ in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{_fmt(r.get(k), p)}</td>" for k, _, p in columns) + "</tr>" for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _page(title: str, parts: list[str]) -> str:
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>{''.join(parts)}</body></html>\n"
    )


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


def dumps(obj: Any) -> str:
    """JSON text with non-finite numbers made explicit (JSON has no NaN or infinity)."""
    return json.dumps(_json_safe(obj), indent=2)


GAIN_COLUMNS = [
    ("config", "configuration", False),
    ("gallery", "gallery", False),
    ("mated", "mated", False),
    ("non_mated", "non-mated", False),
    ("rank1", "rank-1", True),
    ("fnir_at_fpir_1pct", "FNIR @ FPIR 1%", True),
    ("fnir_at_fpir_0_1pct", "FNIR @ FPIR 0.1%", True),
    ("refusal_rate_mated", "mated refused", True),
    ("refusal_rate_non_mated", "non-mated refused", True),
]


def evaluation_html(result: dict) -> str:
    """The evaluation report page for a result of :func:`effectiveness.evaluate_folder`."""
    parts = [
        f"<p>Folder <code>{html.escape(result['folder'])}</code>: {result['people']} people, "
        f"{result['images']} images, {result['images_without_face']} without a detected face. "
        f"Pipeline <code>{html.escape(result['pipeline'])}</code>.</p>",
        "<h2>Open-set identification: each gain on and off</h2>",
        "<p class='note'>Gallery: one image of each person with 2+ images; mated searches: their other images; "
        "non-mated: people with one image. A refused or faceless mated search counts as a miss.</p>",
        table(result["gains"], GAIN_COLUMNS),
        f"<p>Kept (better at both operating points): {html.escape(', '.join(result['kept_gains']) or 'none')}. "
        f"Recommended: <b>{html.escape(result['recommended']['config'])}</b>.</p>",
        "<h3>Enrolment with two fused images versus one (same searches)</h3>",
        table(result["fusion"], GAIN_COLUMNS),
    ]
    for key in ("plain", "recommended"):
        o = result["open_set"][key]
        ci = o.get("fnir_ci95", {})
        parts.append(
            f"<p>{html.escape(o['config'])}: rank-1 {_fmt(o['rank1'], True)}; FNIR at FPIR 1% "
            f"{_fmt(o['fnir_at_fpir'].get('0.01'), True)} "
            f"(95% {_fmt(tuple(ci.get('0.01', (math.nan, math.nan))), True)}), "
            f"at FPIR 0.1% {_fmt(o['fnir_at_fpir'].get('0.001'), True)} "
            f"(95% {_fmt(tuple(ci.get('0.001', (math.nan, math.nan))), True)}).</p>"
        )
    v = result["verification"]
    parts.append(
        f"<h2>Verification</h2><p>{v['genuine_pairs']} same-person and {v['impostor_pairs']} different-person pairs; "
        f"ROC AUC {_fmt(v['roc_auc'])}; TAR {_fmt(v['tar_at_far'].get('0.001'), True)} at FAR 0.1%, "
        f"{_fmt(v['tar_at_far'].get('0.0001'), True)} at FAR 0.01%.</p>"
    )
    parts.append("<h2>Calibration out of sample</h2><p class='note'>Calibrated on one half of the people, measured "
                 "on the other, both ways, over repeated random halvings; counts pooled.</p>")
    for c in result["calibration_check"].values():
        parts.append(f"<h3>{html.escape(c['config'])}</h3>")
        parts.append(
            table(
                c["pooled"],
                [
                    ("method", "method", False),
                    ("target_fpir", "target FPIR", True),
                    ("observed_fpir", "observed FPIR", True),
                    ("observed_fpir_ci95", "95% interval", True),
                    ("ratio", "observed / target", False),
                    ("share_within_factor_2", "single halves within 2x", True),
                    ("mean_predicted_fnir", "predicted FNIR", True),
                    ("mean_observed_fnir", "observed FNIR", True),
                ],
            )
        )
    demo = result.get("demographics")
    if demo:
        parts.append(f"<h2>Demographic differentials</h2><p>{html.escape(demo['config'])}</p>")
        for rate, d in demo["at_fpir"].items():
            parts.append(
                f"<h3>At the threshold for FPIR {html.escape(rate)} ({_fmt(d['threshold'])})</h3>"
                + table(
                    d["groups"],
                    [
                        ("group", "group", False),
                        ("mated", "mated", False),
                        ("fnir", "FNIR", True),
                        ("fnir_ci95", "95% interval", True),
                        ("non_mated", "non-mated", False),
                        ("fpir", "FPIR", True),
                        ("fpir_ci95", "95% interval", True),
                    ],
                )
                + f"<p>Worst/best ratio: FNIR {_fmt(d['fnir_ratio'])}, FPIR {_fmt(d['fpir_ratio'])}. "
                f"<span class='note'>{html.escape(d['note'])}</span></p>"
            )
    if result.get("plots"):
        parts.append("<h2>Plots</h2>")
        for name, file in result["plots"].items():
            parts.append(f"<h3>{html.escape(name)}</h3><img src='{html.escape(file)}' alt='{html.escape(name)}'>")
    return _page("openlfr effectiveness report", parts)


def write_evaluation(result: dict, out_dir: Path) -> tuple[Path, Path]:
    """Write ``report.html`` and ``report.json`` into ``out_dir`` (plots already there)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    h, j = out_dir / "report.html", out_dir / "report.json"
    j.write_text(dumps(result) + "\n")
    h.write_text(evaluation_html(result))
    return h, j


def deployment_html(report: dict) -> str:
    """A per-deployment report page (see :mod:`openlfr.evaluation.deployment_report`)."""
    rows = [{"measure": k.replace("_", " ") + (" (diagnostic)" if k == "detections" else ""), "value": v}
            for k, v in report.items() if not isinstance(v, (dict, list))]
    for key in ("precision_ci95", "observed_false_alert_rate_ci95"):  # the intervals, as "low – high"
        if isinstance(report.get(key), list) and all(isinstance(v, (int, float)) and math.isfinite(v)
                                                      for v in report[key]):
            rows.append({"measure": key.replace("_ci95", " 95% interval").replace("_", " "),
                         "value": " – ".join(f"{v:.3g}" for v in report[key])})
    for result, n in (report.get("outcomes") or {}).items():  # what happened after verified alerts
        rows.append({"measure": f"verified alerts: {result.replace('_', ' ')}", "value": n})
    units = ("Rates are per face searched (a face compared against the watchlist), the unit of the "
             "calibration's target and prediction. People passes are faces followed on two or more analysed "
             "frames for 0.3 s or more, one per person walking through; "
             "detections (faces detected on analysed frames, many per person) are a diagnostic only. "
             "While any alert is unreviewed or unsure the verdict is not yet known.")
    return _page(
        f"Deployment {report.get('deployment_id', '')}: effectiveness",
        [f"<p class='units'>{html.escape(units)}</p>",
         table(rows, [("measure", "measure", False), ("value", "value", False)])],
    )
