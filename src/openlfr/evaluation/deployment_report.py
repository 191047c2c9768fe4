"""Per-deployment effectiveness: did the deployment do what its calibration promised?

From the pipeline's counters and the reviewers' verdicts on its alerts. The unit is the
**face searched** (a template compared against the watchlist), the unit of the calibration's
target and prediction (false alerts per face searched, i.e. FPIR per probe), so observed and
predicted rates are comparable. People passes (one per face followed over two or more analysed
frames for ``pass_min_s``) and detections (faces detected on analysed frames, many per person: a diagnostic) are shown
beside it. Faces searched are counted as faces of people not on the watchlist (listed people
are a vanishing share of a crowd), so the observed false-alert rate is verified false alerts
per face searched; unreviewed and unsure alerts are shown separately, the upper bound counts
them as false, and while any remains the verdict is "not yet known".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from openlfr.evaluation.demographics import wilson


@dataclass
class DeploymentEffectiveness:
    """A deployment's observed effectiveness; each count and rate names its unit."""

    deployment_id: int
    status: str
    threshold: float
    target_false_alert_rate: float | None  # false alerts per face searched (the calibration's target)
    predicted_fnir: float | None
    faces_searched: int  # templates compared against the watchlist: the denominator of the rates
    people_passes: int  # faces followed over 2+ analysed frames for pass_min_s (0.3 s): one per person
    detections: int  # faces detected on analysed frames (diagnostic: one person is detected on many frames)
    alerts: int
    verified_true: int
    verified_false: int
    unsure: int
    unreviewed: int
    false_alerts_per_1000_faces_searched: float | None
    precision: float | None  # verified true / (verified true + verified false)
    # [low, high] (null with nothing to count); a list: tuples give an invalid JSON Schema
    precision_ci95: list[float | None]
    observed_false_alert_rate: float | None  # verified false alerts per face searched
    observed_false_alert_rate_ci95: list[float | None]  # [low, high], per face searched
    observed_false_alert_rate_upper_bound: float | None  # unsure and unreviewed counted as false
    predicted_vs_observed: str
    face_model: str | None = None  # the model id of the frozen templates (the threshold's scale)
    # verified alerts by what happened next (openlfr.governance.grounds.EngagementResult values,
    # and "not recorded" while an outcome is due)
    outcomes: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarise(
    deployment_id: int,
    status: str,
    threshold: float,
    target: float | None,
    predicted_fnir: float | None,
    faces_searched: int,
    outcomes: list[str | None],
    *,
    people_passes: int = 0,
    detections: int = 0,
) -> DeploymentEffectiveness:
    """Compute the report from counts: ``outcomes`` holds each alert's review outcome
    (``"true"``, ``"false"``, ``"unsure"`` or ``None`` when not yet reviewed); rates are per
    face searched."""
    t = sum(o == "true" for o in outcomes)
    f = sum(o == "false" for o in outcomes)
    u = sum(o == "unsure" for o in outcomes)
    n = sum(o is None for o in outcomes)
    observed = f / faces_searched if faces_searched else None
    upper = (f + u + n) / faces_searched if faces_searched else None
    if observed is None:
        verdict = "no faces searched yet"
    elif target is None:
        verdict = "no target was set (threshold given directly)"
    elif n or u:
        # any of them may be a false alert: no comparison with the target until all are reviewed
        verdict = f"not yet known: {n + u} of {len(outcomes)} alerts unreviewed or unsure"
    else:
        lo, hi = wilson(f, faces_searched)
        if lo > target:
            verdict = f"more false alerts than predicted (target {target:g} per face searched below the 95% interval)"
        elif hi < target:
            verdict = f"fewer false alerts than predicted (target {target:g} per face searched above the 95% interval)"
        else:
            verdict = f"consistent with the target {target:g} per face searched (within the 95% interval)"
    return DeploymentEffectiveness(
        deployment_id=deployment_id,
        status=status,
        threshold=threshold,
        target_false_alert_rate=target,
        predicted_fnir=predicted_fnir,
        faces_searched=faces_searched,
        people_passes=people_passes,
        detections=detections,
        alerts=len(outcomes),
        verified_true=t,
        verified_false=f,
        unsure=u,
        unreviewed=n,
        false_alerts_per_1000_faces_searched=1000.0 * f / faces_searched if faces_searched else None,
        precision=t / (t + f) if t + f else None,
        precision_ci95=list(wilson(t, t + f)),
        observed_false_alert_rate=observed,
        observed_false_alert_rate_ci95=list(wilson(f, faces_searched)),
        observed_false_alert_rate_upper_bound=upper,
        predicted_vs_observed=verdict,
    )


def for_deployment(session: Any, deployment_id: int) -> DeploymentEffectiveness:
    """The report of one deployment, read from the store (a SQLAlchemy session)."""
    from openlfr.errors import NotFoundError
    from openlfr.store.models import Alert, Deployment
    from openlfr.store.models import PipelineCounter

    dep = session.get(Deployment, deployment_id)
    if dep is None:
        raise NotFoundError(f"deployment {deployment_id} does not exist")
    searched, passes, detections = session.execute(
        select(*(func.coalesce(func.sum(c), 0) for c in (PipelineCounter.templates, PipelineCounter.passes,
                                                          PipelineCounter.faces_seen)))
        .where(PipelineCounter.deployment_id == dep.id)
    ).one()
    outcomes = list(session.execute(select(Alert.review_outcome).where(Alert.deployment_id == dep.id)).scalars())
    cal = dep.calibration or {}
    report = summarise(dep.id, dep.status, dep.threshold, dep.target_false_alert_rate, cal.get("predicted_fnir"),
                       int(searched), outcomes, people_passes=int(passes), detections=int(detections))
    report.face_model = dep.model_id
    from openlfr.governance.outcomes import outcome_counts

    report.outcomes = outcome_counts(session, dep.id)
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
