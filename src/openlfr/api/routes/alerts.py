"""Alerts for reviewers: the queue, one alert with its images, decisions, outcomes,
escalations, and the live stream.

A reviewer sees only the alerts of deployments they may review (those their organisation
runs, or that an officer of their organisation authorised: :func:`reviews.may_review`);
another organisation's alert is refused (403, audited), everywhere, the stream included.
An authorising officer of the force that authorised a deployment may open its alerts too
(they own its escalations and may record outcomes: :func:`outcomes.handler_for`).
The stream re-checks the caller's credential at least every second and before it sends
anything, so a deactivated user, a reset password or a revoked token ends it at once.
"""

from __future__ import annotations

import asyncio
import json
import queue
import threading
import time
from collections.abc import AsyncIterator

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response, StreamingResponse
from sqlalchemy import func, select

from openlfr.api import defs, views
from openlfr.api.auth import Principal, require
from openlfr.api.deps import reading, tx
from openlfr.governance import Ctx, Role, outcomes, reviews
from openlfr.governance.credentials import live_token
from openlfr.rights.keys import media_bytes
from openlfr.store.models import Alert, Camera, MediaItem, SharedImage, WatchlistEntry

router = APIRouter(prefix="/api", tags=["alerts"])
REVIEWERS = (Role.REVIEWER,)
HANDLERS = (Role.REVIEWER, Role.AUTHORISING_OFFICER)  # who may open an alert, record its outcome
OFFICERS = (Role.AUTHORISING_OFFICER,)
KEEPALIVE_S = 15.0
POLL_S = 0.2  # the stream's tick: status events from this process, credential re-checks
STORE_BATCH = 200  # most alerts read from the store at once (a stream resumed far back catches up in steps)
STORE_POLL_S = 1.0  # worst-case added latency of an alert whose notification was lost (the safety net)
RECHECK_S = 0.75  # the caller's credential is checked again this often (and before anything is sent)


@router.get("/alerts", response_model=list[defs.AlertOut])
def list_alerts(request: Request, me: Principal = Depends(require(*REVIEWERS))) -> list[defs.AlertOut]:
    """Alerts still held that the caller may review, newest first."""
    with tx(request) as ctx:
        user = ctx.require(me.actor, {Role.REVIEWER}, "alert.list")
        return views.list_alerts(ctx, user)


class StreamWaker:
    """Wakes every open alert stream of this API process, from any thread: called by the
    process's one ``LISTEN`` on :data:`~openlfr.store.notify.ALERTS` (started in the app's
    lifespan), which also hears this process's own commits. A wake-up is only a hint to read
    the store now; streams poll it anyway."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._streams: dict[asyncio.Event, asyncio.AbstractEventLoop] = {}

    def watch(self) -> asyncio.Event:
        """A new stream's event, set at each wake-up (call on the stream's event loop)."""
        event = asyncio.Event()
        with self._lock:
            self._streams[event] = asyncio.get_running_loop()
        return event

    def unwatch(self, event: asyncio.Event) -> None:
        with self._lock:
            self._streams.pop(event, None)

    def wake(self, *_: object) -> None:
        """Wake every stream (any thread; the arguments, a notification's channel and payload, are ignored)."""
        with self._lock:
            streams = list(self._streams.items())
        for event, loop in streams:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # its loop has closed: the stream is gone
                self.unwatch(event)


def _alerts_after(request: Request, cursor: int, deployments: set[int]) -> list[dict]:
    """Alerts of ``deployments`` committed after ``cursor`` (in commit order) by any process
    writing to the store: camera workers on any host, this one included."""
    if not deployments:
        return []
    with reading(request) as ctx:
        rows = ctx.session.execute(
            select(Alert).where(Alert.cursor > cursor, Alert.deleted_at.is_(None),
                                Alert.deployment_id.in_(deployments))
            .order_by(Alert.cursor).limit(STORE_BATCH)).scalars()
        return [{"alert_id": a.id, "cursor": a.cursor, "deployment_id": a.deployment_id, "camera_id": a.camera_id,
                 "entry_id": a.entry_id, "score": a.score, "at": a.at.isoformat()} for a in rows]


def _head_cursor(request: Request) -> int:
    """The newest alert's cursor (0: none yet)."""
    with reading(request) as ctx:
        return int(ctx.session.execute(select(func.max(Alert.cursor))).scalar_one() or 0)


def _cursor_of(request: Request, alert_id: int) -> int:
    """The cursor of alert ``alert_id`` (the newest one a page shows): alerts committed after it
    follow. 0 for 0; for an id that names no alert, the newest cursor among lower ids."""
    if alert_id == 0:
        return 0
    with reading(request) as ctx:
        found = ctx.session.execute(select(Alert.cursor).where(Alert.id == alert_id)).scalar_one_or_none()
        if found is None:
            found = ctx.session.execute(select(func.max(Alert.cursor)).where(Alert.id <= alert_id)).scalar_one()
        return int(found or 0)


def _reviewable(request: Request, me: Principal) -> set[int] | None:
    """The deployments the caller may review now, or ``None`` once their credential is no
    longer live (revoked, expired, password reset, role changed, user deactivated)."""
    with tx(request) as ctx:
        found = live_token(ctx.session, me.token, ctx.now())
        if found is None or found[0].id != me.token_id or Role(found[1].role) is not Role.REVIEWER:
            return None
        return views.reviewable_ids(ctx, found[1])


@router.get("/alerts/stream", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events"}})
async def stream(request: Request, me: Principal = Depends(require(*REVIEWERS)),
                 after: int | None = Query(None, ge=0, le=2**62, description=(
                     "send the caller's alerts committed after this alert (the newest one the page already "
                     "shows: an alert id) too, so none committed while the stream connects is missed"))
                 ) -> StreamingResponse:
    """Live alerts as Server-Sent Events (``event: alert``, data: the alert id, its cursor, camera,
    score, time), for the deployments the caller may review.

    Alerts are read from the store, in the order they were committed, by whichever process
    (camera workers on any host): each alert's ``id:`` is its cursor, a number that grows in
    commit order and is the same on every API replica. A browser that reconnects sends the last
    one it received (``Last-Event-ID``) to any replica and gets exactly the alerts committed
    after it, none twice and none skipped; ``after`` does the same for a page's first
    connection. New alerts are sent as soon as their commit is announced (PostgreSQL
    ``NOTIFY``, or this process's own commits), and within a second in any case.

    The caller's credential is checked again at least every second and before each batch is
    sent: the stream ends (``event: end``) as soon as it is revoked or expires or the user is
    deactivated."""
    allowed = await asyncio.to_thread(_reviewable, request, me)
    if allowed is None:
        raise HTTPException(401, "session expired or not valid: log in again", headers={"WWW-Authenticate": "Bearer"})
    sub = request.app.state.bus.subscribe(maxsize=200)  # status events, and early word of alerts
    waker: StreamWaker | None = getattr(request.app.state, "alert_waker", None)
    camera_names: dict[int, str] = {}

    def camera_name(camera_id: int) -> str:
        if camera_id not in camera_names:
            with reading(request) as ctx:
                cam = ctx.session.get(Camera, camera_id)
                camera_names[camera_id] = cam.name if cam else f"camera {camera_id}"
        return camera_names[camera_id]

    async def events() -> AsyncIterator[str]:
        nonlocal allowed
        resume = request.headers.get("last-event-id", "")
        if resume.isdigit() and len(resume) < 19:  # a reconnecting browser: after its last alert's cursor
            last = int(resume)
        elif after is not None:  # after the newest alert the page shows
            last = await asyncio.to_thread(_cursor_of, request, after)
        else:  # from now (older ones are in the queue page)
            last = await asyncio.to_thread(_head_cursor, request)
        wake = waker.watch() if waker is not None else None
        checked = time.monotonic()

        async def recheck() -> bool:
            nonlocal allowed, checked
            allowed = await asyncio.to_thread(_reviewable, request, me)
            checked = time.monotonic()
            return allowed is not None

        try:
            yield ": connected\n\n"
            next_store = 0.0  # (monotonic) the next read of the store: at once, then each second at least
            quiet_since = time.monotonic()
            while not await request.is_disconnected():
                if time.monotonic() - checked >= RECHECK_S and not await recheck():
                    break
                batch: list[tuple[str, dict]] = []
                try:
                    while True:
                        event = sub.queue.get_nowait()
                        if hasattr(event, "alert_id"):  # committed in this process: read the store now
                            next_store = 0.0
                        else:
                            batch.append(("status", event.as_dict() if hasattr(event, "as_dict")
                                          else {"event": str(event)}))
                except queue.Empty:
                    pass
                alerts: list[dict] = []
                if (wake is not None and wake.is_set()) or time.monotonic() >= next_store:
                    if wake is not None:
                        wake.clear()  # (before reading: a commit meanwhile wakes the next read)
                    alerts = await asyncio.to_thread(_alerts_after, request, last, set(allowed or ()))
                    # a full batch: more are waiting (a stream resumed far back catches up in steps)
                    next_store = 0.0 if len(alerts) >= STORE_BATCH else time.monotonic() + STORE_POLL_S
                batch += [("alert", a) for a in alerts]
                if batch and not await recheck():  # nothing goes out on a credential that is gone
                    break
                if alerts:  # (past those the caller may no longer review too: never to be sent)
                    last = max(last, max(a["cursor"] for a in alerts))
                fresh = [(k, d) for k, d in batch if d.get("deployment_id") in (allowed or set())]
                if not fresh:
                    # wait for a wake-up or the next tick (without blocking a worker thread per stream)
                    if wake is not None:
                        try:
                            await asyncio.wait_for(wake.wait(), POLL_S)
                        except TimeoutError:
                            pass
                    else:
                        await asyncio.sleep(POLL_S)
                    if time.monotonic() - quiet_since >= KEEPALIVE_S:  # keeps proxies from closing an idle stream
                        quiet_since = time.monotonic()
                        yield ": keep-alive\n\n"
                    continue
                quiet_since = time.monotonic()
                for kind, data in fresh:
                    # reviewers fetch the label and images from the store; the stream carries no names
                    data.pop("label", None)
                    if "camera_id" in data:
                        data["camera"] = await asyncio.to_thread(camera_name, data["camera_id"])
                    ident = f"id: {data['cursor']}\n" if kind == "alert" else ""
                    yield f"{ident}event: {kind}\ndata: {json.dumps(data)}\n\n"
            if allowed is None:  # the credential is gone: say so (the console stops reconnecting) and end
                yield 'event: end\ndata: {"reason": "credential no longer valid: log in again"}\n\n'
        finally:
            sub.close()
            if wake is not None and waker is not None:
                waker.unwatch(wake)

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@router.get("/alerts/{alert_id}", response_model=defs.AlertOut)
def get_alert(alert_id: defs.Id, request: Request, me: Principal = Depends(require(*HANDLERS))) -> defs.AlertOut:
    """One alert with its reviews and outcome (a reviewer who may review its deployment, or an
    authorising officer of the force that authorised it; each view audited)."""
    with tx(request) as ctx:
        user, alert, _ = outcomes.handler_for(ctx, me.actor, "alert.view", alert_id)
        ctx.audit(me.actor, "alert.view", "alert", alert.id)
        return views.alert_out(ctx, alert, user)


@router.post("/alerts/{alert_id}/review", response_model=defs.AlertOut)
def review(alert_id: defs.Id, body: defs.ReviewIn, request: Request,
           me: Principal = Depends(require(*REVIEWERS))) -> defs.AlertOut:
    """Confirm, dismiss or escalate with a note; verified after confirmations by different
    reviewers (police reviewers only, where the deployment requires it)."""
    with tx(request) as ctx:
        alert = reviews.review(ctx, me.actor, alert_id, body.decision, body.note)
        out = views.alert_out(ctx, alert, ctx.user_of(me.actor))
    request.app.state.metrics.reviews.labels(body.decision).inc()
    return out


def _image(ctx: Ctx, blob: str | None, what: str) -> Response:
    if blob is None:
        raise HTTPException(410, f"the {what} has been deleted under the retention policy")
    return _image_response(ctx.blobs.get(blob))


def _image_response(data: bytes) -> Response:
    kind = "image/png" if data.startswith(b"\x89PNG") else "image/jpeg"
    return Response(data, media_type=kind, headers={"Cache-Control": "no-store"})


@router.get("/alerts/{alert_id}/crop", response_class=Response, responses={200: {"content": {"image/jpeg": {}}}})
def crop(alert_id: defs.Id, request: Request, me: Principal = Depends(require(*HANDLERS))) -> Response:
    """The probe face crop of an alert (decrypted; each view is audited)."""
    with tx(request) as ctx:
        outcomes.handler_for(ctx, me.actor, "alert.view_crop", alert_id)
        item = ctx.session.execute(select(MediaItem).where(MediaItem.alert_id == alert_id, MediaItem.kind == "crop")
                                   .order_by(MediaItem.id)).scalars().first()
        if item is None:
            raise HTTPException(404, f"alert {alert_id} has no probe crop")
        if item.blob is None:
            raise HTTPException(410, "the probe crop has been deleted under the retention policy or erased")
        data = media_bytes(ctx, item)
        ctx.audit(me.actor, "alert.view_crop", "alert", alert_id)
        return _image_response(data)


@router.get("/alerts/{alert_id}/watchlist-image", response_class=Response,
            responses={200: {"content": {"image/jpeg": {}}}})
def watchlist_image(alert_id: defs.Id, request: Request, me: Principal = Depends(require(*HANDLERS))) -> Response:
    """The watchlist image the alert matched (decrypted; each view is audited)."""
    with tx(request) as ctx:
        _, alert, _ = outcomes.handler_for(ctx, me.actor, "alert.view_watchlist_image", alert_id)
        entry = ctx.session.get(WatchlistEntry, alert.entry_id) if alert.entry_id is not None else None
        if entry is None:
            raise HTTPException(404, f"alert {alert_id} has no watchlist entry")
        image = ctx.get(SharedImage, entry.shared_image_id, "shared image")
        ctx.audit(me.actor, "alert.view_watchlist_image", "alert", alert_id)
        return _image(ctx, image.image_blob, "watchlist image")


# --- outcomes and escalations ---------------------------------------------------------------
@router.post("/alerts/{alert_id}/outcome", response_model=defs.AlertOut)
def record_outcome(alert_id: defs.Id, body: defs.OutcomeIn, request: Request,
                   me: Principal = Depends(require(*HANDLERS))) -> defs.AlertOut:
    """Record what happened after a verified alert (once; the result from the fixed list, the
    officer who engaged, a note): a reviewer of its deployment or an authorising officer of the
    force that authorised it."""
    with tx(request) as ctx:
        outcomes.record_outcome(ctx, me.actor, alert_id, body.result.value, body.note, body.officer)
        user, alert, _ = outcomes.handler_for(ctx, me.actor, "alert.view", alert_id)
        return views.alert_out(ctx, alert, user)


@router.get("/outcomes/due", response_model=list[defs.OutcomeDueOut])
def outcomes_due(request: Request, me: Principal = Depends(require(*HANDLERS))) -> list[defs.OutcomeDueOut]:
    """Verified alerts still held whose outcome the caller may record and nobody has, oldest first."""
    with tx(request) as ctx:
        return [defs.OutcomeDueOut.model_validate(d) for d in outcomes.outcomes_due(ctx, me.actor)]


@router.get("/escalations", response_model=list[defs.EscalationOut])
def escalations(request: Request, me: Principal = Depends(require(*OFFICERS))) -> list[defs.EscalationOut]:
    """The escalations the caller's role and organisation own: open ones, and those resolved in
    the last week, newest first."""
    with tx(request) as ctx:
        return [defs.EscalationOut.model_validate(e) for e in reviews.escalations(ctx, me.actor)]


@router.post("/escalations/{escalation_id}/resolve", response_model=defs.EscalationOut)
def resolve_escalation(escalation_id: defs.Id, body: defs.ResolveIn, request: Request,
                       me: Principal = Depends(require(*OFFICERS))) -> defs.EscalationOut:
    """An officer of the owning role and organisation (not the reviewer who escalated) confirms
    or dismisses: a dismissal settles the alert as false; a confirmation counts as one of the
    confirmations its deployment requires."""
    with tx(request) as ctx:
        reviews.resolve_escalation(ctx, me.actor, escalation_id, body.decision, body.note)
        return next(defs.EscalationOut.model_validate(e) for e in reviews.escalations(ctx, me.actor)
                    if e.id == escalation_id)


# --- early deletion and legal holds (openlfr.governance.alert_lifecycle) -------------------
KEEPERS = (Role.OPERATOR_ADMIN, Role.DPO)  # finer rule (whose deployment) in the service


@router.post("/alerts/{alert_id}/delete", response_model=defs.AlertDeletedOut)
def delete_alert(alert_id: defs.Id, body: defs.AlertDeleteIn, request: Request,
                 me: Principal = Depends(require(*KEEPERS))) -> defs.AlertDeletedOut:
    """Delete one alert before its retention ends, with a reason: its crop, erasure key, details
    and notes go; what the reports count stays. Refused (409) under a legal hold. An operator
    admin or DPO of the deployment's organisation, or a DPO of the force that authorised it."""
    from openlfr.governance import alert_lifecycle

    with tx(request) as ctx:
        wiped = alert_lifecycle.delete_alert(ctx, me.actor, alert_id, body.reason)
    return defs.AlertDeletedOut.model_validate(wiped)


@router.post("/alerts/{alert_id}/holds", response_model=defs.HoldOut, status_code=201)
def place_hold(alert_id: defs.Id, body: defs.HoldIn, request: Request,
               me: Principal = Depends(require(*KEEPERS))) -> defs.HoldOut:
    """Hold an alert past its retention for a named proceeding, with a review date in the
    future: no sweep, deletion or erasure touches it until the hold is released."""
    from openlfr.governance import alert_lifecycle

    with tx(request) as ctx:
        row = alert_lifecycle.place_hold(ctx, me.actor, alert_id, body.proceeding, body.review_date)
        return defs.HoldOut.model_validate(alert_lifecycle.hold_view(ctx, row, ctx.now().date()))


@router.post("/holds/{hold_id}/release", response_model=defs.HoldOut)
def release_hold(hold_id: defs.Id, body: defs.ReasonIn, request: Request,
                 me: Principal = Depends(require(*KEEPERS))) -> defs.HoldOut:
    """Release a legal hold with a reason: the alert's retention applies again from the next sweep."""
    from openlfr.governance import alert_lifecycle

    with tx(request) as ctx:
        row = alert_lifecycle.release_hold(ctx, me.actor, hold_id, body.reason)
        return defs.HoldOut.model_validate(alert_lifecycle.hold_view(ctx, row, ctx.now().date()))


@router.get("/holds", response_model=list[defs.HoldOut])
def list_holds(request: Request, me: Principal = Depends(require(*KEEPERS)),
               due: bool = Query(False, description="only the holds whose review date has come")) -> list[defs.HoldOut]:
    """The legal holds in force on alerts the caller may keep, by review date."""
    from openlfr.governance import alert_lifecycle

    with tx(request) as ctx:
        return [defs.HoldOut.model_validate(h) for h in alert_lifecycle.holds(ctx, me.actor, due_only=due)]
