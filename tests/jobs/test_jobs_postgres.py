"""Batch jobs on PostgreSQL: submitted jobs wait in procrastinate's queue (deferred in the
submitting transaction, beside their audited ``job.submit``) until a real worker process
(``python -m openlfr.cli jobs worker``) runs them as their submitters; a job whose user was
deactivated meanwhile is refused and audited; the wrong role is refused at submission, at the
Python door and the command line; a job left running by a dead worker is run again."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from govkit import Estate
from jobkit import details, events, last_seq, template_models, watchlists
from sqlalchemy import text
from typer.testing import CliRunner

from openlfr.audit import verify_export
from openlfr.cli import app
from openlfr.governance import Governance, PermissionDenied, Role, users
from openlfr.jobs import EXPORT, RETEMPLATE, get_job, submit

pytestmark = [pytest.mark.postgres, pytest.mark.parametrize("db_url", ["postgres"], indirect=True)]

REFERENCES = ("lin-manuel-miranda.png", "alex-lacamoire.png")


@pytest.fixture
def faces(data_dir: Path) -> list[bytes]:
    """Real enrolment photos: a worker re-templates them with the real face model."""
    folder = data_dir / "video" / "references"
    if not all((folder / name).is_file() for name in REFERENCES):
        pytest.skip(f"the reference photos {REFERENCES} are not in {folder}")
    return [(folder / name).read_bytes() for name in REFERENCES]


def worker(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    """A real job worker in its own process, on the same store (database, data directory, keys),
    until the queue is empty."""
    return subprocess.run([sys.executable, "-m", "openlfr.cli", "jobs", "worker", "--until-idle", *args],
                          env=dict(os.environ), capture_output=True, text=True, timeout=timeout)


def queue_rows(store: Governance) -> dict[int, tuple[str, dict]]:
    with store.engine.connect() as conn:
        return {r[0]: (r[1], r[2]) for r in conn.execute(text("SELECT id, status::text, args FROM procrastinate_jobs"))}


def test_queued_jobs_run_on_a_worker_as_their_submitters(store: Governance, estate: Estate, faces: list[bytes],
                                                         tmp_path: Path) -> None:
    (wl,) = watchlists(estate, [2], faces)  # templated by the fake model: the worker's real one differs
    leaver = estate.user("dpo2", Role.AUDITOR, org="oversight")
    seq = last_seq(store)

    # the wrong role is refused at once, at every door, and nothing is queued
    with pytest.raises(PermissionDenied, match="needs role operator_admin"):
        submit(store, estate.reviewer, RETEMPLATE, {"watchlist": wl})
    cli = CliRunner().invoke(app, ["deployment", "watchlist-retemplate", str(wl), "--background"],
                             env={"OPENLFR_TOKEN": estate.auditor.token})
    assert cli.exit_code == 2 and "needs role operator_admin" in cli.output, cli.output
    with pytest.raises(PermissionDenied, match="needs role auditor"):
        submit(store, estate.admin, EXPORT, {})
    assert [e.action for e in events(store, seq)] == ["watchlist.retemplate.refused"] * 2 + ["audit.export.refused"]
    assert queue_rows(store) == {}  # (the queue's tables exist: made at the first submission)

    retemplate = submit(store, estate.admin, RETEMPLATE, {"watchlist": wl})
    export = submit(store, estate.auditor, EXPORT, {"path": str(tmp_path / "chain.jsonl")})
    cli = CliRunner().invoke(app, ["audit", "export", str(tmp_path / "by-cli.jsonl"), "--background"],
                             env={"OPENLFR_TOKEN": estate.auditor.token})
    assert cli.exit_code == 0 and cli.output.startswith("job ") and " queued (audit-export)" in cli.output, cli.output
    by_cli = int(cli.output.split()[1])
    doomed = submit(store, leaver, EXPORT, {"path": str(tmp_path / "never.jsonl")})
    with store.transaction() as ctx:  # deactivated while the job waits
        users.deactivate(ctx, estate.oversight_admin, "dpo2", "left")

    jobs = [retemplate, export, doomed]
    assert all(j.status == "queued" and not j.inline and j.queue_id for j in jobs)
    rows = queue_rows(store)
    assert {q: args for q, (_, args) in rows.items()} == {j.queue_id: {"job": j.id} for j in
                                                          [*jobs, get_job(store, estate.auditor, by_cli)]}
    assert get_job(store, estate.admin, retemplate.id).status == "queued"
    assert template_models(store, wl) == ["fake-test-model:00000000"] * 2  # nothing ran yet
    seq = last_seq(store)

    ran = worker("--concurrency", "2")
    assert ran.returncode == 0, ran.stderr[-3000:]

    done = get_job(store, estate.admin, retemplate.id)
    assert (done.status, done.attempts, done.queue_id) == ("succeeded", 1, retemplate.queue_id), done
    assert done.outcome == {"watchlist": wl, "retemplated": 2, "unchanged": 0}
    assert len(set(template_models(store, wl))) == 1 and template_models(store, wl)[0].startswith("sface")
    for job, path in ((export, tmp_path / "chain.jsonl"), (get_job(store, estate.auditor, by_cli),
                                                          tmp_path / "by-cli.jsonl")):
        ended = get_job(store, estate.auditor, job.id)
        assert ended.status == "succeeded" and ended.outcome is not None and ended.outcome["path"] == str(path)
        assert verify_export(path).ok and ended.outcome["chain_ok"]
    refused = get_job(store, estate.auditor, doomed.id)
    assert refused.status == "refused" and "dpo2 has been deactivated" in (refused.error or "")
    assert not (tmp_path / "never.jsonl").exists()
    statuses = {q: s for q, (s, _) in queue_rows(store).items()}
    assert statuses[retemplate.queue_id] == statuses[export.queue_id] == "succeeded"
    assert statuses[doomed.queue_id] == "failed"

    # the audit log: each job started and ended as its submitter; the refusal by the worker
    new = events(store, seq)
    by_job = {}
    for e in new:
        if e.object_type == "job":
            by_job.setdefault(int(e.object_id), []).append((e.action, e.actor))
    assert by_job[retemplate.id] == [("job.start", "admin"), ("job.end", "admin")]
    assert by_job[export.id] == by_job[by_cli] == [("job.start", "dpo"), ("job.end", "dpo")]
    assert [a for a, _ in by_job[doomed.id]] == ["job.run.refused"]
    assert by_job[doomed.id][0][1].startswith("jobs@")
    assert [e.actor for e in new if e.action == "image.retemplate"] == ["admin", "admin"]
    start = next(e for e in new if e.action == "job.start" and e.object_id == str(retemplate.id))
    assert details(start)["queue_id"] == retemplate.queue_id and details(start)["worker"].startswith("jobs@")

    # a second worker finds nothing to do: every job ran once
    seq = last_seq(store)
    assert worker().returncode == 0 and events(store, seq) == []


def test_a_job_left_running_by_a_dead_worker_runs_again_once(store: Governance, estate: Estate,
                                                            tmp_path: Path) -> None:
    job = submit(store, estate.auditor, EXPORT, {"path": str(tmp_path / "chain.jsonl")})
    with store.engine.begin() as conn:  # a worker took it, then died: no heartbeat for an hour
        dead = conn.execute(text("INSERT INTO procrastinate_workers (last_heartbeat) "
                                 "VALUES (NOW() - INTERVAL '1 hour') RETURNING id")).scalar_one()
        conn.execute(text("UPDATE procrastinate_jobs SET status = 'doing', worker_id = :w WHERE id = :id"),
                     {"w": dead, "id": job.queue_id})
    with store.transaction() as ctx:  # ... after its attempt began
        ctx.audit(estate.auditor, "job.start", "job", job.id, kind=EXPORT, attempt=1, worker="jobs@dead:1",
                  queue_id=job.queue_id)
    assert get_job(store, estate.auditor, job.id).status == "running"

    ran = worker()
    assert ran.returncode == 0, ran.stderr[-3000:]
    again = get_job(store, estate.auditor, job.id)
    assert (again.status, again.attempts) == ("succeeded", 2) and verify_export(tmp_path / "chain.jsonl").ok
    assert [e.action for e in events(store, job.id) if e.object_id == str(job.id)] == ["job.start", "job.start",
                                                                                       "job.end"]
    assert queue_rows(store)[job.queue_id][0] == "succeeded"


def test_a_waiting_worker_runs_a_job_submitted_later_and_stops_on_sigterm(store: Governance, estate: Estate,
                                                                          tmp_path: Path) -> None:
    import signal
    import time

    proc = subprocess.Popen([sys.executable, "-m", "openlfr.cli", "jobs", "worker"], env=dict(os.environ),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while "running queued jobs" not in (proc.stderr.readline() if proc.poll() is None else "x"):
            assert proc.poll() is None and time.monotonic() < deadline, "the worker did not start"
        job = submit(store, estate.auditor, EXPORT, {"path": str(tmp_path / "chain.jsonl")})
        while get_job(store, estate.auditor, job.id).status in ("queued", "running"):
            assert time.monotonic() < deadline, "the worker did not run the job"
            time.sleep(0.2)
        assert get_job(store, estate.auditor, job.id).status == "succeeded"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_the_queue_tables_are_made_once_by_many_processes_at_once(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from openlfr.jobs import queue
    from openlfr.store import make_engine

    class Forgetful(set):
        def __contains__(self, _: object) -> bool:  # as if each call were a process of its own
            return False

    monkeypatch.setattr(queue, "_ready", Forgetful())
    engines = [make_engine(db_url) for _ in range(4)]
    try:
        with ThreadPoolExecutor(4) as pool:
            made = list(pool.map(queue.ensure_schema, engines))
        assert sorted(made) == [False, False, False, True]
        assert queue.ensure_schema(engines[0]) is False
    finally:
        for engine in engines:
            engine.dispose()
