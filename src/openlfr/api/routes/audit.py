"""The audit log for auditors: browse, verify the hash chain, export."""

from __future__ import annotations

import tempfile
from pathlib import Path

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from sqlalchemy import select

from openlfr import audit
from openlfr.api import defs
from openlfr.api.auth import Principal, require
from openlfr.api.deps import tx
from openlfr.governance import Role
from openlfr.store.models import AuditEvent

router = APIRouter(prefix="/api/audit", tags=["audit"])


@router.get("/events", response_model=list[defs.AuditEventOut])
def events(request: Request, after: int = Query(0, ge=0, le=2**62), limit: int = Query(100, ge=1, le=1000),
           action: str | None = Query(None, max_length=80),
           me: Principal = Depends(require(Role.AUDITOR))) -> list[defs.AuditEventOut]:
    """Audit events after sequence number ``after`` (optionally of one action prefix): ``details``
    as hashed, and ``personal``, the sealed personal part opened (``[erased] ...`` once erased)."""
    from openlfr.governance.audit_log import details_of, opened_personal, require_reader

    with tx(request) as ctx:
        require_reader(ctx, me.actor)  # the service's rule, as for the console's audit page
        q = select(AuditEvent).where(AuditEvent.seq > after).order_by(AuditEvent.seq).limit(limit)
        if action:
            q = q.where(AuditEvent.action.startswith(action, autoescape=True))
        return [defs.AuditEventOut.model_validate(e).model_copy(
                    update={"personal": opened_personal(ctx, details_of(e).get("personal"))})
                for e in ctx.session.execute(q).scalars()]


@router.post("/verify", response_model=defs.VerifyOut)
def verify(request: Request, me: Principal = Depends(require(Role.AUDITOR))) -> defs.VerifyOut:
    """Recompute the whole hash chain, then compare the store with it (ledger rows, alert
    outcomes, thresholds, encrypted files: ``store_problems``); the check itself is audited."""
    from openlfr.audit.consistency import check_store

    with tx(request) as ctx:
        result = audit.verify(ctx.session)
        store = check_store(ctx.session, request.app.state.gov.blob_store)
        out = defs.VerifyOut(ok=result.ok and store.ok, count=result.count, head_seq=result.head_seq,
                             head_hash=result.head_hash, detail=result.message() + "\n" + store.message(),
                             store_problems=store.problems)
        ctx.audit(me.actor, "audit.verify", "audit", result.head_seq, ok=out.ok, store_problems=len(store.problems))
    return out


@router.get("/export", response_class=Response, responses={200: {"content": {"application/x-ndjson": {}}}})
def export(request: Request, me: Principal = Depends(require(Role.AUDITOR))) -> Response:
    """The chain as ``openlfr-audit/1`` JSON lines, verifiable offline (``openlfr audit verify --export``)."""
    with tx(request) as ctx, tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "audit.jsonl"
        audit.export_chain(ctx.session, path, now=ctx.now())
        body = path.read_bytes()
        ctx.audit(me.actor, "audit.export", "audit", "-", bytes=len(body))
    return Response(body, media_type="application/x-ndjson",
                    headers={"Content-Disposition": 'attachment; filename="openlfr-audit.jsonl"'})
