"""Per-deployment effectiveness: did the deployment do what its calibration promised?

From the pipeline's counters (faces seen) and the reviewers' verdicts on its alerts: alerts,
verified true and false alerts, false alerts per 1,000 faces, precision of alerts, and the
observed false-alert rate beside the predicted one. Faces seen are counted as faces of
people not on the watchlist (listed people are a vanishing share of a crowd), so the
observed false-alert rate is verified false alerts per face seen; unreviewed and unsure
alerts are shown separately, and the upper bound counts them as false.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from openlfr.evaluation.demographics import wilson


@dataclass
class DeploymentEffectiveness:
    """A deployment's observed effectiveness."""

    deployment_id: int
    status: str
    threshold: float
    target_false_alert_rate: float | None
    predicted_fnir: float | None
    faces_seen: int
    alerts: int
    verified_true: int
    verified_false: int
    unsure: int
    unreviewed: int
    false_alerts_per_1000_faces: float | None
    precision: float | None  # verified true / (verified true + verified false)
    precision_ci95: list[float | None]  # [low, high] (null with nothing to count); a list: tuples give an invalid JSON Schema
    observed_false_alert_rate: float | None
    observed_false_alert_rate_ci95: list[float | None]  # [low, high]
    observed_false_alert_rate_upper_bound: float | None  # unsure and unreviewed counted as false
    predicted_vs_observed: str
    face_model: str | None = None  # the model id of the frozen templates (the threshold's scale)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarise(
    deployment_id: int,
    status: str,
    threshold: float,
    target: float | None,
    predicted_fnir: float | None,
    faces_seen: int,
    outcomes: list[str | None],
) -> DeploymentEffectiveness:
    """Compute the report from counts: ``outcomes`` holds each alert's review outcome
    (``"true"``, ``"false"``, ``"unsure"`` or ``None`` when not yet reviewed)."""
    t = sum(o == "true" for o in outcomes)
    f = sum(o == "false" for o in outcomes)
    u = sum(o == "unsure" for o in outcomes)
    n = sum(o is None for o in outcomes)
    observed = f / faces_seen if faces_seen else None
    upper = (f + u + n) / faces_seen if faces_seen else None
    if observed is None:
        verdict = "no faces counted yet"
    elif target is None:
        verdict = "no target was set (threshold given directly)"
    else:
        lo, hi = wilson(f, faces_seen)
        if lo > target:
            verdict = f"more false alerts than predicted (target {target:g} below the 95% interval)"
        elif hi < target:
            verdict = f"fewer false alerts than predicted (target {target:g} above the 95% interval)"
        else:
            verdict = f"consistent with the target {target:g} (within the 95% interval)"
        if n or u:
            verdict += f"; {n + u} alert(s) unreviewed or unsure"
    return DeploymentEffectiveness(
        deployment_id=deployment_id,
        status=status,
        threshold=threshold,
        target_false_alert_rate=target,
        predicted_fnir=predicted_fnir,
        faces_seen=faces_seen,
        alerts=len(outcomes),
        verified_true=t,
        verified_false=f,
        unsure=u,
        unreviewed=n,
        false_alerts_per_1000_faces=1000.0 * f / faces_seen if faces_seen else None,
        precision=t / (t + f) if t + f else None,
        precision_ci95=list(wilson(t, t + f)),
        observed_false_alert_rate=observed,
        observed_false_alert_rate_ci95=list(wilson(f, faces_seen)),
        observed_false_alert_rate_upper_bound=upper,
        predicted_vs_observed=verdict,
    )


def for_deployment(session: Any, deployment_id: int) -> DeploymentEffectiveness:
    """The report of one deployment, read from the store (a SQLAlchemy session)."""
    from openlfr.errors import NotFoundError
    from openlfr.store.models import Alert, Deployment
    from openlfr.store.pipeline_models import PipelineCounter

    dep = session.get(Deployment, deployment_id)
    if dep is None:
        raise NotFoundError(f"deployment {deployment_id} does not exist")
    faces = session.execute(
        select(func.coalesce(func.sum(PipelineCounter.faces_seen), 0)).where(PipelineCounter.deployment_id == dep.id)
    ).scalar_one()
    outcomes = list(session.execute(select(Alert.review_outcome).where(Alert.deployment_id == dep.id)).scalars())
    cal = dep.calibration or {}
    report = summarise(dep.id, dep.status, dep.threshold, dep.target_false_alert_rate, cal.get("predicted_fnir"),
                       int(faces), outcomes)
    report.face_model = dep.model_id
    return report


def write(report: DeploymentEffectiveness, out_dir: Path) -> tuple[Path, Path]:
    """Write ``deployment-<id>-report.html`` and its JSON twin into ``out_dir``."""
    from openlfr.evaluation.report import deployment_html, dumps

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"deployment-{report.deployment_id}-report"
    d = report.to_dict()
    j = out_dir / f"{stem}.json"
    j.write_text(dumps(d) + "\n")
    h = out_dir / f"{stem}.html"
    h.write_text(deployment_html(d))
    return h, j
