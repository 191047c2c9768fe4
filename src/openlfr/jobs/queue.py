"""The PostgreSQL queue: procrastinate's schema, deferring a job, and the worker.

A job is deferred on the submitting transaction's own connection (procrastinate's
``connection=``), so its queue row and its audited ``job.submit`` commit together or not at
all; the row holds only the job's id. openlfr applies procrastinate's schema itself, once, under
an advisory lock (:func:`ensure_schema`: at submission and when a worker starts).

A worker (``openlfr jobs worker``) runs procrastinate's worker on the queue ``openlfr``;
each job goes through :func:`openlfr.jobs.runner.execute`, the path an inline job takes. A
worker also puts back in the queue the jobs of workers that stopped sending heartbeats (killed,
or their machine lost): delivery is at least once, and every kind is idempotent.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from openlfr.errors import InputError
from openlfr.governance import Governance
from openlfr.governance.context import Ctx

log = logging.getLogger(__name__)

QUEUE = "openlfr"
TASK = "openlfr.jobs.run"
STALLED_AFTER_S = 30.0  # a worker silent this long (heartbeats every 10 s) is taken for dead
SWEEP_EVERY_S = 60.0  # how often a worker looks for such workers' jobs
_SCHEMA_LOCK = 0x6F6C6672_6A6F6273 & 0x7FFFFFFFFFFFFFFF  # "olfrjobs": serialises schema creation
_ready: set[str] = set()  # the databases whose queue schema this process has seen


def queued(engine: Engine) -> bool:
    """Whether jobs on this store are queued (PostgreSQL) rather than run inline (SQLite)."""
    return engine.dialect.name == "postgresql"


def libpq_url(url: str) -> str:
    """A SQLAlchemy PostgreSQL URL as libpq takes it (``postgresql://...``)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def ensure_schema(engine: Engine) -> bool:
    """Create procrastinate's tables and functions in the store's database if they are not
    there; whether they were created now. Safe to call from many processes at once."""
    from procrastinate.schema import SchemaManager

    key = engine.url.render_as_string(hide_password=True)
    if key in _ready:
        return False
    # (a plain catalog query: each statement sees what is committed, where to_regclass may answer
    # from this backend's cache of the names it looked up before the lock)
    exists = ("SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_tables WHERE tablename = 'procrastinate_jobs' "
              "AND schemaname = current_schema())")
    with engine.begin() as conn:
        created = False
        if not conn.execute(text(exists)).scalar():
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _SCHEMA_LOCK})
            if not conn.execute(text(exists)).scalar():  # another process may have made it meanwhile
                # (no parameters: psycopg sends the script as it is, many statements at once)
                conn.connection.driver_connection.execute(SchemaManager.get_schema())  # type: ignore[union-attr]
                created = True
    _ready.add(key)
    if created:
        log.info("created the job queue's tables (procrastinate) in the store's database")
    return created


def defer(ctx: Ctx, job_id: int, lock: str | None) -> int:
    """Queue job ``job_id`` in ``ctx``'s transaction; procrastinate's id of it."""
    import psycopg
    from procrastinate import App, PsycopgConnector

    raw = ctx.session.connection().connection.driver_connection
    if not isinstance(raw, psycopg.Connection):
        raise InputError("background jobs on PostgreSQL need the psycopg driver: a database URL of the form "
                         "postgresql+psycopg://...")
    # never opened: the row is written on the caller's connection, inside its transaction
    app = App(connector=PsycopgConnector())
    return app.configure_task(TASK, queue=QUEUE, lock=lock, connection=raw).defer(job=job_id)


def make_app(gov: Governance, url: str, *, concurrency: int = 1) -> Any:
    """A procrastinate app whose one task runs openlfr jobs on ``gov``, connected by ``url``."""
    from procrastinate import App, JobContext, PsycopgConnector

    from openlfr.jobs.runner import execute, worker_name

    # prepare_threshold=None: no server-side prepared statements, as for the store (PgBouncer)
    connector = PsycopgConnector(conninfo=libpq_url(url), min_size=1, max_size=concurrency + 3,
                                 kwargs={"prepare_threshold": None})
    app = App(connector=connector)
    name = worker_name()

    @app.task(name=TASK, queue=QUEUE, pass_context=True)
    def run(context: JobContext, job: int) -> None:
        execute(gov, int(job), worker=name, queue_id=context.job.id)

    return app


async def requeue_stalled(app: Any, seconds: float = STALLED_AFTER_S) -> list[int]:
    """Put back in the queue the running jobs of workers silent for ``seconds``; their ids."""
    done = []
    for job in await app.job_manager.get_stalled_jobs(queue=QUEUE, task_name=TASK, seconds_since_heartbeat=seconds):
        try:
            await app.job_manager.retry_job(job)
        except Exception as err:  # noqa: BLE001 - another worker put it back first
            log.info("stalled job %s not requeued: %s", job.id, str(err).splitlines()[0])
            continue
        log.warning("job %s (queue id) was running on a worker that stopped; queued again", job.id)
        done.append(int(job.id))
    return done


def run_worker(gov: Governance, *, concurrency: int = 1, until_idle: bool = False, url: str | None = None) -> None:
    """Run jobs from the queue until stopped (SIGINT/SIGTERM: the running jobs finish first),
    or with ``until_idle`` until the queue is empty. ``url``: the database to listen on (default
    the store's; a direct one when the store's goes through PgBouncer in transaction mode)."""
    if not queued(gov.engine):
        raise InputError("a job worker needs a PostgreSQL store: on SQLite every job runs inline when it is "
                         "submitted, and no worker is needed")
    if concurrency < 1:
        raise InputError("--concurrency must be at least 1")
    ensure_schema(gov.engine)
    app = make_app(gov, url or gov.engine.url.render_as_string(hide_password=False), concurrency=concurrency)
    asyncio.run(_serve(app, concurrency, until_idle))


async def _serve(app: Any, concurrency: int, until_idle: bool) -> None:
    from openlfr.jobs.runner import worker_name

    async with app.open_async():
        await requeue_stalled(app)
        sweeper = None if until_idle else asyncio.create_task(_sweep(app))
        try:
            await app.run_worker_async(queues=[QUEUE], concurrency=concurrency, wait=not until_idle,
                                       name=worker_name(), delete_jobs="never")
        finally:
            if sweeper is not None:
                sweeper.cancel()


async def _sweep(app: Any) -> None:
    while True:
        await asyncio.sleep(SWEEP_EVERY_S)
        try:
            await requeue_stalled(app)
        except Exception:  # noqa: BLE001 - the database restarting: try again next time
            log.exception("could not look for stalled jobs")
