"""Console pages for alerts: the reviewer's queue (thumbnails, candidate, state, filters,
pages), one alert, the row the live stream inserts, and the probe-crop thumbnail; for an
alert's keepers (operator admins, DPOs) its early deletion and legal holds, and the holds page.

Who may see an alert is decided in the services: the queue lists only the deployments the
reviewer may review (:func:`openlfr.api.views.reviewable`, the rule of
:func:`openlfr.governance.reviews.may_review`); an alert, its row and its thumbnail go through
:func:`openlfr.governance.outcomes.handler_for` (refused and audited for anyone else).
"""

from __future__ import annotations

import html
from datetime import date
from typing import Any, Literal

import cv2
import numpy as np
from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from openlfr.api import defs, views
from openlfr.api.auth import Principal, require
from openlfr.api.console import _act, _page, templates
from openlfr.api.deps import reading, tx
from openlfr.api.paging import PER_PAGE, Pager
from openlfr.errors import NotFoundError, OpenLFRError
from openlfr.governance import Role, alert_lifecycle, outcomes, parse
from openlfr.governance.grounds import EngagementResult
from openlfr.rights.keys import media_bytes
from openlfr.store.models import Alert, Camera, MediaItem

router = APIRouter(include_in_schema=False)
HANDLERS = (Role.REVIEWER, Role.AUTHORISING_OFFICER)
KEEPERS = (Role.OPERATOR_ADMIN, Role.DPO)  # who may delete and hold alerts: governance.alert_lifecycle
THUMB_PX = 96  # the longer side of a queue thumbnail


def status_of(err: OpenLFRError) -> int:
    """The HTTP status of a refusal shown in a page (as the JSON API would answer it)."""
    from openlfr.api.app import _STATUS

    return next((code for kind, code in _STATUS if isinstance(err, kind)), 400)


class QueueQuery(BaseModel):
    """The queue's query string (empty fields: any)."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)
    state: Literal["", "open", "true", "false", "unsure", "expired"] = ""
    camera: int | None = Field(None, ge=1, le=2**31 - 1)
    deployment: int | None = Field(None, ge=1, le=2**31 - 1)
    since: date | None = None
    until: date | None = None
    page: int = Field(1, ge=1, le=100_000)


def _query(request: Request) -> tuple[QueueQuery, str]:
    """The filters from the query string, or the defaults and the one-line error."""
    fields = {k: v for k, v in request.query_params.items() if k in QueueQuery.model_fields and v.strip()}
    try:
        return parse(QueueQuery, **fields), ""
    except OpenLFRError as err:
        return QueueQuery(), str(err)


@router.get("/console/reviewer", response_class=HTMLResponse)
def reviewer(request: Request, me: Principal = Depends(require(Role.REVIEWER))) -> HTMLResponse:
    """The alert queue: newest first, 25 a page, filtered by state, camera, deployment and day."""
    query, error = _query(request)
    flt = views.QueueFilter(state=query.state or None, camera_id=query.camera, deployment_id=query.deployment,
                            since=query.since, until=query.until)
    if query.since and query.until and query.since > query.until:
        error = "invalid input: the first day is after the last day"
    with reading(request) as ctx:
        user = ctx.require(me.actor, {Role.REVIEWER}, "alert.list")
        deployments = sorted(views.reviewable_ids(ctx, user))
        cams = ctx.session.execute(
            select(Camera.id, Camera.name).where(Camera.id.in_(
                select(Alert.camera_id).where(Alert.deployment_id.in_(views.reviewable(user))))).order_by(Camera.name)
        ).all()
        rows, total = views.alert_queue(ctx, user, flt, (query.page - 1) * PER_PAGE, PER_PAGE)
    keep = tuple((k, str(v)) for k, v in (("state", query.state), ("camera", query.camera or ""),
                                          ("deployment", query.deployment or ""), ("since", query.since or ""),
                                          ("until", query.until or "")))
    pager = Pager(page=query.page, total=total, per_page=PER_PAGE, keep=keep)
    # new alerts are inserted live only on the first page of the unfiltered queue
    live = query.page == 1 and not any(v for _, v in keep)
    return _page(request, "reviewer.html", me, rows=rows, pager=pager, query=query, states=views.QUEUE_STATES,
                 cameras=cams, deployments=deployments, live=live, page_error=error)


@router.get("/console/alerts/{alert_id}/row", response_class=HTMLResponse)
def alert_row(alert_id: defs.Id, request: Request, me: Principal = Depends(require(Role.REVIEWER))) -> HTMLResponse:
    """One queue row (the live stream's new alerts get the same columns as the page's)."""
    try:
        with tx(request) as ctx:  # a refusal is audited
            user, alert, _ = outcomes.handler_for(ctx, me.actor, "alert.list", alert_id)
            row = views.queue_row(ctx, alert, user)
    except OpenLFRError as err:
        return HTMLResponse(f"<p class='error'>{html.escape(str(err))}</p>", status_code=status_of(err))
    return templates.TemplateResponse(request, "_alert_row.html", {"r": row, "fresh": True})


def _thumbnail(data: bytes) -> bytes:
    """A small JPEG of a crop (the queue shows many; the alert page shows the full crop)."""
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        return data
    scale = THUMB_PX / max(img.shape[:2])
    if scale < 1:
        img = cv2.resize(img, (max(1, round(img.shape[1] * scale)), max(1, round(img.shape[0] * scale))),
                         interpolation=cv2.INTER_AREA)
    return cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes()


@router.get("/console/alerts/{alert_id}/thumb", response_class=Response)
def alert_thumb(alert_id: defs.Id, request: Request, me: Principal = Depends(require(*HANDLERS))) -> Response:
    """The probe crop of an alert, decrypted and shrunk: only for those who may open the alert
    (each view audited, like the full crop); never cached."""
    with tx(request) as ctx:
        outcomes.handler_for(ctx, me.actor, "alert.view_crop", alert_id)
        item = ctx.session.execute(select(MediaItem).where(MediaItem.alert_id == alert_id, MediaItem.kind == "crop")
                                   .order_by(MediaItem.id)).scalars().first()
        if item is None or item.blob is None:
            raise NotFoundError(f"alert {alert_id} has no probe crop "
                                "(never stored, or deleted under the retention policy)")
        data = media_bytes(ctx, item)
        ctx.audit(me.actor, "alert.view_crop", "alert", alert_id, thumbnail=True)
    return Response(_thumbnail(data), media_type="image/jpeg", headers={"Cache-Control": "no-store"})


@router.get("/console/alerts/{alert_id}", response_class=HTMLResponse)
def alert_page(alert_id: defs.Id, request: Request,
               me: Principal = Depends(require(*HANDLERS, *KEEPERS))) -> HTMLResponse:
    """One alert: the crop and the watchlist image, candidate, score, camera, time, state,
    decisions; for its keepers (operator admins, DPOs) its retention, legal holds and the forms
    to delete it early, hold it and release a hold."""
    try:
        with tx(request) as ctx:
            keeper = me.role in KEEPERS
            find = alert_lifecycle.keeper_for if keeper else outcomes.handler_for
            user, alert, dep = find(ctx, me.actor, "alert.view", alert_id)
            ctx.audit(me.actor, "alert.view", "alert", alert.id)
            row = views.queue_row(ctx, alert, user)
            police_review = dep.police_review_required
            holds = alert_lifecycle.holds_of(ctx, me.actor, alert_id) if keeper else []
            until = alert_lifecycle.alert_retain_until(ctx, alert)
            gone = alert.pseudonymised_at
            deleted_reason = alert.deleted_reason
    except OpenLFRError as err:
        page = _page(request, "alert.html", me, alert=None, page_error=str(err))
        page.status_code = status_of(err)
        return page
    return _page(request, "alert.html", me, alert=row.alert, row=row, police_review=police_review,
                 results=[(r.value, r.value.replace("_", " ")) for r in EngagementResult], keeper=keeper,
                 holds=holds, retain_until=until, pseudonymised_at=gone, deleted_reason=deleted_reason)


# --- early deletion and legal holds (openlfr.governance.alert_lifecycle) -------------------
@router.post("/console/alerts/{alert_id}/delete")
def alert_delete(alert_id: defs.Id, request: Request, reason: str = Form("", max_length=2000),
                 me: Principal = Depends(require(*KEEPERS))) -> Response:
    """Delete one alert early with a reason (refused under a legal hold)."""
    def action(ctx: Any) -> str:
        wiped = alert_lifecycle.delete_alert(ctx, me.actor, alert_id, reason)
        return (f"alert {alert_id} deleted: {len(wiped.media_deleted)} crops/footage and its key destroyed; "
                "its counts stay in the reports")

    return _act(request, f"/console/alerts/{alert_id}", action)


@router.post("/console/alerts/{alert_id}/holds")
def alert_hold(alert_id: defs.Id, request: Request, proceeding: str = Form("", max_length=300),
               review_date: str = Form("", max_length=20), me: Principal = Depends(require(*KEEPERS))) -> Response:
    """Hold an alert past its retention for a named proceeding, with a review date."""
    def action(ctx: Any) -> str:
        row = alert_lifecycle.place_hold(ctx, me.actor, alert_id, proceeding, review_date)
        return f"alert {alert_id} held (hold {row.id}) until released; review by {row.review_date:%Y-%m-%d}"

    return _act(request, f"/console/alerts/{alert_id}", action)


@router.post("/console/holds/{hold_id}/release")
def hold_release(hold_id: defs.Id, request: Request, reason: str = Form("", max_length=2000),
                 alert_id: str = Form("", max_length=12), me: Principal = Depends(require(*KEEPERS))) -> Response:
    """Release a legal hold with a reason (back to the alert's page, or the holds page)."""
    def action(ctx: Any) -> str:
        row = alert_lifecycle.release_hold(ctx, me.actor, hold_id, reason)
        return f"hold {hold_id} released: alert {row.alert_id}'s retention applies again from the next sweep"

    return _act(request, f"/console/alerts/{alert_id}" if alert_id.isdigit() else "/console/holds", action)


@router.get("/console/holds", response_class=HTMLResponse)
def holds_page(request: Request, me: Principal = Depends(require(*KEEPERS)),
               alert: int | None = Query(None, ge=1, le=2**31 - 1, description="open this alert's page")) -> Response:
    """The legal holds in force on alerts the caller may keep, by review date (due ones
    flagged), and a box to open any alert's page (to hold or delete it)."""
    if alert is not None:
        return RedirectResponse(f"/console/alerts/{alert}", status_code=303)
    with reading(request) as ctx:
        rows = alert_lifecycle.holds(ctx, me.actor)
    return _page(request, "holds.html", me, holds=rows)
