"""The web console: server-rendered pages over the same services as the JSON API.

Pages use the session cookie; every form posts the session's CSRF token (checked in
:func:`openlfr.api.auth.authenticate`). Actions redirect back with a one-line message.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from openlfr import audit
from openlfr.api import auth, defs, reviews, upload, views
from openlfr.api.app import WEB
from openlfr.api.auth import Principal, require
from openlfr.api.deps import tx
from openlfr.errors import OpenLFRError
from openlfr.governance import Role, parse
from openlfr.governance import agreements, cameras, deployments, sharing, watchlists
from openlfr.governance.schemas import (
    CameraCreate, DeploymentRequest, ShareImage, SignageCreate, WatchlistAdd, WatchlistCreate,
)
from openlfr.store.models import Agreement, Alert, AuditEvent, SharedImage

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=WEB / "templates")
HOME = {Role.REVIEWER: "/console/reviewer", Role.OPERATOR_ADMIN: "/console/admin",
        Role.AUTHORISING_OFFICER: "/console/officer", Role.SUPPLIER: "/console/supplier",
        Role.AUDITOR: "/console/auditor"}


def _verbs(role: Role) -> Callable[[Any], list[str]]:
    """The deployment buttons a role gets for a deployment in its state."""
    def verbs(d: Any) -> list[str]:
        out = ["authorise"] if role is Role.AUTHORISING_OFFICER and d.status == "requested" else []
        out += ["start"] if d.status == "authorised" else []
        return out + (["end"] if d.status in ("requested", "authorised", "live") else [])
    return verbs


def _page(request: Request, name: str, me: Principal | None, **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(request, name, {"me": me, "msg": request.query_params.get("msg", ""),
                                                      "error": request.query_params.get("error", ""), **context})


def _act(request: Request, back: str, action: Callable[[Any], str]) -> Response:
    """Run ``action(ctx)`` in a transaction and go back to ``back`` with its message or the refusal."""
    try:
        with tx(request) as ctx:
            msg = action(ctx)
        return RedirectResponse(f"{back}?msg={quote(msg)}", status_code=303)
    except OpenLFRError as err:
        return RedirectResponse(f"{back}?error={quote(str(err))}", status_code=303)


# --- login --------------------------------------------------------------------------------
LOGIN_CSRF_COOKIE = "openlfr_login_csrf"


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request) -> HTMLResponse:
    # a pre-session CSRF token (double submit): another site cannot log a browser in to its account
    csrf = secrets.token_urlsafe(24)
    response = _page(request, "login.html", None, login_csrf=csrf)
    response.set_cookie(LOGIN_CSRF_COOKIE, csrf, httponly=True, samesite="strict", max_age=3600, path="/login",
                        secure=request.app.state.settings.secure_cookies)
    return response


@router.post("/login")
def login(request: Request, name: str = Form(max_length=120), password: str = Form(max_length=1000),
          csrf_token: str = Form("", max_length=200)) -> Response:
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(expected, csrf_token):
        raise HTTPException(403, "the log-in form has expired or did not come from this site: reload the page")
    token, row, user = auth.login(request, name, password, "session")
    response = RedirectResponse(HOME[Role(user.role)], status_code=303)
    response.set_cookie(auth.SESSION_COOKIE, token, httponly=True, samesite="strict",
                        secure=request.app.state.settings.secure_cookies,
                        max_age=int((row.expires_at - row.created_at).total_seconds()))
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
def logout(request: Request, me: Principal = Depends(require())) -> Response:
    with tx(request) as ctx:
        auth.revoke(ctx, me)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(auth.SESSION_COOKIE)
    return response


@router.get("/")
def root() -> Response:
    return RedirectResponse("/transparency", status_code=303)


@router.get("/console")
def console_home(me: Principal = Depends(require())) -> Response:
    return RedirectResponse(HOME[me.role], status_code=303)


# --- reviewer -----------------------------------------------------------------------------
@router.get("/console/reviewer", response_class=HTMLResponse)
def reviewer(request: Request, me: Principal = Depends(require(Role.REVIEWER))) -> HTMLResponse:
    with tx(request) as ctx:
        alerts = views.list_alerts(ctx)
    return _page(request, "reviewer.html", me, alerts=alerts)


@router.get("/console/alerts/{alert_id}", response_class=HTMLResponse)
def alert_page(alert_id: defs.Id, request: Request, me: Principal = Depends(require(Role.REVIEWER))) -> HTMLResponse:
    with tx(request) as ctx:
        alert = ctx.get(Alert, alert_id, "alert")
        ctx.audit(me.name, "alert.view", "alert", alert.id)
        out = views.alert_out(ctx, alert)
    return _page(request, "alert.html", me, alert=out)


@router.post("/console/alerts/{alert_id}/review")
def alert_review(alert_id: defs.Id, request: Request, decision: str = Form(max_length=16),
                 note: str = Form("", max_length=2000), me: Principal = Depends(require(Role.REVIEWER))) -> Response:
    def action(ctx: Any) -> str:
        reviews.review(ctx, me.name, alert_id, decision, note)
        request.app.state.metrics.reviews.labels(decision if decision in reviews.DECISIONS else "other").inc()
        return f"alert {alert_id}: {decision} recorded"

    return _act(request, f"/console/alerts/{alert_id}", action)


# --- operator admin -----------------------------------------------------------------------
@router.get("/console/admin", response_class=HTMLResponse)
def admin(request: Request, me: Principal = Depends(require(Role.OPERATOR_ADMIN))) -> HTMLResponse:
    with tx(request) as ctx:
        cams = [(c, cameras.current_signage(ctx, c.id, ctx.now().date())) for c in cameras.list_cameras(ctx)]
        wls = [(w, len(watchlists.active_entries(ctx, w.id))) for w in watchlists.list_watchlists(ctx)]
        deps = [views.deployment_out(d) for d in deployments.list_deployments(ctx)]
        images = ctx.session.execute(
            select(SharedImage).join(Agreement, Agreement.id == SharedImage.agreement_id)
            .where(Agreement.operator == me.organisation, Agreement.status == "active", SharedImage.deleted_at.is_(None))
            .order_by(SharedImage.id)).scalars().all()
    return _page(request, "admin.html", me, cameras=cams, watchlists=wls, deployments=deps, verbs=_verbs(me.role),
                 images=images)


@router.post("/console/deployments/{deployment_id}/{verb}")
def deployment_action(deployment_id: defs.Id, verb: str, request: Request, note: str = Form("", max_length=2000),
                      me: Principal = Depends(require(Role.OPERATOR_ADMIN, Role.AUTHORISING_OFFICER))) -> Response:
    back = HOME[me.role]
    actions: dict[str, Callable[[Any], object]] = {
        "start": lambda ctx: deployments.start(ctx, me.name, deployment_id),
        "end": lambda ctx: deployments.end(ctx, me.name, deployment_id, note),
        "authorise": lambda ctx: deployments.authorise(ctx, me.name, deployment_id, note),
    }
    if verb not in actions:
        return RedirectResponse(f"{back}?error={quote('unknown action')}", status_code=303)
    return _act(request, back, lambda ctx: (actions[verb](ctx), f"deployment {deployment_id}: {verb} done")[1])


def _aware(text: str) -> str:
    """A datetime-local form value is read as UTC."""
    text = text.strip()
    return text if not text or text.endswith("Z") or "+" in text[10:] else text + "+00:00"


@router.post("/console/cameras")
def camera_add(request: Request, name: str = Form(max_length=120), location: str = Form(max_length=2000),
               zone: str = Form("", max_length=120), me: Principal = Depends(require(Role.OPERATOR_ADMIN))) -> Response:
    data_fields = {"name": name, "location": location, "zone": zone}
    return _act(request, "/console/admin", lambda ctx: (
        f"camera {cameras.add_camera(ctx, me.name, parse(CameraCreate, **data_fields)).name} added"))


@router.post("/console/cameras/{camera_id}/signage")
def camera_signage(camera_id: defs.Id, request: Request, text: str = Form(max_length=2000),
                   checked_on: str = Form(max_length=20), me: Principal = Depends(require(Role.OPERATOR_ADMIN))) -> Response:
    return _act(request, "/console/admin", lambda ctx: (cameras.record_signage(ctx, me.name, parse(
        SignageCreate, camera_id=camera_id, text=text, checked_on=checked_on)), "signage check recorded")[1])


@router.post("/console/watchlists")
def watchlist_create(request: Request, name: str = Form(max_length=120), criteria: str = Form(max_length=2000),
                     size_cap: str = Form(max_length=12), me: Principal = Depends(require(Role.OPERATOR_ADMIN))) -> Response:
    return _act(request, "/console/admin", lambda ctx: (watchlists.create_watchlist(ctx, me.name, parse(
        WatchlistCreate, name=name, criteria=criteria, size_cap=size_cap)), f"watchlist {name} created")[1])


@router.post("/console/watchlists/{watchlist_id}/entries")
def watchlist_add(watchlist_id: defs.Id, request: Request, shared_image_id: str = Form(max_length=12),
                  label: str = Form(max_length=120), reason: str = Form(max_length=2000),
                  review_date: str = Form(max_length=20),
                  me: Principal = Depends(require(Role.OPERATOR_ADMIN))) -> Response:
    return _act(request, "/console/admin", lambda ctx: (watchlists.add_entry(ctx, me.name, parse(
        WatchlistAdd, watchlist_id=watchlist_id, shared_image_id=shared_image_id, label=label, reason=reason,
        review_date=review_date)), f"entry added to watchlist {watchlist_id}")[1])


@router.post("/console/deployments")
def deployment_request(request: Request, purpose: str = Form(max_length=2000), watchlist_id: str = Form(max_length=12),
                       camera_ids: str = Form(max_length=500), start: str = Form(max_length=40),
                       end: str = Form(max_length=40), threshold: str = Form(max_length=20),
                       dpia_ref: str = Form(max_length=200), necessity: str = Form(max_length=5000),
                       me: Principal = Depends(require(Role.OPERATOR_ADMIN, Role.AUTHORISING_OFFICER))) -> Response:
    ids = [c.strip() for c in camera_ids.replace(";", ",").split(",") if c.strip()]

    def action(ctx: Any) -> str:
        dep = deployments.request(ctx, me.name, parse(
            DeploymentRequest, purpose=purpose, watchlist_id=watchlist_id, camera_ids=ids, start=_aware(start),
            end=_aware(end), threshold=threshold, dpia_ref=dpia_ref, necessity=necessity))
        return f"deployment {dep.id} requested: an authorising officer must authorise it"

    return _act(request, HOME[me.role], action)


# --- authorising officer ------------------------------------------------------------------
@router.get("/console/officer", response_class=HTMLResponse)
def officer(request: Request, me: Principal = Depends(require(Role.AUTHORISING_OFFICER))) -> HTMLResponse:
    with tx(request) as ctx:
        drafts = [a for a in agreements.list_agreements(ctx) if a.status == "draft"]
        deps = [views.deployment_out(d) for d in deployments.list_deployments(ctx) if d.status == "requested"]
    return _page(request, "officer.html", me, agreements=drafts, deployments=deps, verbs=_verbs(me.role))


@router.post("/console/agreements/{agreement_id}/approve")
def agreement_approve(agreement_id: defs.Id, request: Request,
                      me: Principal = Depends(require(Role.AUTHORISING_OFFICER))) -> Response:
    return _act(request, "/console/officer",
                lambda ctx: (agreements.approve(ctx, me.name, agreement_id), f"agreement {agreement_id} approved")[1])


# --- supplier -----------------------------------------------------------------------------
@router.get("/console/supplier", response_class=HTMLResponse)
def supplier(request: Request, me: Principal = Depends(require(Role.SUPPLIER))) -> HTMLResponse:
    with tx(request) as ctx:
        own = [a for a in agreements.list_agreements(ctx) if a.supplier_id == me.user_id]
        active = [a for a in own if a.status == "active"]
        ledger = sharing.supplier_view(ctx, me.name)
    return _page(request, "supplier.html", me, agreements=own, ledger=ledger, active=active)


@router.post("/console/images")
async def supplier_share(request: Request, me: Principal = Depends(require(Role.SUPPLIER))) -> Response:
    """Share an image from the console (same checks as ``POST /api/images``)."""
    limit = request.app.state.settings.max_upload_bytes
    upload.check_length(request, limit)
    form = await request.form()
    file = form.get("file")
    fields = {k: form.get(k, "") for k in ("agreement_id", "category", "reason", "subject_ref", "image_date")}
    try:
        if not isinstance(file, UploadFile):
            raise HTTPException(422, "choose an image file")
        image = await upload.read_image(file, limit)
        data = parse(ShareImage, **fields, under_18=form.get("under_18") == "on")
    except HTTPException as err:
        return RedirectResponse(f"/console/supplier?error={quote(str(err.detail))}", status_code=303)
    except OpenLFRError as err:
        return RedirectResponse(f"/console/supplier?error={quote(str(err))}", status_code=303)
    return await run_in_threadpool(_act, request, "/console/supplier", lambda ctx: (
        f"image {sharing.share_image(ctx, me.name, data, image).id} shared"))


# --- auditor ------------------------------------------------------------------------------
@router.get("/console/auditor", response_class=HTMLResponse)
def auditor(request: Request, me: Principal = Depends(require(Role.AUDITOR))) -> HTMLResponse:
    with tx(request) as ctx:
        rows = list(ctx.session.execute(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(200)).scalars())
    return _page(request, "auditor.html", me, events=rows)


@router.post("/console/audit/verify")
def audit_verify(request: Request, me: Principal = Depends(require(Role.AUDITOR))) -> Response:
    def action(ctx: Any) -> str:
        result = audit.verify(ctx.session)
        ctx.audit(me.name, "audit.verify", "audit", result.head_seq, ok=result.ok)
        return result.message()

    return _act(request, "/console/auditor", action)


# --- public -------------------------------------------------------------------------------
@router.get("/transparency", response_class=HTMLResponse)
def transparency(request: Request) -> HTMLResponse:
    with tx(request) as ctx:
        record = views.transparency(ctx, request.app.state.settings.complaints)
    return _page(request, "transparency.html", None, record=record)
