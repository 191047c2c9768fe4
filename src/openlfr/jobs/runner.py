"""Running one job: the one code path of a worker and of an inline job (SQLite).

A job acts for the user who submitted it, and only while that user may: when it runs, the
user must still exist and be active (else ``job.run.refused``, and nothing runs), and the
kind's rule is checked again with a credential of theirs (a role taken away since, a
deployment ended: ``job.run.refused`` too). The credential is a ``job`` token made for this
run, held in memory only (the queue keeps the job's id, never a token or a password) and
revoked when the run ends; deactivating the user revokes it at once, as it does their other
tokens, so a running job stops at its next check.

Every attempt is audited: ``job.start`` (by the user), then ``job.end`` with the outcome (by
the user, in the transaction that commits the work where the kind allows) or ``job.failed``
(by the worker, with the error and what was done). A job whose end is already recorded is
never run again: a re-delivery returns the recorded outcome.
"""

from __future__ import annotations

import logging
import os
import socket
from datetime import datetime, timedelta
from typing import Any

from openlfr.errors import NotFoundError, OpenLFRError
from openlfr.governance import Actor, Governance
from openlfr.governance.context import Ctx
from openlfr.jobs import records
from openlfr.jobs.kinds import Job, JobFailed, kind_of

log = logging.getLogger(__name__)

#: how long a run's own credential lives at most (it is revoked when the run ends)
TOKEN_LIFETIME = timedelta(hours=24)


class JobRefused(OpenLFRError):
    """A job refused when it came to run (its user deactivated, their role or the rule changed)."""


class _AlreadyEnded(Exception):
    """Another attempt recorded this job's end first (a job redelivered while still running)."""


def worker_name(inline: bool = False) -> str:
    """How a job runner is named in the audit log: ``jobs@<host>:<pid>`` (``jobs-inline@...``)."""
    return f"{'jobs-inline' if inline else 'jobs'}@{socket.gethostname()}:{os.getpid()}"


def execute(gov: Governance, job_id: int, *, worker: str, queue_id: int | None = None) -> records.JobRef:
    """Run job ``job_id`` once, as its submitter, and return how it stands afterwards.

    Raises :class:`JobRefused` (refused when it came to run), :class:`~openlfr.jobs.kinds.JobFailed`
    or another error of the kind's (it failed); each audited before it is raised."""
    with gov.reading() as ctx:
        sub = records.submitted(ctx.session, job_id)
        if sub is None:
            raise NotFoundError(f"job {job_id} does not exist (audit event #{job_id} is no job.submit)")
        events = records.events_of(ctx.session, [job_id])[job_id]
    if records.terminal(events) is not None:
        log.info("job %s has already ended; not run again", job_id)
        return _ref(gov, job_id)
    kind = kind_of(sub.kind)
    starts = [e for e in events if e.action == records.START]
    token = _credential(gov, sub, worker)
    actor = Actor(token, sub.user)
    try:
        try:
            with gov.transaction() as ctx:
                kind.check(ctx, actor, sub.params)
                ctx.audit(actor, records.START, records.OBJECT, job_id, kind=sub.kind, attempt=len(starts) + 1,
                          worker=worker, queue_id=queue_id)
        except OpenLFRError as err:
            _audit(gov, worker, records.REFUSED, job_id, user=sub.user, kind=sub.kind, reason=str(err))
            raise JobRefused(f"job {job_id} refused when it came to run: {err}") from err
        job = Job(job_id, sub.kind, sub.params, sub.user, len(starts) + 1,
                  datetime.fromisoformat(starts[0].at) if starts else None, worker)

        def finish(ctx: Ctx, outcome: dict[str, Any]) -> None:
            ctx.audit(actor, records.END, records.OBJECT, job_id, kind=sub.kind, outcome=outcome)
            # appended under the audit head's lock, so an attempt that ended first is seen here
            if any(e.seq != _head(ctx) for e in records.events_of(ctx.session, [job_id])[job_id]
                   if e.action in records.TERMINAL):
                raise _AlreadyEnded

        try:
            kind.run(gov, actor, job, finish)
        except _AlreadyEnded:
            log.warning("job %s: another attempt ended it first; this attempt's work is rolled back", job_id)
        except JobFailed as err:
            _audit(gov, worker, records.FAILED, job_id, user=sub.user, kind=sub.kind, error=str(err),
                   outcome=err.outcome)
            raise
        except Exception as err:
            _audit(gov, worker, records.FAILED, job_id, user=sub.user, kind=sub.kind,
                   error=(str(err) if isinstance(err, OpenLFRError) else f"{type(err).__name__}: {err}")[:2000])
            raise
    finally:
        _revoke(gov, token)
    return _ref(gov, job_id)


def _head(ctx: Ctx) -> int:
    from openlfr.audit.chain import head

    return head(ctx.session)[0]


def _credential(gov: Governance, sub: records.Submitted, worker: str) -> str:
    """A credential of the job's user for this run, or :class:`JobRefused` (audited) when the
    user is gone or deactivated."""
    from openlfr.governance import credentials
    from openlfr.store.models import User

    refusal = token = None
    with gov.transaction() as ctx:
        user = ctx.session.get(User, sub.user_id)
        if user is None or user.name != sub.user:
            refusal = f"its user {sub.user} no longer exists"
        elif not user.active:
            refusal = f"its user {sub.user} has been deactivated"
        else:
            token, _ = credentials.new_token(ctx.session, user, "job", TOKEN_LIFETIME, ctx.now())
        if refusal is not None:
            ctx.audit(worker, records.REFUSED, records.OBJECT, sub.id, user=sub.user, kind=sub.kind, reason=refusal)
    if token is None:
        raise JobRefused(f"job {sub.id} refused when it came to run: {refusal}")
    return token


def _revoke(gov: Governance, token: str) -> None:
    """End the run's credential (best effort: it expires anyway, and was never written down)."""
    from openlfr.governance.credentials import live_token

    try:
        with gov.transaction() as ctx:
            found = live_token(ctx.session, token, ctx.now())
            if found is not None:
                found[0].revoked_at = ctx.now()
    except Exception:  # noqa: BLE001 - a failure here must not hide the job's own result
        log.exception("could not revoke a job's credential (it expires in %s)", TOKEN_LIFETIME)


def _audit(gov: Governance, worker: str, action: str, job_id: int, **details: Any) -> None:
    """An event of the job by its runner, in a transaction of its own."""
    with gov.transaction() as ctx:
        ctx.audit(worker, action, records.OBJECT, job_id, **details)


def _ref(gov: Governance, job_id: int) -> records.JobRef:
    with gov.reading() as ctx:
        ref = records.load(ctx.session, job_id)
    assert ref is not None
    return ref
