"""Console pages for people's requests (the data protection officer's): the queue with its
clocks, recording a request, and one request's steps: identity verified, the requester's photo,
the search by face, a verdict on each finding, an extension, the decision and its letter.

Every page and form calls :mod:`openlfr.rights.requests` with the caller's credential: the
service decides who may see or do what (a DPO of the organisation the request was made to; an
oversight auditor may read), audits each step and each refusal, and keeps every rule (the
clock, one face in the photo, erasure under a legal hold...). A refusal comes back as one line
in the page; nothing here re-implements a rule.
"""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any, Literal

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from openlfr.api import defs, upload
from openlfr.api.auth import Principal, require
from openlfr.api.console import _act, _back, _page
from openlfr.api.console_alerts import _thumbnail, status_of
from openlfr.api.deps import tx
from openlfr.api.paging import PER_PAGE, Pager
from openlfr.errors import InputError, OpenLFRError
from openlfr.governance import Role, parse
from openlfr.rights import requests as rq

router = APIRouter(include_in_schema=False)
QUEUE = "/console/requests"
READERS = (Role.DPO, Role.AUDITOR)  # the service narrows it: a DPO's own organisation; an auditor reads
#: the words of the finding verdicts a person may give
VERDICTS = {"requester": "the requester", "someone_else": "someone else"}


class QueueQuery(BaseModel):
    """The queue's query string."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)
    show: Literal["open", "all"] = "open"
    page: int = Field(1, ge=1, le=100_000)


def _received(text: str) -> datetime | None:
    """A received date from the form (a day, or a day and time; read as UTC); ``None``: now
    (nothing given, or today)."""
    text = text.strip()
    if not text:
        return None
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(f"invalid input: received: {text!r} is not a date (YYYY-MM-DD)") from None
    if len(text) <= 10:  # a day alone: now if it is today, else the start of that day
        if at.date() == datetime.now(UTC).date():
            return None
        at = datetime.combine(at.date(), time(0, 0))
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _follows(text: str) -> int | None:
    text = text.strip().lstrip("#")
    if not text:
        return None
    if not text.isdigit() or not 1 <= int(text) <= 2**31 - 1:
        raise InputError(f"invalid input: follows: {text!r} is not a request number")
    return int(text)


@router.get(QUEUE, response_class=HTMLResponse)
def queue_page(request: Request, me: Principal = Depends(require(*READERS))) -> HTMLResponse:
    """The requests the caller may see, soonest due first: kind, received, due, days left
    (overdue in red), status, decision; open ones (default) or all; 25 a page."""
    fields = {k: v for k, v in request.query_params.items() if k in QueueQuery.model_fields and v.strip()}
    error = ""
    try:
        query = parse(QueueQuery, **fields)
    except OpenLFRError as err:
        query, error = QueueQuery(), str(err)
    with tx(request) as ctx:  # a refusal (an auditor of a police force) is audited
        rows = rq.queue(ctx, me.actor, open_only=query.show == "open")
    pager = Pager(page=query.page, total=len(rows), per_page=PER_PAGE, keep=(("show", query.show),))
    return _page(request, "rights.html", me, rows=rows[pager.offset:pager.offset + PER_PAGE], pager=pager,
                 query=query, kinds=[k.value for k in rq.RequestKind], page_error=error,
                 today=datetime.now(UTC).date().isoformat())


@router.post(QUEUE)
def request_open(request: Request, kind: str = Form("", max_length=16), name: str = Form("", max_length=200),
                 contact: str = Form("", max_length=500), details: str = Form("", max_length=5000),
                 received: str = Form("", max_length=40), follows: str = Form("", max_length=12),
                 me: Principal = Depends(require(Role.DPO))) -> Response:
    """Record a request the caller's organisation received (its clock starts at ``received``)."""
    def action(ctx: Any) -> tuple[str, int]:
        ctx.require(me.actor, {Role.DPO}, "request.open")  # the caller first: a bad field is audited
        row = rq.open_request(ctx, me.actor, kind, name, contact, details, received_at=_received(received),
                              follows_id=_follows(follows))
        return f"request {row.id} recorded ({row.kind}): due {row.due_at:%Y-%m-%d}", row.id

    try:
        with tx(request) as ctx:
            msg, request_id = action(ctx)
    except OpenLFRError as err:
        return _back(QUEUE, error=str(err))
    return _back(f"{QUEUE}/{request_id}", msg=msg)


@router.get(QUEUE + "/{request_id}", response_class=HTMLResponse)
def request_page(request_id: defs.Id, request: Request, me: Principal = Depends(require(*READERS))) -> HTMLResponse:
    """One request: the requester, the clock, identity, photo, search, findings with their
    verdicts, extension, decision and, once decided, the letter."""
    try:
        with tx(request) as ctx:  # a refused look is audited
            found = rq.view(ctx, me.actor, request_id)
            # the letter names the requester: their DPO reads it, an oversight auditor does not
            text = rq.letter(ctx, me.actor, request_id) if found.decision and me.role is Role.DPO else ""
    except OpenLFRError as err:
        page = _page(request, "rights_request.html", me, req=None, page_error=str(err))
        page.status_code = status_of(err)
        return page
    return _page(request, "rights_request.html", me, req=found, letter=text, verdicts=VERDICTS,
                 decisions=[d.value for d in rq.Decision], reasons=[r.value for r in rq.Reason],
                 may_act=me.role is Role.DPO)


@router.get(QUEUE + "/{request_id}/photo.jpg", response_class=Response)
def requester_photo(request_id: defs.Id, request: Request, me: Principal = Depends(require(Role.DPO))) -> Response:
    """The requester's photo, shrunk, beside the findings it is compared with (while the request is
    open; each view audited; never cached)."""
    with tx(request) as ctx:
        data = rq.requester_photo(ctx, me.actor, request_id)
    return Response(_thumbnail(data), media_type="image/jpeg", headers={"Cache-Control": "no-store"})


@router.get("/console/findings/{finding_id}/image.jpg", response_class=Response)
def finding_image(finding_id: defs.Id, request: Request, me: Principal = Depends(require(Role.DPO))) -> Response:
    """The face of the record a finding points at, shrunk, for the DPO judging whether it is the
    requester (while the request is open; each view audited; never cached)."""
    with tx(request) as ctx:
        data = rq.finding_image(ctx, me.actor, finding_id)
    return Response(_thumbnail(data), media_type="image/jpeg", headers={"Cache-Control": "no-store"})


def _at(request_id: int) -> str:
    return f"{QUEUE}/{request_id}"


@router.post(QUEUE + "/{request_id}/verify")
def request_verify(request_id: defs.Id, request: Request, evidence_ref: str = Form("", max_length=500),
                   me: Principal = Depends(require(Role.DPO))) -> Response:
    """Record that staff checked the requester's identity (the evidence's reference, never a scan)."""
    return _act(request, _at(request_id), lambda ctx: (
        rq.verify_identity(ctx, me.actor, request_id, evidence_ref),
        f"request {request_id}: identity verified ({evidence_ref.strip()})")[1])


@router.post(QUEUE + "/{request_id}/photo")
async def request_photo(request_id: defs.Id, request: Request, me: Principal = Depends(require(Role.DPO))) -> Response:
    """Hold the requester's photo (multipart ``file``; exactly one face), sealed, for the search."""
    from fastapi import HTTPException

    limit = request.app.state.settings.max_upload_bytes
    try:
        _, data = await upload.read_upload_form(request, limit, (), "a photo")
    except HTTPException as err:
        return _back(_at(request_id), error=str(err.detail))

    def work() -> Response:
        return _act(request, _at(request_id), lambda ctx: (
            rq.attach_photo(ctx, me.actor, request_id, data),
            f"request {request_id}: photo held (sealed) for the search")[1])

    return await run_in_threadpool(work)


@router.post(QUEUE + "/{request_id}/search")
def request_search(request_id: defs.Id, request: Request, me: Principal = Depends(require(Role.DPO))) -> Response:
    """Search the requester's face against watchlists, stored alerts and shared images (the faces
    compared outside any write transaction: camera workers never wait for a search)."""
    try:
        found = rq.search_request(request.app.state.gov, me.actor, request_id)
    except OpenLFRError as err:
        return _back(_at(request_id), error=str(err))
    if not found:
        return _back(_at(request_id), msg=f"request {request_id}: the search found nothing")
    return _back(_at(request_id), msg=f"request {request_id}: the search found {len(found)} record(s): say for "
                                      "each whether it is the requester")


@router.post("/console/findings/{finding_id}/verdict")
def finding_verdict(finding_id: defs.Id, request: Request, verdict: str = Form("", max_length=16),
                    request_id: str = Form("", max_length=12), me: Principal = Depends(require(Role.DPO))) -> Response:
    """A person's verdict on one finding: the requester, or someone else."""
    back = _at(int(request_id)) if request_id.isdigit() and 1 <= int(request_id) <= 2**31 - 1 else QUEUE

    def action(ctx: Any) -> str:
        row = rq.review_finding(ctx, me.actor, finding_id, verdict)
        return f"finding {row.id}: {VERDICTS.get(row.verdict or '', row.verdict)}"

    return _act(request, back, action)


@router.post(QUEUE + "/{request_id}/extend")
def request_extend(request_id: defs.Id, request: Request, reason: str = Form("", max_length=2000),
                   me: Principal = Depends(require(Role.DPO))) -> Response:
    """Extend the clock, with a reason (where the law allows)."""
    def action(ctx: Any) -> str:
        row = rq.extend(ctx, me.actor, request_id, reason)
        return f"request {request_id}: extended, now due {row.due_at:%Y-%m-%d}"

    return _act(request, _at(request_id), action)


@router.post(QUEUE + "/{request_id}/decide")
def request_decide(request_id: defs.Id, request: Request, decision: str = Form("", max_length=24),
                   reasons: list[str] = Form([], max_length=64), note: str = Form("", max_length=5000),
                   me: Principal = Depends(require(Role.DPO))) -> Response:
    """Decide and answer (a granted erasure erases every finding confirmed as the requester's);
    the letter is generated."""
    def action(ctx: Any) -> str:
        row = rq.decide(ctx, me.actor, request_id, decision, reasons, note)
        return f"request {request_id}: {(row.decision or decision).replace('_', ' ')}; the letter is below"

    return _act(request, _at(request_id), action)
