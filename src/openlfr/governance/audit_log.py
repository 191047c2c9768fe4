"""Reading the audit log: filtered, one page at a time, for auditors.

Any auditor may read the whole log (the rule of ``GET /api/audit/events``); the check is here
so that every door (the API, the console) applies it, and a refusal is audited.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select

from openlfr.governance.context import Ctx
from openlfr.governance.credentials import Actor
from openlfr.governance.schemas import Role
from openlfr.store.models import AuditEvent, Organisation, User

READERS = {Role.AUDITOR}


@dataclass(frozen=True)
class AuditQuery:
    """Filters of the log (``None``: any): an action prefix (``alert.`` finds every alert
    action), an actor's exact name, the organisation of the acting user, and UTC days."""

    action: str | None = None
    actor: str | None = None
    organisation: str | None = None
    since: date | None = None
    until: date | None = None


def _filtered(q: AuditQuery) -> Any:
    query = select(AuditEvent)
    if q.action:
        query = query.where(AuditEvent.action.startswith(q.action, autoescape=True))
    if q.actor:
        query = query.where(AuditEvent.actor == q.actor)
    if q.organisation:
        members = select(User.name).join(Organisation, Organisation.id == User.organisation_id) \
            .where(Organisation.name == q.organisation)
        query = query.where(AuditEvent.actor.in_(members))
    # ``at`` is the exact ISO text that was hashed (UTC): text order is time order
    if q.since:
        query = query.where(AuditEvent.at >= q.since.isoformat())
    if q.until:
        query = query.where(AuditEvent.at < (q.until + timedelta(days=1)).isoformat())
    return query


def require_reader(ctx: Ctx, actor: Actor) -> User:
    """The acting user, if they may read the audit log (auditors); else refused and audited."""
    return ctx.require(actor, READERS, "audit.read", "audit", "-")


def search(ctx: Ctx, actor: Actor, q: AuditQuery, offset: int = 0, limit: int = 25) -> tuple[list[AuditEvent], int]:
    """Newest first: one page of the events matching ``q``, and how many match in all (auditors only)."""
    require_reader(ctx, actor)
    query = _filtered(q)
    total = ctx.session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    rows = ctx.session.execute(query.order_by(AuditEvent.seq.desc()).offset(offset).limit(limit)).scalars().all()
    return list(rows), total


def details_of(event: AuditEvent) -> dict[str, Any]:
    """An event's details as a dict (its canonical JSON text parsed; ``{}`` if it is not an object)."""
    try:
        found = json.loads(event.details or "{}")
    except ValueError:
        return {"details": event.details}
    return found if isinstance(found, dict) else {"details": found}
