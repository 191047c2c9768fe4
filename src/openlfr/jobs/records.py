"""A job as the audit log records it, and its status.

A job *is* its audited submission: its id is the sequence number of its ``job.submit`` event,
whose details hold the kind, the parameters and the submitting user's id (never a token or a
password). What happened to it is in later events of object ``job:<id>``: ``job.start`` (one
per attempt), then one of ``job.end`` (with the outcome), ``job.failed`` or ``job.run.refused``.
On PostgreSQL, procrastinate's own row (``procrastinate_jobs``) says whether a job not yet
started is queued or running; inline jobs (SQLite) have no queue.

Events of a job are looked up from its submission onwards (``seq > id``, a primary-key range),
so reading a recent job never scans the whole log.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from openlfr.store.models import AuditEvent

SUBMIT, START, END, FAILED, REFUSED = "job.submit", "job.start", "job.end", "job.failed", "job.run.refused"
TERMINAL = (END, FAILED, REFUSED)
OBJECT = "job"

# what a job's status may be
QUEUED, RUNNING, SUCCEEDED = "queued", "running", "succeeded"
FAILED_STATUS, REFUSED_STATUS, INTERRUPTED, CANCELLED = "failed", "refused", "interrupted", "cancelled"


@dataclass(frozen=True)
class Submitted:
    """A job's audited submission."""

    id: int  # the sequence number of its job.submit event
    kind: str
    user: str  # the submitting user's name (the event's actor)
    user_id: int
    params: dict[str, Any]
    inline: bool  # run at once in the submitting process (SQLite), not queued
    at: str
    queue_id: int | None = None  # procrastinate's job id (PostgreSQL)


@dataclass(frozen=True)
class JobRef:
    """What is known of a job: its audited submission, its attempts and how it ended."""

    id: int
    kind: str
    user: str
    status: str  # queued, running, succeeded, failed, refused, interrupted or cancelled
    params: dict[str, Any]
    inline: bool
    queue_id: int | None = None
    attempts: int = 0
    outcome: dict[str, Any] | None = None
    error: str | None = None
    submitted_at: str = ""
    started_at: str | None = None
    ended_at: str | None = None

    @property
    def done(self) -> bool:
        """Whether the job has ended (well or not)."""
        return self.status in (SUCCEEDED, FAILED_STATUS, REFUSED_STATUS, CANCELLED)

    def as_dict(self) -> dict[str, Any]:
        """The job as a JSON-ready dict."""
        return asdict(self)


def _details(event: AuditEvent) -> dict[str, Any]:
    try:
        found = json.loads(event.details or "{}")
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def submission(event: AuditEvent | None) -> Submitted | None:
    """The submission an audit event records (``None`` if it is not a ``job.submit``)."""
    if event is None or event.action != SUBMIT or event.object_type != OBJECT:
        return None
    d = _details(event)
    return Submitted(event.seq, str(d.get("kind", "")), event.actor, int(d.get("user_id", 0)),
                     dict(d.get("params") or {}), d.get("queue") == "inline", event.at,
                     d.get("queue_id") if isinstance(d.get("queue_id"), int) else None)


def submitted(session: Session, job_id: int) -> Submitted | None:
    """Job ``job_id``'s submission, or ``None`` when event #``job_id`` is not one."""
    return submission(session.get(AuditEvent, job_id))


def events_of(session: Session, job_ids: list[int]) -> dict[int, list[AuditEvent]]:
    """The events after their submission of each job, oldest first."""
    out: dict[int, list[AuditEvent]] = {i: [] for i in job_ids}
    if not job_ids:
        return out
    rows = session.execute(
        select(AuditEvent).where(AuditEvent.seq > min(job_ids), AuditEvent.object_type == OBJECT,
                                 AuditEvent.object_id.in_([str(i) for i in job_ids]),
                                 AuditEvent.action.in_((START, *TERMINAL)))
        .order_by(AuditEvent.seq)).scalars()
    for event in rows:
        out[int(event.object_id)].append(event)
    return out


def terminal(events: list[AuditEvent]) -> AuditEvent | None:
    """The last event that ended the job, if any."""
    ends = [e for e in events if e.action in TERMINAL]
    return ends[-1] if ends else None


def queue_states(session: Session, queue_ids: list[int]) -> dict[int, tuple[str, int]]:
    """procrastinate's (status, attempts) of each queued job (PostgreSQL; empty where there
    is no queue table yet)."""
    if not queue_ids or session.get_bind().dialect.name != "postgresql":
        return {}
    if session.execute(text("SELECT to_regclass('procrastinate_jobs')")).scalar() is None:
        return {}
    rows = session.execute(text("SELECT id, status::text, attempts FROM procrastinate_jobs WHERE id = ANY(:ids)"),
                           {"ids": list(queue_ids)})
    return {int(r[0]): (str(r[1]), int(r[2])) for r in rows}


def build(sub: Submitted, events: list[AuditEvent], queue: tuple[str, int] | None = None) -> JobRef:
    """The :class:`JobRef` of a submission, from its events and (PostgreSQL) its queue row."""
    starts = [e for e in events if e.action == START]
    queue_id = sub.queue_id
    for e in starts:  # (the worker records procrastinate's id at each start too)
        queue_id = _details(e).get("queue_id") or queue_id
    end = terminal(events)
    outcome = error = None
    if end is not None:
        d = _details(end)
        status = {END: SUCCEEDED, FAILED: FAILED_STATUS, REFUSED: REFUSED_STATUS}[end.action]
        outcome = d.get("outcome") if isinstance(d.get("outcome"), dict) else None
        error = d.get("error") or d.get("reason")
    elif queue is not None:
        state = queue[0]
        status = {"todo": QUEUED, "doing": RUNNING, "cancelled": CANCELLED, "aborted": CANCELLED}.get(state,
                                                                                                    FAILED_STATUS)
        if status == FAILED_STATUS:  # the worker gave up on it without our record (killed mid-way, say)
            error = f"the queue reports the job {state} with no outcome recorded"
    elif sub.inline:
        status = INTERRUPTED  # an inline job without an end: its process stopped
    else:
        status = RUNNING if starts else QUEUED
    return JobRef(sub.id, sub.kind, sub.user, status, sub.params, sub.inline, queue_id, len(starts), outcome,
                  error, sub.at, starts[0].at if starts else None, end.at if end is not None else None)


def load(session: Session, job_id: int) -> JobRef | None:
    """Job ``job_id`` as it stands, or ``None`` if there is no such job."""
    sub = submitted(session, job_id)
    if sub is None:
        return None
    states = queue_states(session, [sub.queue_id] if sub.queue_id is not None else [])
    return build(sub, events_of(session, [job_id])[job_id], states.get(sub.queue_id or -1))


def recent(session: Session, *, limit: int = 50, user: str | None = None) -> list[JobRef]:
    """The newest ``limit`` jobs (of ``user`` only, when given), newest first."""
    query = select(AuditEvent).where(AuditEvent.action == SUBMIT, AuditEvent.object_type == OBJECT)
    if user is not None:
        query = query.where(AuditEvent.actor == user)
    subs = [s for s in (submission(e) for e in session.execute(query.order_by(AuditEvent.seq.desc()).limit(limit))
                        .scalars()) if s is not None]
    events = events_of(session, [s.id for s in subs])
    states = queue_states(session, [s.queue_id for s in subs if s.queue_id is not None])
    return [build(s, events[s.id], states.get(s.queue_id or -1)) for s in subs]
