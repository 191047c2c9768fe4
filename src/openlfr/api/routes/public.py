"""Routes that need no login: health, metrics, the transparency record, how to make a request."""

from __future__ import annotations

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import func, select

from openlfr.api import defs, views
from openlfr.api.deps import reading
from openlfr.evaluation.deployment_report import DeploymentEffectiveness
from openlfr.store.models import AuditEvent

router = APIRouter(tags=["public"])


@router.get("/health", response_model=defs.HealthOut)
def health(request: Request) -> defs.HealthOut:
    """Liveness and a database round trip (a read: it never waits for a write in progress)."""
    with reading(request) as ctx:
        n = ctx.session.execute(select(func.count()).select_from(AuditEvent)).scalar_one()
    return defs.HealthOut(status="ok", database=True, audit_events=n)


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
def metrics(request: Request) -> Response:
    """Prometheus metrics (counts and timings only; expose to the monitoring network alone)."""
    return Response(generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/api/public/transparency", response_model=defs.TransparencyOut)
def transparency(request: Request) -> defs.TransparencyOut:
    """Every authorised, live and past deployment: where, when, why, how many. No biometric data."""
    with reading(request) as ctx:
        return views.transparency(ctx, request.app.state.settings.complaints)


@router.get("/api/public/checkpoints", response_model=defs.CheckpointsOut)
def checkpoints(request: Request) -> defs.CheckpointsOut:
    """Every signed audit checkpoint and the installation's public key: copies kept outside the
    operator's hands show any later rewrite of the audit log up to the newest checkpoint
    (``openlfr audit verify --checkpoints FILE``; docs/audit-verification.md)."""
    from openlfr.audit import checkpoints as cps

    with reading(request) as ctx:
        signed = cps.load(ctx.session)
        doc = cps.export_document(signed, request.app.state.gov.signer.public_key(), now=ctx.now())
    return defs.CheckpointsOut.model_validate(doc)


@router.get("/api/public/deployments/{deployment_id}/report", response_model=DeploymentEffectiveness)
def deployment_report_json(request: Request, deployment_id: int = Path(ge=1, le=2**31 - 1)) -> DeploymentEffectiveness:
    """A public deployment's effectiveness: faces searched, people passes, alerts, verified true and
    false alerts, false alerts per 1,000 faces searched, precision, predicted versus observed false-alert rate."""
    with reading(request) as ctx:
        return views.public_report(ctx, deployment_id)


@router.get("/transparency/deployments/{deployment_id}/report", response_class=HTMLResponse)
def deployment_report_html(request: Request, deployment_id: int = Path(ge=1, le=2**31 - 1)) -> HTMLResponse:
    """The same report as a page (counts, rates with intervals, verdict, outcomes, plots),
    linked from the transparency page."""
    from openlfr.api.console_reports import render_report

    with reading(request) as ctx:
        report = views.public_report(ctx, deployment_id)
    return render_report(request, report, None)


@router.get("/transparency/requests", response_class=HTMLResponse)
def requests_page(request: Request) -> HTMLResponse:
    """How a member of the public asks what was kept of them (access), or for its erasure,
    restriction, or complains: to whom, what to bring, what is kept and for how long (from the
    retention policy in force), the time limits, and how many requests were received, answered
    in time and refused."""
    from openlfr.api.console import templates
    from openlfr.governance.schemas import OrgKind
    from openlfr.rights.clock import CLOCK_LAW, EXTENSION_MONTHS, due_date

    policy = request.app.state.gov.policy
    with reading(request) as ctx:
        orgs = views.organisations(ctx)
        counts = views.public_request_counts(ctx)
        now = ctx.now()
    return templates.TemplateResponse(request, "rights_public.html", {
        "me": None, "msg": "", "error": "", "counts": counts,
        "controllers": [o for o in orgs if o.kind is not OrgKind.OVERSIGHT_BODY],
        "oversight": [o.name for o in orgs if o.kind is OrgKind.OVERSIGHT_BODY],
        "alert_days": f"{policy.alert_retention_days:g}",
        "dismissed_hours": f"{policy.dismissed_alert_retention_hours:g}",
        "due_example": due_date(now), "extension": EXTENSION_MONTHS, "laws": CLOCK_LAW,
        "how_to_complain": request.app.state.settings.complaints})
