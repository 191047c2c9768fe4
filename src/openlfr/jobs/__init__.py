"""Batch jobs: retrospective searches, watchlist re-templates and audit exports, in the background.

One small API: :func:`submit` ``(gov, actor, kind, params) -> JobRef``. The submitting user's
right to the job is checked at once, by the rule of the kind's synchronous door and with their
credential (refusals audited as at that door); the submission is audited (``job.submit``),
and the job's id is that event's sequence number.

- On **PostgreSQL** the job is queued in procrastinate, in the submitting transaction, and a
  worker (``openlfr jobs worker``) runs it later, for the submitting user.
- On **SQLite** it runs inline at once, through the same code path, and the returned
  :class:`JobRef` holds its outcome.

:func:`get_job` and :func:`list_jobs` say how jobs stand. See ``docs/jobs.md``.
"""

from __future__ import annotations

from typing import Any

from openlfr.errors import NotFoundError, OpenLFRError
from openlfr.governance import Actor, Governance, PermissionDenied
from openlfr.jobs import records
from openlfr.jobs.kinds import EXPORT, KINDS, RETEMPLATE, SEARCH, JobFailed, kind_of
from openlfr.jobs.records import JobRef
from openlfr.jobs.runner import JobRefused


def submit(gov: Governance, actor: Actor, kind: str, params: dict[str, Any]) -> JobRef:
    """Submit a job of ``kind`` (:data:`SEARCH`, :data:`RETEMPLATE` or :data:`EXPORT`) as the
    bearer of ``actor``. Parameters: a search ``{"deployment", "path", "camera"?, "fps"?}``; a
    re-template ``{"watchlist"}``; an export ``{"path"?}`` (default
    ``<data dir>/exports/audit-job-<id>.jsonl`` on the machine that runs it).

    A refusal raises at once (:class:`~openlfr.governance.PermissionDenied`,
    :class:`~openlfr.errors.RuleViolation`, :class:`~openlfr.errors.NotFoundError`...) and is
    audited. Otherwise: a queued job (PostgreSQL), or on SQLite the job run inline and ended
    (its ``status`` and ``outcome`` or ``error`` say how)."""
    from openlfr.audit.chain import head
    from openlfr.jobs import queue
    from openlfr.jobs.runner import execute, worker_name
    from openlfr.store.models import AuditHead

    spec = kind_of(kind)
    prepared = spec.prepare(dict(params))  # (a recording's digest: before the transaction, as at the door)
    in_queue = queue.queued(gov.engine)
    if in_queue:
        queue.ensure_schema(gov.engine)
    with gov.transaction() as ctx:
        user = ctx.require(actor, None, "job.submit", "job", kind)
        checked = spec.check(ctx, actor, prepared)
        # the job's id is the sequence number its job.submit event gets: hold the audit head meanwhile
        job_id = ctx.session.get(AuditHead, 1, with_for_update=True).seq + 1  # type: ignore[union-attr]
        queue_id = queue.defer(ctx, job_id, spec.lock(checked)) if in_queue else None
        ctx.audit(actor, records.SUBMIT, records.OBJECT, job_id, kind=kind, params=checked, user_id=user.id,
                  queue="procrastinate" if in_queue else "inline", queue_id=queue_id)
        if head(ctx.session)[0] != job_id:  # (nothing else is audited in between: the head is held)
            raise RuntimeError(f"job {job_id}'s submission was audited as event #{head(ctx.session)[0]}")
    if in_queue:
        return JobRef(job_id, kind, user.name, records.QUEUED, checked, False, queue_id)
    try:
        return execute(gov, job_id, worker=worker_name(inline=True))
    except OpenLFRError:  # refused or failed as it ran: audited, and told by the returned job
        return get_job(gov, actor, job_id)


def get_job(gov: Governance, actor: Actor, job_id: int) -> JobRef:
    """Job ``job_id`` as it stands: for the user who submitted it, or an auditor."""
    from openlfr.governance.audit_log import READERS
    from openlfr.governance.schemas import Role

    with gov.reading() as ctx:
        me = ctx.require(actor, None, "job.show", "job", job_id)
        ref = records.load(ctx.session, job_id)
        if ref is None:
            raise NotFoundError(f"job {job_id} does not exist")
        if ref.user != me.name and Role(me.role) not in READERS:
            raise PermissionDenied(f"job {job_id} is another user's: only they and auditors may see it")
        return ref


def list_jobs(gov: Governance, actor: Actor, *, limit: int = 50) -> list[JobRef]:
    """The newest ``limit`` jobs the actor submitted (an auditor: everyone's), newest first."""
    from openlfr.governance.audit_log import READERS
    from openlfr.governance.schemas import Role

    with gov.reading() as ctx:
        me = ctx.require(actor, None, "job.list", "job", "-")
        return records.recent(ctx.session, limit=limit, user=None if Role(me.role) in READERS else me.name)


__all__ = ["EXPORT", "KINDS", "RETEMPLATE", "SEARCH", "JobFailed", "JobRef", "JobRefused", "get_job", "list_jobs",
           "submit"]
