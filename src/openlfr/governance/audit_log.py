"""Reading the audit log: filtered, one page at a time, for auditors.

Any auditor may read the whole log (the rule of ``GET /api/audit/events``); the check is here
so that every door (the API, the console) applies it, and a refusal is audited.

An event's personal details (the ``personal`` part that :meth:`Ctx.audit
<openlfr.governance.context.Ctx.audit>` sealed under an alert's or a request's erasure key)
are shown to readers opened (:func:`readable_details`) while that key lives, and as
:data:`~openlfr.rights.keys.ERASED` with the erasure that destroyed it afterwards. The stored
text is never changed: the chain and its export hash the ciphertext.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select

from openlfr.governance.context import Ctx
from openlfr.governance.credentials import Actor
from openlfr.governance.schemas import Role
from openlfr.rights.keys import ERASED, is_sealed_text, open_fields
from openlfr.store.models import AuditEvent, ErasureKey, Organisation, User

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


def _erasure(ctx: Ctx, ref: str) -> str:
    """``[erased]`` with when and by which event the key ``ref`` was destroyed, as far as known
    (looked up once per reader's transaction: a page may hold many events of one subject)."""
    seen: dict[str, str] = ctx.session.info.setdefault("openlfr.erasures_shown", {})
    if ref not in seen:
        seen[ref] = _erasure_of(ctx, ref)
    return seen[ref]


def _erasure_of(ctx: Ctx, ref: str) -> str:
    row = ctx.session.get(ErasureKey, ref)
    if row is None or row.destroyed_at is None:
        return ERASED  # a part that does not open under a live key: say no more than that
    action = (row.destroyed_reason or "").split(":", 1)[0].strip()
    kind, _, ident = ref.partition(":")
    event = ctx.session.execute(
        select(AuditEvent.seq).where(AuditEvent.object_type == kind, AuditEvent.object_id == ident,
                                     AuditEvent.action == action)
        .order_by(AuditEvent.seq.desc()).limit(1)).scalar_one_or_none() if action else None
    by = f" by event #{event} ({action})" if event is not None else (f" ({action})" if action else "")
    return f"{ERASED} {ref} on {row.destroyed_at:%Y-%m-%d %H:%M} UTC{by}"


def opened_personal(ctx: Ctx, part: Any) -> dict[str, Any] | str | None:
    """A sealed ``personal`` part as a reader is shown it: its fields while the subject's key
    lives, ``"[erased] <ref> on <when> by event #<seq> (<action>)"`` once it was destroyed;
    None when ``part`` is not a sealed part."""
    if not isinstance(part, Mapping) or not is_sealed_text(part.get("sealed")):
        return None
    fields = open_fields(ctx, part)
    return fields if fields is not None else _erasure(ctx, str(part.get("key", "")))


def readable_details(ctx: Ctx, event: AuditEvent) -> dict[str, Any]:
    """:func:`details_of` with the sealed ``personal`` part opened (:func:`opened_personal`),
    for people reading the log; the export keeps the stored text."""
    details = details_of(event)
    opened = opened_personal(ctx, details.get("personal"))
    if opened is not None:
        details["personal"] = opened
    return details
