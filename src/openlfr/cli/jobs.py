"""``openlfr jobs worker|list|show``: batch jobs (retrospective searches, watchlist
re-templates, audit exports), and :func:`announce`, how a door's ``--background`` reports the
job it submitted. :func:`register` adds the group to the main app."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from openlfr.cli.store import acting, open_store
from openlfr.cli.support import JsonOption, fail, print_json, print_rows, user_errors

jobs_app = typer.Typer(help="Batch jobs: retrospective searches, watchlist re-templates and audit exports run "
                            "in the background (PostgreSQL; inline on SQLite).", no_args_is_help=True)

#: the help of every door's --background option starts with this
BACKGROUND_HELP = ("Submit it as a batch job and return at once: on PostgreSQL a job worker ('openlfr jobs worker') "
                   "runs it later, as you; on SQLite there is no queue and it runs now, inline. "
                   "See it with 'openlfr jobs show ID'.")


@jobs_app.command("worker")
@user_errors
def jobs_worker(
    concurrency: Annotated[int, typer.Option(min=1, help="Jobs run at once by this worker.")] = 1,
    until_idle: Annotated[bool, typer.Option(
        "--until-idle", help="Stop once the queue is empty (a scheduled run) instead of waiting for more.")] = False,
) -> None:
    """Run queued jobs, each as the user who submitted it (PostgreSQL only).

    On SQLite jobs run when they are submitted, and no worker is needed. Run one or more
    workers on any machines that reach the store's database, its encrypted files and the
    recordings searched. Each job is checked again before it runs (its user still active,
    still allowed). Ctrl-C or SIGTERM stops the worker after its running jobs end.
    OPENLFR_LISTEN_URL, when set, is used to reach PostgreSQL directly (not via PgBouncer)."""
    from openlfr.config import get_settings
    from openlfr.jobs.queue import run_worker, queued
    from openlfr.jobs.runner import worker_name

    with open_store(with_templates=True) as gov:  # a re-template needs the face model
        if queued(gov.engine):
            typer.echo(f"{worker_name()}: running queued jobs, {concurrency} at a time"
                       + (" until the queue is empty" if until_idle else "; Ctrl-C stops"), err=True)
        run_worker(gov, concurrency=concurrency, until_idle=until_idle, url=get_settings().cluster.listen_url)


def _row(ref: Any) -> dict[str, Any]:
    return {"id": ref.id, "kind": ref.kind, "status": ref.status, "user": ref.user,
            "submitted": ref.submitted_at[:19], "queue_id": ref.queue_id if ref.queue_id is not None else "-",
            "attempts": ref.attempts}


@jobs_app.command("list")
@user_errors
def jobs_list(limit: Annotated[int, typer.Option(min=1, max=1000, help="How many, newest first.")] = 50,
              json_out: JsonOption = False) -> None:
    """Your jobs, newest first (an auditor sees everyone's).

    Status: queued, running, succeeded, failed, refused (not allowed when it came to run),
    interrupted (an inline job whose process stopped) or cancelled."""
    from openlfr.jobs import list_jobs

    with acting("job.list") as (gov, me):
        refs = list_jobs(gov, me, limit=limit)
    if json_out:
        print_json([r.as_dict() for r in refs])
    else:
        print_rows([_row(r) for r in refs], False)


@jobs_app.command("show")
@user_errors
def jobs_show(job_id: Annotated[int, typer.Argument(help="The job's id (what its submission printed).")],
              json_out: JsonOption = False) -> None:
    """One job: what it was asked, how it stands, its outcome or error.

    Your own jobs; an auditor may see anyone's."""
    from openlfr.jobs import get_job

    with acting("job.show") as (gov, me):
        ref = get_job(gov, me, job_id)
    if json_out:
        print_json(ref.as_dict())
        return
    print_rows([_row(ref)], False)
    typer.echo("params: " + "  ".join(f"{k}={v}" for k, v in ref.params.items()))
    for label, when in (("started", ref.started_at), ("ended", ref.ended_at)):
        if when:
            typer.echo(f"{label}: {when}")
    if ref.outcome is not None:
        typer.echo("outcome: " + "  ".join(f"{k}={v}" for k, v in ref.outcome.items()))
    if ref.error:
        typer.echo(f"error: {ref.error}")


def announce(ref: Any, json_out: bool = False) -> dict[str, Any] | None:
    """Report a job a door's ``--background`` submitted. Queued: one line (or the job as JSON),
    and ``None``. Run inline (SQLite): says so on stderr, then its outcome for the door to
    print as its synchronous twin would; a job that failed or was refused ends the command with
    its error (exit 2)."""
    if not ref.inline:
        if json_out:
            print_json({"job": ref.as_dict()}, line=True)
        else:
            typer.echo(f"job {ref.id} queued ({ref.kind}): a job worker runs it as {ref.user}; "
                       f"'openlfr jobs show {ref.id}' tells how it stands")
        return None
    typer.echo(f"this store is SQLite, which has no job queue: job {ref.id} ran now, inline ({ref.status})", err=True)
    if ref.status != "succeeded":
        fail(f"job {ref.id} {ref.status}: {ref.error}")
    return dict(ref.outcome or {})


def register(app: typer.Typer) -> None:
    """Add ``openlfr jobs`` to the main app."""
    app.add_typer(jobs_app, name="jobs")

