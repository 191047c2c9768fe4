"""The hash-chained audit log: append, recompute, verify.

Every event is hashed together with the previous event's hash::

    hash_n = SHA-256( JSON [seq, at, actor, action, object_type, object_id, details, hash_{n-1}] )

with ``hash_0`` = 64 zeros, JSON written compactly (``separators=(",", ":")``, UTF-8, no
ASCII escaping) and ``details`` itself a canonical JSON text (sorted keys). A separate head
row holds the newest sequence number and hash, so cutting events off the end is detected
too; an auditor who keeps the head from an earlier export can check the log has only grown.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, String, func, literal, select, union_all
from sqlalchemy.orm import Session

from openlfr.store.models import AuditEvent, AuditHead

GENESIS = "0" * 64
#: ``Session.info`` flag: this transaction appended events (a periodic checkpoint may be due)
AUDITED = "openlfr.audited"


def canonical_json(value: Any) -> str:
    """Deterministic JSON text: sorted keys, compact, UTF-8; non-JSON values as ``str``."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def iso_utc(at: datetime) -> str:
    """The exact text a time is hashed as: ISO 8601, UTC, microseconds."""
    if at.tzinfo is None:
        raise ValueError("audit times must be timezone-aware")
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def event_hash(
    seq: int, at: str, actor: str, action: str, object_type: str, object_id: str, details: str, prev_hash: str
) -> str:
    """SHA-256 (hex) of one event chained to ``prev_hash`` (see module docstring)."""
    body = json.dumps(
        [seq, at, actor, action, object_type, object_id, details, prev_hash],
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class EventRecord:
    """An audit event as plain data (what is verified and exported)."""

    seq: int
    at: str
    actor: str
    action: str
    object_type: str
    object_id: str
    details: str
    prev_hash: str
    hash: str

    def as_dict(self) -> dict[str, Any]:
        """The event as a JSON-ready dict."""
        return {
            "seq": self.seq,
            "at": self.at,
            "actor": self.actor,
            "action": self.action,
            "object_type": self.object_type,
            "object_id": self.object_id,
            "details": self.details,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of a verification: ``ok``, or the first broken event and why."""

    ok: bool
    count: int
    head_seq: int
    head_hash: str
    first_bad_seq: int | None = None
    reason: str = ""

    def message(self) -> str:
        """One line for people."""
        if self.ok:
            return f"audit chain OK: {self.count} events, head #{self.head_seq} {self.head_hash}"
        return f"audit chain BROKEN at event #{self.first_bad_seq}: {self.reason}"


def _lock_head(session: Session) -> Select[Any]:
    """The query that locks the head row until the transaction ends.

    Every audited writer waits for that lock, so a holder that stops between two statements
    (SIGSTOP, a paused VM, a hung thread) would stall them all. On PostgreSQL the same query
    sets ``idle_in_transaction_session_timeout`` for this transaction only (no extra round
    trip; ``cluster.audit_lock_idle_seconds``): the server ends such a session and the lock
    goes; the stopped writer's commit then fails, and its retry is fenced like any late write.
    """
    query = select(AuditHead).where(AuditHead.id == 1).with_for_update()
    if session.get_bind().dialect.name != "postgresql":
        return query
    from openlfr.config import get_settings

    idle_ms = int(get_settings().cluster.audit_lock_idle_seconds * 1000)
    return query.add_columns(func.set_config("idle_in_transaction_session_timeout", str(idle_ms), True))


def append(
    session: Session,
    *,
    actor: str,
    action: str,
    object_type: str,
    object_id: str | int,
    details: Mapping[str, Any] | None = None,
    at: datetime,
) -> AuditEvent:
    """Add one event to the chain inside the caller's transaction.

    The head row is locked (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite serialises
    writers itself), so concurrent writers cannot fork the chain.
    """
    head = session.execute(_lock_head(session)).scalar_one()
    seq = head.seq + 1
    at_text = iso_utc(at)
    details_text = canonical_json(dict(details or {}))
    digest = event_hash(seq, at_text, actor, action, object_type, str(object_id), details_text, head.hash)
    event = AuditEvent(
        seq=seq,
        at=at_text,
        actor=actor,
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        details=details_text,
        prev_hash=head.hash,
        hash=digest,
    )
    session.add(event)
    head.seq, head.hash = seq, digest
    session.info[AUDITED] = True
    session.flush()
    return event


def verify_records(records: Iterable[EventRecord], head_seq: int, head_hash: str) -> VerifyResult:
    """Recompute the chain over ``records`` (in stored order) and compare with the head.

    Detects a modified event (its hash no longer matches), a deleted or inserted event (a
    gap or repeat in the sequence numbers, or a ``prev_hash`` that does not link), reordered
    events, and a cut or extended tail (the last event is not the head).
    """
    prev_hash, expected_seq, count = GENESIS, 1, 0

    def broken(seq: int, reason: str) -> VerifyResult:
        return VerifyResult(False, count, head_seq, head_hash, seq, reason)

    for rec in records:
        if rec.seq != expected_seq:
            return broken(rec.seq, f"sequence number {rec.seq} where {expected_seq} was expected "
                                   "(event deleted, inserted or moved)")
        if rec.prev_hash != prev_hash:
            return broken(rec.seq, "previous-hash link does not match the event before it")
        digest = event_hash(rec.seq, rec.at, rec.actor, rec.action, rec.object_type, rec.object_id, rec.details,
                            rec.prev_hash)
        if digest != rec.hash:
            return broken(rec.seq, "event content does not match its hash (modified)")
        prev_hash, expected_seq, count = digest, expected_seq + 1, count + 1
    if count != head_seq or prev_hash != head_hash:
        return broken(count + 1 if count < head_seq else head_seq,
                      f"chain ends at event #{count} but the head records #{head_seq} (events cut off or added)")
    return VerifyResult(True, count, head_seq, head_hash)


#: an event's stored columns, in :class:`EventRecord`'s order
_EVENT_COLUMNS = (AuditEvent.seq, AuditEvent.at, AuditEvent.actor, AuditEvent.action, AuditEvent.object_type,
                  AuditEvent.object_id, AuditEvent.details, AuditEvent.prev_hash, AuditEvent.hash)


def load_records(session: Session) -> list[EventRecord]:
    """Every stored event, in sequence order, as plain records."""
    rows = session.execute(select(*_EVENT_COLUMNS).order_by(AuditEvent.seq))
    return [EventRecord(*row) for row in rows]


def head(session: Session) -> tuple[int, str]:
    """The head row as stored now: (newest sequence number, its hash). Read afresh, not from the
    session's identity map, which would give an earlier read's answer in a transaction others
    commit beside."""
    row = session.execute(select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == 1)).one_or_none()
    return (0, GENESIS) if row is None else (int(row[0]), str(row[1]))


def read_chain(session: Session) -> tuple[int, str, list[EventRecord]]:
    """(head seq, head hash, every event) as of one moment.

    Each statement of a READ COMMITTED transaction (PostgreSQL's default) sees the commits made
    before it, so the head and the events read by two statements around another writer's commit
    disagree, and a sound chain would look cut off or extended. So both are read by one
    statement (the events, then the head row, as one UNION ALL), which sees one snapshot on
    every database, however busy the writers. (Reading twice until the head stood still starved
    under steady appends.)
    """
    events = select(literal(0).label("part"), *_EVENT_COLUMNS)
    # the head row in the same columns: its seq and hash where an event has them, nothing between
    between = [literal(None, String)] * (len(_EVENT_COLUMNS) - 2)
    head_row = select(literal(1), AuditHead.seq, *between, AuditHead.hash).where(AuditHead.id == 1)
    both = union_all(events, head_row).subquery()
    head_seq, head_hash, records = 0, GENESIS, []
    for part, *row in session.execute(select(both).order_by(both.c.part, both.c.seq)):
        if part == 1:
            head_seq, head_hash = int(row[0]), str(row[-1])
        else:
            records.append(EventRecord(*row))
    return head_seq, head_hash, records


def verify(session: Session, anchors: Iterable[tuple[int, str]] = ()) -> VerifyResult:
    """Verify the whole stored chain against the stored head and any earlier heads
    (``anchors``: (seq, hash) pairs an auditor wrote down) that must still be in it."""
    head_seq, head_hash, records = read_chain(session)
    result = verify_records(records, head_seq, head_hash)
    return check_anchors(result, records, anchors) if result.ok else result


def check_anchors(result: VerifyResult, records: list[EventRecord], anchors: Iterable[tuple[int, str]]) -> VerifyResult:
    """Fail ``result`` if an earlier head is missing or has a different hash: the chain was
    rewritten from that point (every later hash recomputed) or cut back."""
    for seq, digest in anchors:
        if not 1 <= seq <= len(records) or records[seq - 1].hash != digest:
            return VerifyResult(False, result.count, result.head_seq, result.head_hash, seq,
                                f"event #{seq} no longer has the hash recorded earlier ({digest[:16]}...): "
                                "chain rewritten")
    return result
