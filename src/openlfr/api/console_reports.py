"""Effectiveness reports as console pages: one deployment's report (counts, rates with their
95% intervals, the verdict, what happened after verified alerts, with inline plots), for staff
who may see the deployment and, for a public deployment, for everyone
(``/transparency/deployments/{id}/report``); and the open-set evaluation reports that
``openlfr evaluate openset --report DIR`` wrote, with their plots, when the installation names
their folder (``OPENLFR_API_EVALUATION_REPORTS``).

Who may see a deployment is the service's rule (:func:`openlfr.governance.deployments.list_deployments`).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from openlfr.api import defs, report_plots
from openlfr.api.auth import Principal, require
from openlfr.api.console import _page
from openlfr.api.console_alerts import status_of
from openlfr.api.deps import reading
from openlfr.errors import NotFoundError, OpenLFRError
from openlfr.evaluation import deployment_report
from openlfr.evaluation.deployment_report import DeploymentEffectiveness
from openlfr.governance import deployments

router = APIRouter(include_in_schema=False)
RESULT_WORDS = {"spoken_to": "spoken to", "arrested": "arrested", "no_further_action": "no further action",
                "not_found": "not found", "mistaken_identity": "mistaken identity",
                "not recorded": "outcome not yet recorded"}


def _n(v: int) -> str:
    return f"{v:,}"


def _rate(v: float | None, digits: int = 3) -> str:
    return "–" if v is None else f"{v:.{digits}g}"


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{v * 100:.1f}%"


def _finite(v: float | None) -> float | None:
    """``v``, or ``None`` for a missing or not-a-number value (an interval of nothing counted)."""
    return v if v is not None and math.isfinite(v) else None


def _pair(ci: list[float | None]) -> list[float | None]:
    return [_finite(v) for v in (list(ci) + [None, None])[:2]]


def _ci(ci: list[float | None], pct: bool = False) -> str:
    ci = _pair(ci)
    if ci[0] is None or ci[1] is None:
        return "–"
    return f"{_pct(ci[0])} – {_pct(ci[1])}" if pct else f"{ci[0]:.3g} – {ci[1]:.3g}"


def report_context(r: DeploymentEffectiveness) -> dict[str, Any]:
    """What the report page shows, in words: headline counts, rates with intervals, the verdict,
    outcomes, and the plots."""
    tiles = [("Faces searched", _n(r.faces_searched), "faces compared against the watchlist: the unit of every rate"),
             ("People passes", _n(r.people_passes),
              "one per person walking through (a face followed for 0.3 s or more)"),
             ("Alerts", _n(r.alerts), "matches above the threshold"),
             ("Verified true", _n(r.verified_true), "confirmed by the required reviewers"),
             ("False alerts", _n(r.verified_false), "dismissed: not the listed person"),
             ("Not yet settled", _n(r.unsure + r.unreviewed), f"{r.unreviewed} unreviewed, {r.unsure} unsure")]
    rates = [
        ("False alerts per 1,000 faces searched", _rate(r.false_alerts_per_1000_faces_searched), "", ""),
        ("Observed false-alert rate (per face searched)", _rate(r.observed_false_alert_rate),
         _ci(r.observed_false_alert_rate_ci95), "verified false alerts ÷ faces searched"),
        ("Upper bound of the false-alert rate", _rate(r.observed_false_alert_rate_upper_bound), "",
         "unsure and unreviewed alerts counted as false"),
        ("Target false-alert rate (calibration)", _rate(r.target_false_alert_rate), "",
         "what the threshold was calibrated for" if r.target_false_alert_rate is not None else "threshold set by hand"),
        ("Predicted share of listed faces missed", _pct(r.predicted_fnir), "", "from the calibration (FNIR)"),
        ("Precision (true among settled alerts)", _pct(r.precision), _ci(r.precision_ci95, pct=True), ""),
    ]
    outcomes = [(RESULT_WORDS.get(k, k.replace("_", " ")), n) for k, n in r.outcomes.items()]
    lo, hi = _pair(r.observed_false_alert_rate_ci95)
    plots = {
        "alerts": report_plots.bars([("verified true", r.verified_true), ("verified false", r.verified_false),
                                     ("unsure", r.unsure), ("unreviewed", r.unreviewed)], "Alerts by review result"),
        "rate": report_plots.interval(r.observed_false_alert_rate, lo, hi, target=r.target_false_alert_rate,
                                      upper=r.observed_false_alert_rate_upper_bound,
                                      title="False alerts per face searched: observed, 95% interval, target"),
        "precision": report_plots.interval(r.precision, *_pair(r.precision_ci95), scale_max=1.0,
                                           title="Precision with its 95% interval"),
        "outcomes": report_plots.bars(outcomes, "What happened after verified alerts") if r.verified_true else "",
    }
    return {"report": r, "tiles": tiles, "rates": rates, "outcomes": outcomes, "plots": plots,
            "status": r.status.replace("_", " ")}


def render_report(request: Request, report: DeploymentEffectiveness, me: Principal | None) -> HTMLResponse:
    """The report page (also the public one, with ``me`` ``None``)."""
    return _page(request, "deployment_report.html", me, **report_context(report))


@router.get("/console/reports", response_class=HTMLResponse)
def reports(request: Request, me: Principal = Depends(require())) -> HTMLResponse:
    """The deployments the caller may see, each with its report; and the evaluation reports."""
    with reading(request) as ctx:
        rows = [(d.id, d.purpose, d.status, d.start, d.end) for d in deployments.list_deployments(ctx, me.actor)]
    return _page(request, "reports.html", me, deployments=rows[::-1], evaluations=_evaluations(request))


@router.get("/console/deployments/{deployment_id}/report", response_class=HTMLResponse)
def deployment_report_page(deployment_id: defs.Id, request: Request, me: Principal = Depends(require())) -> Response:
    """One deployment's effectiveness for staff who may see the deployment."""
    try:
        with reading(request) as ctx:
            if deployment_id not in {d.id for d in deployments.list_deployments(ctx, me.actor)}:
                raise NotFoundError(f"no deployment {deployment_id} that {me.name} may see")
            report = deployment_report.for_deployment(ctx.session, deployment_id)
    except OpenLFRError as err:
        page = _page(request, "reports.html", me, deployments=[], evaluations=[], page_error=str(err))
        page.status_code = status_of(err)
        return page
    return render_report(request, report, me)


# --- open-set evaluation reports (openlfr evaluate openset --report DIR) --------------------
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,100}$")


def _root(request: Request) -> Path | None:
    root = request.app.state.settings.evaluation_reports
    return Path(root) if root else None


def _evaluations(request: Request) -> list[str]:
    """The report folders (each with a report.json) under the configured folder, newest first."""
    root = _root(request)
    if root is None or not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and _NAME.match(p.name) and (p / "report.json").is_file()]
    return [p.name for p in sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)]


def _evaluation(request: Request, name: str) -> tuple[Path, dict[str, Any]]:
    if name not in _evaluations(request):
        raise NotFoundError(f"no evaluation report {name!r}")
    folder = _root(request) / name  # type: ignore[operator]
    try:
        return folder, json.loads((folder / "report.json").read_text())
    except ValueError as err:
        raise NotFoundError(f"evaluation report {name!r} is not readable: {err}") from None


PLOT_WORDS = {"det": "Open-set identification: listed faces missed (FNIR) against false alerts per face searched "
                     "(FPIR)",
              "scores_plain": "Search scores, plain pipeline: listed faces' mate scores and others' best scores",
              "scores_recommended": "Search scores, recommended pipeline",
              "cmc": "Identification rate by rank (CMC)", "roc": "Verification: same-person pairs accepted against "
                                                                  "different-person pairs accepted (ROC)"}


@router.get("/console/evaluation/{name}", response_class=HTMLResponse)
def evaluation_page(name: str, request: Request, me: Principal = Depends(require())) -> Response:
    """One open-set evaluation report: the gains table, the calibration check and the plots inline."""
    try:
        _, result = _evaluation(request, name)
    except OpenLFRError as err:
        page = _page(request, "reports.html", me, deployments=[], evaluations=_evaluations(request),
                     page_error=str(err))
        page.status_code = status_of(err)
        return page
    plots = [(PLOT_WORDS.get(k, k.replace("_", " ")), f"/console/evaluation/{name}/plots/{k}")
             for k in (result.get("plots") or {})]
    return _page(request, "evaluation_report.html", me, report_name=name, result=result, plots=plots)


@router.get("/console/evaluation/{name}/plots/{plot}", response_class=Response)
def evaluation_plot(name: str, plot: str, request: Request, me: Principal = Depends(require())) -> Response:
    """A plot of an evaluation report (only the files its report.json names, from its own folder)."""
    try:
        folder, result = _evaluation(request, name)
        file = (result.get("plots") or {}).get(plot)
        if not isinstance(file, str) or not _NAME.match(file) or not file.endswith((".png", ".svg")):
            raise NotFoundError(f"report {name!r} has no plot {plot!r}")
        path = folder / file
        if not path.is_file():
            raise NotFoundError(f"the plot file of {plot!r} is missing")
    except OpenLFRError as err:
        return Response(str(err), status_code=status_of(err), media_type="text/plain")
    kind = "image/svg+xml" if file.endswith(".svg") else "image/png"
    return FileResponse(path, media_type=kind)
