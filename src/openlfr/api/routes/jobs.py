"""Batch jobs over HTTP (:mod:`openlfr.jobs`): the background twins of the synchronous routes
``POST /api/watchlists/{id}/retemplate`` and ``GET /api/audit/export``, answered ``202`` with
the job, and a job's status.

The caller's right is checked at submission by the synchronous route's rule; the job then runs
as the caller, on a job worker (PostgreSQL), or at once, inline, before the answer (SQLite).
(Retrospective searches have no HTTP door: a recording is searched from the machine that holds
it, ``openlfr scan [--background]``.)
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import Field

from openlfr.api import defs
from openlfr.api.auth import Principal, require
from openlfr.governance import Role

router = APIRouter(prefix="/api")


class JobOut(defs._Out):
    """A batch job: what was asked, how it stands, and (once ended) its outcome or error."""

    id: int = Field(description="the job's id: the sequence number of its audited submission (job.submit)")
    kind: Literal["retrospective-search", "watchlist-retemplate", "audit-export"]
    user: str = Field(description="who submitted it; it runs as them")
    status: Literal["queued", "running", "succeeded", "failed", "refused", "interrupted", "cancelled"] = Field(
        description="refused: not allowed any more when it came to run (its user deactivated, say)")
    params: dict[str, Any]
    inline: bool = Field(description="true on SQLite: run at submission, before this answer (no queue)")
    queue_id: int | None = Field(description="the queue's (procrastinate's) id of it, on PostgreSQL")
    attempts: int = Field(description="times it started (a worker lost mid-job has it run again)")
    outcome: dict[str, Any] | None = Field(description="what it did, once it succeeded (or as far as it got)")
    error: str | None
    submitted_at: str
    started_at: str | None
    ended_at: str | None


@router.post("/watchlists/{watchlist_id}/retemplate-job", response_model=JobOut, status_code=202,
             tags=["watchlists", "jobs"])
def retemplate_job(watchlist_id: defs.Id, request: Request,
                   me: Principal = Depends(require(Role.OPERATOR_ADMIN))) -> JobOut:
    """``POST /api/watchlists/{id}/retemplate`` as a batch job: the templates are re-made by a job
    worker with its configured face model (on SQLite: now, before this answer)."""
    from openlfr.jobs import RETEMPLATE, submit

    return JobOut(**submit(request.app.state.gov, me.actor, RETEMPLATE, {"watchlist": watchlist_id}).as_dict())


@router.post("/audit/export-job", response_model=JobOut, status_code=202, tags=["audit", "jobs"])
def export_job(request: Request, me: Principal = Depends(require(Role.AUDITOR))) -> JobOut:
    """``GET /api/audit/export`` as a batch job: the chain is written to
    ``<data dir>/exports/audit-job-<id>.jsonl`` on the machine that runs it (its outcome names
    the file and the host)."""
    from openlfr.jobs import EXPORT, submit

    return JobOut(**submit(request.app.state.gov, me.actor, EXPORT, {}).as_dict())


@router.get("/jobs/{job_id}", response_model=JobOut, tags=["jobs"])
def show_job(job_id: defs.Id, request: Request, me: Principal = Depends(require())) -> JobOut:
    """A job, to the user who submitted it or an auditor."""
    from openlfr.jobs import get_job

    return JobOut(**get_job(request.app.state.gov, me.actor, job_id).as_dict())
