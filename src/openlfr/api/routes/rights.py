"""People's requests: open, verify the requester's identity, hold their photo, search by face,
review findings, extend the clock, decide, and read the outcome letter.

The data protection officer of the organisation a request is addressed to does everything; an
oversight body's auditor may list and read requests without the requester's fields. Each route
checks the role, then calls :mod:`openlfr.rights.requests` with the caller's credential, which
checks it again with the finer rules (own organisation, verified identity, reviewed findings...).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import PlainTextResponse, Response

from openlfr.api import defs, upload
from openlfr.api.auth import Principal, require
from openlfr.api.deps import reading, tx
from openlfr.governance import Role
from openlfr.rights import requests

router = APIRouter(prefix="/api", tags=["requests"])
DPO, AUDITOR = Role.DPO, Role.AUDITOR

#: the multipart body of ``POST /api/requests/{id}/photo``, for the OpenAPI schema
PHOTO_FORM_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {"multipart/form-data": {"schema": {
            "type": "object", "required": ["file"],
            "properties": {"file": {"type": "string", "format": "binary",
                                    "description": "the requester's photo: JPEG or PNG showing one face"}},
        }}},
    }
}


def _out(view: requests.RequestView) -> defs.RequestOut:
    return defs.RequestOut.model_validate(view)


@router.post("/requests", response_model=defs.RequestOut, status_code=201)
def open_request(body: defs.RequestOpenIn, request: Request, me: Principal = Depends(require(DPO))) -> defs.RequestOut:
    """Record a request received by the caller's organisation; its one-month clock starts at ``received_at``."""
    with tx(request) as ctx:
        row = requests.open_request(ctx, me.actor, body.kind, body.name, body.contact, body.details,
                                    received_at=body.received_at, follows_id=body.follows_id)
        return _out(requests.view(ctx, me.actor, row.id))


@router.get("/requests", response_model=list[defs.RequestOut])
def list_requests(request: Request, open_only: bool = Query(False, alias="open", description="only undecided ones"),
                  me: Principal = Depends(require(DPO, AUDITOR))) -> list[defs.RequestOut]:
    """The requests the caller may see, soonest due first (an oversight auditor: all, without requesters' fields)."""
    with reading(request) as ctx:
        return [_out(v) for v in requests.queue(ctx, me.actor, open_only=open_only)]


@router.get("/requests/{request_id}", response_model=defs.RequestOut)
def get_request(request_id: defs.Id, request: Request,
                me: Principal = Depends(require(DPO, AUDITOR))) -> defs.RequestOut:
    """One request with its clock and findings."""
    with reading(request) as ctx:
        return _out(requests.view(ctx, me.actor, request_id))


@router.post("/requests/{request_id}/verify", response_model=defs.RequestOut)
def verify_identity(request_id: defs.Id, body: defs.EvidenceIn, request: Request,
                    me: Principal = Depends(require(DPO))) -> defs.RequestOut:
    """Record that the requester's identity was verified, with a reference to the evidence seen (never a scan)."""
    with tx(request) as ctx:
        requests.verify_identity(ctx, me.actor, request_id, body.evidence_ref)
        return _out(requests.view(ctx, me.actor, request_id))


@router.post("/requests/{request_id}/photo", response_model=defs.RequestOut, openapi_extra=PHOTO_FORM_SCHEMA)
async def attach_photo(request_id: defs.Id, request: Request, me: Principal = Depends(require(DPO))) -> defs.RequestOut:
    """Hold the requester's photo (multipart ``file``: one face), encrypted under the request's key,
    for the search; deleted when the request is decided. The credential is checked before the body is read."""
    from starlette.concurrency import run_in_threadpool

    _, raw = await upload.read_upload_form(request, request.app.state.settings.max_upload_bytes, (), "a photo")

    def work() -> defs.RequestOut:
        with tx(request) as ctx:
            requests.attach_photo(ctx, me.actor, request_id, raw)
            return _out(requests.view(ctx, me.actor, request_id))

    return await run_in_threadpool(work)


@router.post("/requests/{request_id}/search", response_model=defs.RequestOut)
def search(request_id: defs.Id, request: Request, me: Principal = Depends(require(DPO))) -> defs.RequestOut:
    """Search the requester's face against the organisation's watchlists, alerts' crops and shared
    images; each finding then needs a person's verdict (``POST /api/findings/{id}``). The faces
    are compared outside any write transaction, so camera workers never wait for a search."""
    requests.search_request(request.app.state.gov, me.actor, request_id)
    with reading(request) as ctx:
        return _out(requests.view(ctx, me.actor, request_id))


@router.post("/requests/{request_id}/extend", response_model=defs.RequestOut)
def extend(request_id: defs.Id, body: defs.ExtendIn, request: Request,
           me: Principal = Depends(require(DPO))) -> defs.RequestOut:
    """Extend the clock by two months, once, with a reason (UK GDPR Art. 12(3); refused under DPA 2018 Part 3)."""
    with tx(request) as ctx:
        requests.extend(ctx, me.actor, request_id, body.reason)
        return _out(requests.view(ctx, me.actor, request_id))


@router.post("/requests/{request_id}/decide", response_model=defs.RequestOut)
def decide(request_id: defs.Id, body: defs.DecideIn, request: Request,
           me: Principal = Depends(require(DPO))) -> defs.RequestOut:
    """Decide and answer: a granted erasure erases every record confirmed as the requester's; the
    photo is deleted; the letter is written (``GET /api/requests/{id}/letter``)."""
    with tx(request) as ctx:
        requests.decide(ctx, me.actor, request_id, body.decision, list(body.reasons), body.note)
        return _out(requests.view(ctx, me.actor, request_id))


@router.get("/requests/{request_id}/letter", response_class=PlainTextResponse,
            responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                             "description": "the outcome letter, as sent"}})
def letter(request_id: defs.Id, request: Request, me: Principal = Depends(require(DPO))) -> PlainTextResponse:
    """The outcome letter of a decided request (plain text); reading it is audited."""
    with tx(request) as ctx:
        return PlainTextResponse(requests.letter(ctx, me.actor, request_id))


@router.get("/findings/{finding_id}/image", response_class=Response,
            responses={200: {"content": {"image/jpeg": {}, "image/png": {}}}})
def finding_image(finding_id: defs.Id, request: Request, me: Principal = Depends(require(DPO))) -> Response:
    """The face of the record a finding points at (an alert's crop, or the shared image behind an
    entry), for the DPO judging whether it is the requester's: while the request is open; audited."""
    with tx(request) as ctx:
        data = requests.finding_image(ctx, me.actor, finding_id)
    return Response(data, media_type="image/png" if data.startswith(b"\x89PNG") else "image/jpeg",
                    headers={"Cache-Control": "no-store"})


@router.post("/findings/{finding_id}", response_model=defs.FindingOut)
def review_finding(finding_id: defs.Id, body: defs.VerdictIn, request: Request,
                   me: Principal = Depends(require(DPO))) -> defs.FindingOut:
    """A person's verdict on a finding: the requester's record, or someone else's."""
    with tx(request) as ctx:
        row = requests.review_finding(ctx, me.actor, finding_id, body.verdict)
        view = requests.view(ctx, me.actor, row.request_id)
        return defs.FindingOut.model_validate(next(f for f in view.findings if f.id == row.id))
