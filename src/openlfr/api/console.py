"""The web console: server-rendered pages over the same services as the JSON API.

Pages use the session cookie; every form posts the session's CSRF token (checked in
:func:`openlfr.api.auth.authenticate`); the public forms (log in, enrol) carry a pre-session
CSRF token instead. Every service call gets the caller's credential (``me.actor``), never a
name. Actions redirect back with a one-line message or the refusal.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from openlfr import audit
from openlfr.api import auth, defs, upload, views
from openlfr.api.app import WEB
from openlfr.api.auth import Principal, require
from openlfr.api.deps import reading, tx
from openlfr.errors import OpenLFRError
from openlfr.governance import Ctx, OrgKind, PermissionDenied, Role, outcomes, parse, reviews
from openlfr.governance import agreements, cameras, central, deployments, organisations, sharing, users, watchlists
from openlfr.governance.grounds import LegalBasis, WatchlistCategory
from openlfr.governance.ranks import RANKS
from openlfr.governance.schemas import (
    ROLES_BY_KIND, CameraCreate, DeploymentKind, UserCreate,
)

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=WEB / "templates")
HOME = {Role.REVIEWER: "/console/reviewer", Role.OPERATOR_ADMIN: "/console/admin",
        Role.AUTHORISING_OFFICER: "/console/officer", Role.SUPPLIER: "/console/supplier",
        Role.AUDITOR: "/console/auditor", Role.ADMIN: "/console/users", Role.DPO: "/console/requests"}
FORCE_VIEWERS = (Role.SUPPLIER, Role.AUTHORISING_OFFICER, Role.AUDITOR)


def _verbs(role: Role) -> Callable[[Any], list[str]]:
    """The deployment buttons a role gets for a deployment in its state."""
    def verbs(d: Any) -> list[str]:
        officer = role is Role.AUTHORISING_OFFICER
        out = ["authorise", "refuse"] if officer and d.status == "requested" else []
        # an urgent authority awaiting its retrospective review
        out += ["review"] if officer and d.urgent and d.status in ("authorised", "live") \
            and d.retro_review_outcome is None else []
        out += ["start"] if d.status == "authorised" else []
        return out + (["end"] if d.status in ("requested", "authorised", "live") else [])
    return verbs


#: signs the messages a console redirect carries, so that only messages this server wrote are
#: shown: a crafted link (?error=Call 0800...) displays nothing
_MESSAGE_KEY = secrets.token_bytes(32)


def _message_sig(msg: str, error: str) -> str:
    return hmac.new(_MESSAGE_KEY, f"{msg}\0{error}".encode(), "sha256").hexdigest()[:32]


def _page(request: Request, name: str, me: Principal | None, **context: Any) -> HTMLResponse:
    q = request.query_params
    msg, error = q.get("msg", ""), q.get("error", "")
    if (msg or error) and not hmac.compare_digest(q.get("sig", ""), _message_sig(msg, error)):
        msg = error = ""  # not written by this server
    return templates.TemplateResponse(request, name, {"me": me, "msg": msg, "error": error, **context})


def _back(back: str, **query: str) -> RedirectResponse:
    """Redirect to ``back`` with a message (``msg=`` or ``error=``), signed for :func:`_page`."""
    query["sig"] = _message_sig(query.get("msg", ""), query.get("error", ""))
    sep = "&" if "?" in back else "?"
    return RedirectResponse(f"{back}{sep}{urlencode(query, quote_via=quote)}", status_code=303)


def secure_cookies(request: Request) -> bool:
    """Whether cookies get the ``Secure`` flag: the setting, else on unless this is plain HTTP
    on loopback (a browser would not send a Secure cookie back there)."""
    configured = request.app.state.settings.secure_cookies
    if configured is not None:
        return bool(configured)
    loopback = (request.url.hostname or "") in ("127.0.0.1", "::1", "localhost")
    return request.url.scheme == "https" or not loopback


def _act(request: Request, back: str, action: Callable[[Any], str]) -> Response:
    """Run ``action(ctx)`` in a transaction and go back to ``back`` with its message or the refusal."""
    try:
        with tx(request) as ctx:
            msg = action(ctx)
        return _back(back, msg=msg)
    except OpenLFRError as err:
        return _back(back, error=str(err))


# --- public forms: log in, enrol ----------------------------------------------------------
LOGIN_CSRF_COOKIE = "openlfr_login_csrf"
ENROL_CSRF_COOKIE = "openlfr_enrol_csrf"


def _public_form(request: Request, template: str, cookie: str, path: str, *, status: int = 200,
                 error: str = "", headers: dict[str, str] | None = None, **context: Any) -> HTMLResponse:
    """A public form with a pre-session CSRF token (double submit): another site cannot post
    it from a visitor's browser. The browser's token is reused while it lasts, so a second tab
    of the form does not void the first; ``error`` is shown above the form (with ``status``)."""
    csrf = request.cookies.get(cookie, "")
    if not (30 <= len(csrf) <= 64 and csrf.replace("-", "").replace("_", "").isalnum()):
        csrf = secrets.token_urlsafe(24)
    extra = {"error": error} if error else {}
    response = _page(request, template, None, form_csrf=csrf, ranks=list(RANKS), **extra, **context)
    response.status_code = status
    response.headers.update(headers or {})
    response.set_cookie(cookie, csrf, httponly=True, samesite="strict", max_age=3600, path=path,
                        secure=secure_cookies(request))
    return response


def _public_form_ok(request: Request, cookie: str, sent: str) -> bool:
    """Whether a public form came with the token its page set (double submit)."""
    expected = request.cookies.get(cookie, "")
    return bool(expected) and hmac.compare_digest(expected, sent)


def _stale_form(what: str) -> str:
    return (f"the {what} form had expired or did not come from this site (an old tab, or one left open too "
            "long): nothing was sent; fill in the fresh form below")


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request) -> HTMLResponse:
    return _public_form(request, "login.html", LOGIN_CSRF_COOKIE, "/login")


@router.post("/login")
def login(request: Request, name: str = Form(max_length=120), password: str = Form(max_length=1000),
          csrf_token: str = Form("", max_length=200)) -> Response:
    form = ("login.html", LOGIN_CSRF_COOKIE, "/login")
    if not _public_form_ok(request, LOGIN_CSRF_COOKIE, csrf_token):
        return _public_form(request, *form, status=403, error=_stale_form("log-in"), login_name=name)
    try:
        actor, row, user = auth.login(request, name, password, "session")
    except HTTPException as err:  # wrong name or password (401), too many failures (429, how long to wait)
        return _public_form(request, *form, status=err.status_code, error=str(err.detail),
                            headers=dict(err.headers or {}), login_name=name)
    response = RedirectResponse(HOME[Role(user.role)], status_code=303)
    response.set_cookie(auth.SESSION_COOKIE, actor.token, httponly=True, samesite="strict",
                        secure=secure_cookies(request),
                        max_age=int((row.expires_at - row.created_at).total_seconds()))
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.get("/enrol", response_class=HTMLResponse)
def enrol_page(request: Request) -> HTMLResponse:
    return _public_form(request, "enrol.html", ENROL_CSRF_COOKIE, "/enrol")


@router.post("/enrol")
def enrol(request: Request, token: str = Form(max_length=200), name: str = Form(max_length=120),
          password: str = Form(max_length=1000), rank: str = Form("", max_length=40),
          csrf_token: str = Form("", max_length=200)) -> Response:
    """Redeem a one-time enrolment token: the first admin of an organisation chooses their password."""
    if not _public_form_ok(request, ENROL_CSRF_COOKIE, csrf_token):
        return _public_form(request, "enrol.html", ENROL_CSRF_COOKIE, "/enrol", status=403,
                            error=_stale_form("enrolment"))
    keys = auth.enrolment_keys(request)
    try:
        auth.throttle(request, *keys)
    except HTTPException as err:
        return _back("/enrol", error=str(err.detail))
    try:
        with tx(request) as ctx:
            user = organisations.enrol(ctx, token, name, password, rank or None)
            org = user.organisation
    except PermissionDenied as err:
        request.app.state.limiter.failed(*keys)
        return _back("/enrol", error=str(err))
    except OpenLFRError as err:
        return _back("/enrol", error=str(err))
    response = _back("/login", msg=f"{name} enrolled as the first admin of {org}: log in")
    response.delete_cookie(ENROL_CSRF_COOKIE, path="/enrol")
    return response


@router.post("/logout")
def logout(request: Request, me: Principal = Depends(require())) -> Response:
    auth.logout(request, me)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(auth.SESSION_COOKIE)
    return response


@router.get("/")
def root() -> Response:
    return RedirectResponse("/transparency", status_code=303)


@router.get("/console")
def console_home(me: Principal = Depends(require())) -> Response:
    return RedirectResponse(HOME[me.role], status_code=303)


# --- an organisation's admin: its users -----------------------------------------------------
@router.get("/console/users", response_class=HTMLResponse)
def users_page(request: Request, me: Principal = Depends(require(Role.ADMIN))) -> HTMLResponse:
    with reading(request) as ctx:
        rows = users.list_users(ctx, me.actor)
    roles = sorted(r.value for r in ROLES_BY_KIND[me.org_kind]) if me.org_kind else []
    police = me.org_kind is OrgKind.POLICE_FORCE
    return _page(request, "users.html", me, users=rows, roles=roles, ranks=list(RANKS) if police else [])


@router.post("/console/users")
def user_create(request: Request, name: str = Form(max_length=120), role: str = Form(max_length=32),
                rank: str = Form("", max_length=40), password: str = Form(max_length=1000),
                me: Principal = Depends(require(Role.ADMIN))) -> Response:
    def action(ctx: Any) -> str:
        user = users.create_user(ctx, me.actor, parse(UserCreate, name=name, role=role, rank=rank or None), password)
        return f"{user.name} added as {user.role} of {user.organisation}"

    return _act(request, "/console/users", action)


@router.post("/console/users/deactivate")
def user_deactivate(request: Request, name: str = Form(max_length=120), reason: str = Form(max_length=2000),
                    me: Principal = Depends(require(Role.ADMIN))) -> Response:
    return _act(request, "/console/users", lambda ctx: (
        users.deactivate(ctx, me.actor, name, reason), f"{name} deactivated: every session and token revoked")[1])


@router.post("/console/users/role")
def user_role(request: Request, name: str = Form(max_length=120), role: str = Form(max_length=32),
              rank: str = Form("", max_length=40), me: Principal = Depends(require(Role.ADMIN))) -> Response:
    def action(ctx: Any) -> str:
        data = parse(UserCreate, name=name, role=role, rank=rank or None)
        user = users.set_role(ctx, me.actor, name, data.role, data.rank)
        return f"{user.name} is now {user.role}{' (' + user.rank + ')' if user.rank else ''}; their sessions ended"

    return _act(request, "/console/users", action)


@router.post("/console/users/password")
def user_password(request: Request, name: str = Form(max_length=120), password: str = Form(max_length=1000),
                  me: Principal = Depends(require(Role.ADMIN))) -> Response:
    return _act(request, "/console/users", lambda ctx: (
        users.reset_password(ctx, me.actor, name, password), f"password of {name} reset; their sessions ended")[1])


# --- reviewer -----------------------------------------------------------------------------
# the queue and the alert page: openlfr.api.console_alerts
@router.post("/console/alerts/{alert_id}/outcome")
def alert_outcome(alert_id: defs.Id, request: Request, result: str = Form(max_length=32),
                  officer: str = Form("", max_length=120), note: str = Form("", max_length=2000),
                  me: Principal = Depends(require(Role.REVIEWER, Role.AUTHORISING_OFFICER))) -> Response:
    def action(ctx: Any) -> str:
        outcomes.record_outcome(ctx, me.actor, alert_id, result, note, officer)
        return f"alert {alert_id}: outcome recorded ({result.replace('_', ' ')})"

    return _act(request, f"/console/alerts/{alert_id}", action)


@router.post("/console/escalations/{escalation_id}/resolve")
def escalation_resolve(escalation_id: defs.Id, request: Request, decision: str = Form(max_length=16),
                       note: str = Form("", max_length=2000),
                       me: Principal = Depends(require(Role.AUTHORISING_OFFICER))) -> Response:
    def action(ctx: Any) -> str:
        reviews.resolve_escalation(ctx, me.actor, escalation_id, decision, note)
        return f"escalation {escalation_id}: {decision} recorded"

    return _act(request, "/console/officer", action)


@router.post("/console/alerts/{alert_id}/review")
def alert_review(alert_id: defs.Id, request: Request, decision: str = Form(max_length=16),
                 note: str = Form("", max_length=2000), me: Principal = Depends(require(Role.REVIEWER))) -> Response:
    def action(ctx: Any) -> str:
        reviews.review(ctx, me.actor, alert_id, decision, note)
        request.app.state.metrics.reviews.labels(decision if decision in reviews.DECISIONS else "other").inc()
        return f"alert {alert_id}: {decision} recorded"

    return _act(request, f"/console/alerts/{alert_id}", action)


# --- operator admin -----------------------------------------------------------------------
@router.get("/console/admin", response_class=HTMLResponse)
def admin(request: Request, me: Principal = Depends(require(Role.OPERATOR_ADMIN))) -> HTMLResponse:
    with reading(request) as ctx:
        cams = [(c, cameras.current_signage(ctx, c.id, ctx.now().date())) for c in cameras.list_cameras(ctx, me.actor)]
        wls = [(w, len(watchlists.active_entries(ctx, w.id))) for w in watchlists.list_watchlists(ctx, me.actor)]
        deps = [views.deployment_out(d, ctx) for d in deployments.list_deployments(ctx, me.actor)]
        images = views.shared_with(ctx, me.organisation_id)
    return _page(request, "admin.html", me, cameras=cams, watchlists=wls, deployments=deps, verbs=_verbs(me.role),
                 images=images, kinds=[k.value for k in DeploymentKind], bases=list(LegalBasis),
                 categories=list(WatchlistCategory),
                 backdate_days=request.app.state.gov.policy.signage_backdate_days)


@router.post("/console/deployments/{deployment_id}/{verb}")
def deployment_action(deployment_id: defs.Id, verb: str, request: Request, note: str = Form("", max_length=2000),
                      police_review: str = Form("", max_length=8), threshold_reason: str = Form("", max_length=2000),
                      outcome: str = Form("", max_length=16),
                      me: Principal = Depends(require(Role.OPERATOR_ADMIN, Role.AUTHORISING_OFFICER))) -> Response:
    from openlfr.evaluation.cohort import configured_floor

    back = HOME[me.role]
    floor_fn = configured_floor() if verb == "authorise" else None
    actions: dict[str, Callable[[Any], object]] = {
        "start": lambda ctx: deployments.start(ctx, me.actor, deployment_id),
        "end": lambda ctx: deployments.end(ctx, me.actor, deployment_id, note),
        "authorise": lambda ctx: deployments.authorise(ctx, me.actor, deployment_id, note,
                                                       require_police_review=police_review == "on",
                                                       threshold_reason=threshold_reason, floor_fn=floor_fn),
        "refuse": lambda ctx: deployments.refuse(ctx, me.actor, deployment_id, note),
        "review": lambda ctx: deployments.retro_review(ctx, me.actor, deployment_id, outcome, note),
    }
    if verb not in actions:
        return _back(back, error="unknown action")
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
        f"camera {cameras.add_camera(ctx, me.actor, parse(CameraCreate, **data_fields)).name} added"))


@router.post("/console/cameras/{camera_id}/signage")
async def camera_signage(camera_id: defs.Id, request: Request,
                         me: Principal = Depends(require(Role.OPERATOR_ADMIN))) -> Response:
    """Record a signage check (multipart: text, checked_on, deployment_id, optional photo ``file``)."""
    limit = request.app.state.settings.max_upload_bytes
    try:
        form = await request.form(max_files=1, max_fields=len(upload.SIGNAGE_FIELDS) + 2, max_part_size=64 * 1024)
    except Exception as err:  # malformed multipart
        return _back("/console/admin", error=f"invalid form: {err}")
    fields: dict[str, Any] = {k: str(form.get(k, ""))[:2000] for k in upload.SIGNAGE_FIELDS
                              if not isinstance(form.get(k), UploadFile)}
    if not fields.get("deployment_id"):
        fields.pop("deployment_id", None)  # a check of the camera alone
    fields["camera_id"] = camera_id
    photo = None
    file = form.get("file")
    if isinstance(file, UploadFile) and file.filename:  # the photo is optional
        photo = await file.read(limit + 1)
        if len(photo) > limit:
            return _back("/console/admin", error=f"upload too large: at most {limit} bytes")

    def work() -> Response:
        return _act(request, "/console/admin", lambda ctx: (
            cameras.record_signage_from(ctx, me.actor, fields, photo), "signage check recorded")[1])

    return await run_in_threadpool(work)


@router.post("/console/watchlists")
def watchlist_create(request: Request, name: str = Form(max_length=120), criteria: str = Form(max_length=2000),
                     categories: list[str] = Form([], max_length=64), size_cap: str = Form(max_length=12),
                     me: Principal = Depends(require(Role.OPERATOR_ADMIN))) -> Response:
    fields = {"name": name, "criteria": criteria, "categories": categories, "size_cap": size_cap}
    return _act(request, "/console/admin", lambda ctx: (watchlists.create_watchlist_from(ctx, me.actor, fields),
                                                        f"watchlist {name} created")[1])


# adding and removing watchlist entries: openlfr.api.console_forms


@router.post("/console/deployments")
def deployment_request(request: Request, purpose: str = Form(max_length=2000), watchlist_id: str = Form(max_length=12),
                       camera_ids: str = Form(max_length=500), start: str = Form(max_length=40),
                       end: str = Form(max_length=40), threshold: str = Form(max_length=20),
                       legal_basis: str = Form(max_length=64),
                       dpia_ref: str = Form(max_length=200), dpia_date: str = Form(max_length=20),
                       eia_ref: str = Form(max_length=200), eia_date: str = Form(max_length=20),
                       necessity: str = Form(max_length=5000), proportionality: str = Form(max_length=5000),
                       urgent: str = Form("", max_length=8), urgency_reason: str = Form("", max_length=2000),
                       kind: str = Form("live", max_length=16), police_review_required: str = Form("", max_length=8),
                       me: Principal = Depends(require(Role.OPERATOR_ADMIN, Role.AUTHORISING_OFFICER))) -> Response:
    ids = [c.strip() for c in camera_ids.replace(";", ",").split(",") if c.strip()]

    def action(ctx: Any) -> str:
        dep = deployments.request_from(ctx, me.actor, dict(
            kind=kind, purpose=purpose, watchlist_id=watchlist_id, camera_ids=ids,
            start=_aware(start), end=_aware(end), threshold=threshold, legal_basis=legal_basis, dpia_ref=dpia_ref,
            dpia_date=dpia_date, eia_ref=eia_ref, eia_date=eia_date, necessity=necessity,
            proportionality=proportionality, urgent=urgent == "on", urgency_reason=urgency_reason,
            police_review_required=police_review_required == "on"))
        return f"deployment {dep.id} requested: an authorising officer of the supplying force must authorise it"

    return _act(request, HOME[me.role], action)


# --- authorising officer ------------------------------------------------------------------
@router.get("/console/officer", response_class=HTMLResponse)
def officer(request: Request, me: Principal = Depends(require(Role.AUTHORISING_OFFICER))) -> HTMLResponse:
    with reading(request) as ctx:
        drafts = [a for a in agreements.list_agreements(ctx, me.actor) if a.status == "draft"]
        outs = [views.deployment_out(d, ctx) for d in deployments.list_deployments(ctx, me.actor)
                if d.status == "requested" or (d.urgent and d.status in ("authorised", "live")
                                               and d.retro_review_outcome is None)]
        escalated = reviews.escalations(ctx, me.actor)
        due = outcomes.outcomes_due(ctx, me.actor)
    return _page(request, "officer.html", me, agreements=drafts, deployments=outs, verbs=_verbs(me.role),
                 escalations=escalated, outcomes_due=due,
                 min_rank=request.app.state.gov.policy.min_authorising_rank)


@router.post("/console/agreements/{agreement_id}/approve")
def agreement_approve(agreement_id: defs.Id, request: Request,
                      me: Principal = Depends(require(Role.AUTHORISING_OFFICER))) -> Response:
    return _act(request, "/console/officer",
                lambda ctx: (agreements.approve(ctx, me.actor, agreement_id), f"agreement {agreement_id} approved")[1])


# --- supplier -----------------------------------------------------------------------------
@router.get("/console/supplier", response_class=HTMLResponse)
def supplier(request: Request, me: Principal = Depends(require(Role.SUPPLIER))) -> HTMLResponse:
    with tx(request) as ctx:  # the ledger's view is audited (ledger.view)
        own = agreements.list_agreements(ctx, me.actor)
        active = [a for a in own if a.status == "active"]
        ledger = sharing.force_ledger(ctx, me.actor)
    return _page(request, "supplier.html", me, agreements=own, ledger=ledger, active=active,
                 categories=list(WatchlistCategory))


@router.post("/console/images")
async def supplier_share(request: Request, me: Principal = Depends(require(Role.SUPPLIER))) -> Response:
    """Share an image from the console (same checks as ``POST /api/images``)."""
    limit = request.app.state.settings.max_upload_bytes
    try:
        fields, raw = await upload.read_share_form(request, limit)
    except HTTPException as err:
        return _back("/console/supplier", error=str(err.detail))
    data: dict[str, Any] = {**fields, "under_18": fields.get("under_18") == "on"}

    def share(ctx: Ctx, prepared: sharing.PreparedImage) -> str:
        # the fields are checked after the caller, so that a refusal is audited
        return f"image {sharing.share_image_from(ctx, me.actor, data, prepared).id} shared"

    def work() -> Response:
        try:
            prepared = sharing.prepare_image(request.app.state.gov.template_fn, raw, label="the uploaded image")
        except OpenLFRError as err:
            return _back("/console/supplier", error=str(err))
        return _act(request, "/console/supplier", lambda ctx: share(ctx, prepared))

    return await run_in_threadpool(work)


# --- the force's central view -------------------------------------------------------------
@router.get("/console/force", response_class=HTMLResponse)
def force_page(request: Request, force: str = Query("", max_length=200),
               me: Principal = Depends(require(*FORCE_VIEWERS))) -> HTMLResponse:
    """Everything that involves the force's images: agreements (whoever in the force made them),
    every image with its uses, the deployments and alerts that used them."""
    view, error = None, ""
    try:
        with tx(request) as ctx:  # the view is audited (force.view)
            found = central.force_view(ctx, me.actor, force or None)
            view = views.force_out(found, ctx)
    except OpenLFRError as err:
        error = str(err)
    forces = []
    if me.org_kind is OrgKind.OVERSIGHT_BODY:
        with reading(request) as ctx:
            forces = [o.name for o in organisations.list_organisations(ctx) if o.kind == OrgKind.POLICE_FORCE.value]
    return _page(request, "force.html", me, view=view, forces=forces, force=force, page_error=error)


# --- auditor ------------------------------------------------------------------------------
# the audit log page: openlfr.api.console_audit
@router.post("/console/audit/verify")
def audit_verify(request: Request, me: Principal = Depends(require(Role.AUDITOR))) -> Response:
    def action(ctx: Any) -> str:
        result = audit.verify(ctx.session)
        ctx.audit(me.actor, "audit.verify", "audit", result.head_seq, ok=result.ok)
        return result.message()

    return _act(request, "/console/auditor", action)


# --- public -------------------------------------------------------------------------------
@router.get("/transparency", response_class=HTMLResponse)
def transparency(request: Request) -> HTMLResponse:
    with reading(request) as ctx:
        record = views.transparency(ctx, request.app.state.settings.complaints)
    return _page(request, "transparency.html", None, record=record)
