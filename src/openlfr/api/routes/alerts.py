"""Alerts for reviewers: the queue, one alert with its images, decisions, and the live stream."""

from __future__ import annotations

import asyncio
import json
import queue
from collections.abc import AsyncIterator

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response, StreamingResponse
from sqlalchemy import func, select

from openlfr.api import defs, reviews, views
from openlfr.api.auth import Principal, require
from openlfr.api.deps import tx
from openlfr.governance import Ctx, Role
from openlfr.store.models import Alert, Camera, MediaItem, SharedImage, WatchlistEntry

router = APIRouter(prefix="/api/alerts", tags=["alerts"])
REVIEWERS = (Role.REVIEWER,)
KEEPALIVE_S = 15.0
POLL_S = 0.2  # worst-case added latency of an alert announced in this process
STORE_POLL_S = 1.0  # worst-case added latency of an alert committed by another process


@router.get("", response_model=list[defs.AlertOut])
def list_alerts(request: Request, me: Principal = Depends(require(*REVIEWERS))) -> list[defs.AlertOut]:
    """Alerts still held, newest first."""
    with tx(request) as ctx:
        return views.list_alerts(ctx)


def _alerts_after(request: Request, last_id: int) -> list[dict]:
    """Alerts committed after ``last_id`` by any process writing to the store (camera workers)."""
    with tx(request) as ctx:
        rows = ctx.session.execute(
            select(Alert).where(Alert.id > last_id, Alert.deleted_at.is_(None)).order_by(Alert.id)).scalars()
        return [{"alert_id": a.id, "deployment_id": a.deployment_id, "camera_id": a.camera_id,
                 "entry_id": a.entry_id, "score": a.score, "at": a.at.isoformat()} for a in rows]


def _last_alert_id(request: Request) -> int:
    with tx(request) as ctx:
        return ctx.session.execute(select(func.coalesce(func.max(Alert.id), 0))).scalar_one()


@router.get("/stream", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events"}})
async def stream(request: Request, me: Principal = Depends(require(*REVIEWERS))) -> StreamingResponse:
    """Live alerts as Server-Sent Events (``event: alert``, data: the alert id, camera, score, time).

    Alerts come from the in-process event bus and from the store, which camera workers in
    other processes (``openlfr run``) commit to; each alert is sent once."""
    sub = request.app.state.bus.subscribe(maxsize=200)
    camera_names: dict[int, str] = {}

    def camera_name(camera_id: int) -> str:
        if camera_id not in camera_names:
            with tx(request) as ctx:
                cam = ctx.session.get(Camera, camera_id)
                camera_names[camera_id] = cam.name if cam else f"camera {camera_id}"
        return camera_names[camera_id]

    async def events() -> AsyncIterator[str]:
        sent: set[int] = set()
        last_id = await asyncio.to_thread(_last_alert_id, request)  # older ones are in the queue page
        try:
            yield ": connected\n\n"
            idle = since_store = 0.0
            while not await request.is_disconnected():
                batch: list[tuple[str, dict]] = []
                try:
                    while True:
                        event = sub.queue.get_nowait()
                        kind = "alert" if hasattr(event, "alert_id") else "status"
                        batch.append((kind, event.as_dict() if hasattr(event, "as_dict") else {"event": str(event)}))
                except queue.Empty:
                    pass
                if since_store >= STORE_POLL_S:
                    since_store = 0.0
                    batch += [("alert", a) for a in await asyncio.to_thread(_alerts_after, request, last_id)]
                fresh = [(k, d) for k, d in batch if k != "alert" or d["alert_id"] not in sent]
                if not fresh:
                    # poll instead of blocking a worker thread per open stream
                    await asyncio.sleep(POLL_S)
                    idle += POLL_S
                    since_store += POLL_S
                    if idle >= KEEPALIVE_S:  # keeps proxies from closing an idle stream
                        idle = 0.0
                        yield ": keep-alive\n\n"
                    continue
                idle = 0.0
                for kind, data in fresh:
                    if kind == "alert":
                        sent.add(data["alert_id"])
                        last_id = max(last_id, data["alert_id"])
                    # reviewers fetch the label and images from the store; the stream carries no names
                    data.pop("label", None)
                    if "camera_id" in data:
                        data["camera"] = await asyncio.to_thread(camera_name, data["camera_id"])
                    yield f"event: {kind}\ndata: {json.dumps(data)}\n\n"
        finally:
            sub.close()

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@router.get("/{alert_id}", response_model=defs.AlertOut)
def get_alert(alert_id: defs.Id, request: Request, me: Principal = Depends(require(*REVIEWERS))) -> defs.AlertOut:
    """One alert with its reviews."""
    with tx(request) as ctx:
        alert = ctx.get(Alert, alert_id, "alert")
        ctx.audit(me.name, "alert.view", "alert", alert.id)
        return views.alert_out(ctx, alert)


@router.post("/{alert_id}/review", response_model=defs.AlertOut)
def review(alert_id: defs.Id, body: defs.ReviewIn, request: Request,
           me: Principal = Depends(require(*REVIEWERS))) -> defs.AlertOut:
    """Confirm, dismiss or escalate with a note; verified after confirmations by different reviewers."""
    with tx(request) as ctx:
        alert = reviews.review(ctx, me.name, alert_id, body.decision, body.note)
        out = views.alert_out(ctx, alert)
    request.app.state.metrics.reviews.labels(body.decision).inc()
    return out


def _image(ctx: Ctx, blob: str | None, what: str) -> Response:
    if blob is None:
        raise HTTPException(410, f"the {what} has been deleted under the retention policy")
    data = ctx.blobs.get(blob)
    kind = "image/png" if data.startswith(b"\x89PNG") else "image/jpeg"
    return Response(data, media_type=kind, headers={"Cache-Control": "no-store"})


@router.get("/{alert_id}/crop", response_class=Response, responses={200: {"content": {"image/jpeg": {}}}})
def crop(alert_id: defs.Id, request: Request, me: Principal = Depends(require(*REVIEWERS))) -> Response:
    """The probe face crop of an alert (decrypted; each view is audited)."""
    with tx(request) as ctx:
        ctx.get(Alert, alert_id, "alert")
        item = ctx.session.execute(select(MediaItem).where(MediaItem.alert_id == alert_id, MediaItem.kind == "crop")
                                   .order_by(MediaItem.id)).scalars().first()
        if item is None:
            raise HTTPException(404, f"alert {alert_id} has no probe crop")
        ctx.audit(me.name, "alert.view_crop", "alert", alert_id)
        return _image(ctx, item.blob, "probe crop")


@router.get("/{alert_id}/watchlist-image", response_class=Response, responses={200: {"content": {"image/jpeg": {}}}})
def watchlist_image(alert_id: defs.Id, request: Request, me: Principal = Depends(require(*REVIEWERS))) -> Response:
    """The watchlist image the alert matched (decrypted; each view is audited)."""
    with tx(request) as ctx:
        alert = ctx.get(Alert, alert_id, "alert")
        entry = ctx.session.get(WatchlistEntry, alert.entry_id) if alert.entry_id is not None else None
        if entry is None:
            raise HTTPException(404, f"alert {alert_id} has no watchlist entry")
        image = ctx.get(SharedImage, entry.shared_image_id, "shared image")
        ctx.audit(me.name, "alert.view_watchlist_image", "alert", alert_id)
        return _image(ctx, image.image_blob, "watchlist image")
