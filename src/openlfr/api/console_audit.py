"""The console's audit log: filters (action prefix, actor, organisation, days), pages, and one
readable event a row, its details as a definition list (a sealed personal part opened while
its subject's erasure key lives, "[erased]" after: :func:`~openlfr.governance.audit_log.readable_details`).

Who may read it is decided in :func:`openlfr.governance.audit_log.search` (auditors); the
chain check (``POST /console/audit/verify``) stays in :mod:`openlfr.api.console`.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field

from openlfr.api.auth import Principal, require
from openlfr.api.console import _page
from openlfr.api.deps import reading
from openlfr.api.paging import PER_PAGE, Pager
from openlfr.errors import OpenLFRError
from openlfr.governance import Ctx, OrgKind, Role, parse
from openlfr.governance.audit_log import AuditQuery, readable_details, search
from openlfr.governance.organisations import list_organisations

router = APIRouter(include_in_schema=False)


class AuditFilter(BaseModel):
    """The audit page's query string (empty fields: any)."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)
    action: str = Field("", max_length=80)
    actor: str = Field("", max_length=120)
    organisation: str = Field("", max_length=200)
    since: date | None = None
    until: date | None = None
    page: int = Field(1, ge=1, le=1_000_000)


def _words(value: Any) -> str | list[tuple[str, Any]]:
    """A detail's value for a definition list: text, or (for an object, or a list of them)
    the pairs of a nested list."""
    if isinstance(value, dict):
        return [(str(k).replace("_", " "), _words(v)) for k, v in sorted(value.items())]
    if isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        return [(str(i), _words(v)) for i, v in enumerate(value, 1)]
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "–"
    if value is None or value == "":
        return "–"
    return str(value)


def _event(ctx: Ctx, e: Any) -> dict[str, Any]:
    details = readable_details(ctx, e)
    return {"seq": e.seq, "at": e.at[:19].replace("T", " "), "actor": e.actor, "action": e.action,
            "refused": e.action.endswith(".refused"), "object": f"{e.object_type.replace('_', ' ')} {e.object_id}",
            "details": _words(details) if details else []}


@router.get("/console/auditor", response_class=HTMLResponse)
def audit_page(request: Request, me: Principal = Depends(require(Role.AUDITOR))) -> HTMLResponse:
    """The audit log, newest first, 25 events a page."""
    fields = {k: v for k, v in request.query_params.items() if k in AuditFilter.model_fields and v.strip()}
    error = ""
    try:
        f = parse(AuditFilter, **fields)
    except OpenLFRError as err:
        f, error = AuditFilter(), str(err)
    if f.since and f.until and f.since > f.until:
        error = "invalid input: the first day is after the last day"
    query = AuditQuery(action=f.action or None, actor=f.actor or None, organisation=f.organisation or None,
                       since=f.since, until=f.until)
    with reading(request) as ctx:
        rows, total = search(ctx, me.actor, query, (f.page - 1) * PER_PAGE, PER_PAGE)
        events = [_event(ctx, e) for e in rows]
        orgs = [o.name for o in list_organisations(ctx)]
    keep = tuple((k, str(getattr(f, k) or "")) for k in ("action", "actor", "organisation", "since", "until"))
    return _page(request, "auditor.html", me, events=events, pager=Pager(f.page, total, PER_PAGE, keep), query=f,
                 organisations=orgs, page_error=error, police=me.org_kind is OrgKind.POLICE_FORCE,
                 oversight=me.org_kind is OrgKind.OVERSIGHT_BODY)
