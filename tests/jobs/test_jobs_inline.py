"""Batch jobs on SQLite: each kind runs inline at submission, through the worker's code path,
and gives what its synchronous door gives; the submitter's right is checked at submission
(refusals audited, nothing queued) and again when the job runs; a job ends once."""

from __future__ import annotations

import pytest
from govkit import Estate
from jobkit import NEW_MODEL, details, events, last_seq, new_model, template_models, watchlists
from sqlalchemy import select

from openlfr.audit import export_chain, verify_export
from openlfr.audit.export import read_export
from openlfr.errors import InputError
from openlfr.governance import Governance, PermissionDenied, Role
from openlfr.governance import watchlists as wl_service
from openlfr.jobs import EXPORT, RETEMPLATE, SEARCH, get_job, list_jobs, runner, submit
from openlfr.store.models import ApiToken


@pytest.fixture
def db_url(sqlite_url: str) -> str:
    """SQLite only: inline is SQLite's way (the queue is tested in test_jobs_postgres)."""
    return sqlite_url


def test_a_retemplate_job_runs_inline_and_does_what_the_synchronous_door_does(store: Governance,
                                                                              estate: Estate) -> None:
    by_door, by_job = watchlists(estate, [3, 3])
    store.template_fn = new_model  # the configured face model changed
    prepared = wl_service.prepare_retemplate(store, estate.admin, by_door)
    with store.transaction() as ctx:
        door = wl_service.retemplate(ctx, estate.admin, by_door, prepared)
    seq = last_seq(store)

    ref = submit(store, estate.admin, RETEMPLATE, {"watchlist": by_job})

    assert door == {"retemplated": 3, "unchanged": 0}
    assert (ref.status, ref.inline, ref.kind, ref.user, ref.attempts) == ("succeeded", True, RETEMPLATE, "admin", 1)
    assert ref.outcome == {"watchlist": by_job, **door} and ref.error is None
    assert ref.id == seq + 1  # the job is its audited submission
    assert template_models(store, by_door) == template_models(store, by_job) == [NEW_MODEL] * 3
    new = events(store, seq)
    assert [e.action for e in new] == ["job.submit", "job.start", *["image.retemplate"] * 3, "watchlist.retemplate",
                                       "job.end"]
    assert {e.actor for e in new} == {"admin"}  # the job acts as its submitter
    assert details(new[0]) == {"kind": RETEMPLATE, "params": {"watchlist": by_job}, "queue": "inline",
                               "queue_id": None, "user_id": details(new[0])["user_id"]}
    assert all(e.object_id == str(ref.id) for e in new if e.action.startswith("job."))
    assert details(new[-1])["outcome"] == ref.outcome
    with store.reading() as ctx:  # its run's own credential was revoked when it ended
        tokens = ctx.session.execute(select(ApiToken).where(ApiToken.kind == "job")).scalars().all()
        assert len(tokens) == 1 and tokens[0].revoked_at is not None

    # at least once: a job delivered again after its end does not run again ...
    again = runner.execute(store, ref.id, worker="test")
    assert again == ref and last_seq(store) == new[-1].seq
    # ... and a new job on the same watchlist re-makes nothing (idempotent), as the door would
    second = submit(store, estate.admin, RETEMPLATE, {"watchlist": by_job})
    assert second.outcome == {"watchlist": by_job, "retemplated": 0, "unchanged": 3}
    assert [r.id for r in list_jobs(store, estate.admin)] == [second.id, ref.id]
    assert get_job(store, estate.admin, ref.id) == ref


def test_an_export_job_writes_what_the_synchronous_export_writes(store: Governance, estate: Estate,
                                                                 tmp_path) -> None:  # noqa: ANN001
    ref = submit(store, estate.auditor, EXPORT, {"path": str(tmp_path / "by-job.jsonl")})
    with store.transaction() as ctx:  # the door: openlfr audit export, at the machine
        door = export_chain(ctx.session, tmp_path / "by-door.jsonl", now=ctx.now())

    assert ref.status == "succeeded" and ref.outcome is not None
    out = ref.outcome
    assert out["path"] == str(tmp_path / "by-job.jsonl") and out["chain_ok"] is True
    header, records = read_export(tmp_path / "by-job.jsonl")
    _, door_records = read_export(tmp_path / "by-door.jsonl")
    assert (out["events"], out["head_seq"]) == (len(records), header["head_seq"])
    # the same chain: the job's file is the door's up to the job's own later events
    assert [r.as_dict() for r in records] == [r.as_dict() for r in door_records[:len(records)]]
    assert {r.action for r in door_records[len(records):]} <= {"audit.export", "job.end"}
    assert verify_export(tmp_path / "by-job.jsonl").ok and door.ok
    assert (tmp_path / "by-job.jsonl").stat().st_mode & 0o077 == 0
    assert [e.actor for e in events(store, ref.id - 1, "audit.export")] == ["dpo"]

    # no path: a file of its own under the data directory
    default = submit(store, estate.auditor, EXPORT, {})
    from openlfr.store import data_dir

    assert default.outcome is not None and default.outcome["path"] == str(data_dir() / "exports"
                                                                           / f"audit-job-{default.id}.jsonl")
    assert verify_export(default.outcome["path"]).ok


@pytest.mark.parametrize("kind,params,who,match", [
    (RETEMPLATE, {"watchlist": "WL"}, "reviewer", "needs role operator_admin"),
    (RETEMPLATE, {"watchlist": "WL"}, "auditor", "needs role operator_admin"),
    (EXPORT, {}, "admin", "needs role auditor"),
    (EXPORT, {}, "reviewer", "needs role auditor"),
    (SEARCH, {"deployment": 1, "path": "CLIP"}, "supplier", "needs role"),
    (SEARCH, {"deployment": 1, "path": "CLIP"}, "auditor", "needs role"),
])
def test_the_wrong_role_is_refused_at_submission_and_audited(store: Governance, estate: Estate, tmp_path,  # noqa: ANN001
                                                             kind: str, params: dict, who: str, match: str) -> None:
    (wl,) = watchlists(estate, [1])
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"not looked at before the rule")
    params = {k: {"WL": wl, "CLIP": str(clip)}.get(v, v) if isinstance(v, str) else v for k, v in params.items()}
    seq = last_seq(store)
    with pytest.raises(PermissionDenied, match=match):
        submit(store, getattr(estate, who), kind, params)
    new = events(store, seq)
    assert len(new) == 1 and new[0].action.endswith(".refused") and not new[0].action.startswith("job.submit"), \
        [(e.action, e.details) for e in new]
    assert new[0].actor == {"supplier": "met", "auditor": "dpo"}.get(who, who)


def test_another_organisations_admin_may_not_retemplate_and_users_see_only_their_jobs(store: Governance,
                                                                                      estate: Estate) -> None:
    (wl,) = watchlists(estate, [1])
    from openlfr.governance import OrgKind

    other = estate.organisation("Other Estate", OrgKind.SITE_OPERATOR)
    other_admin = estate.user("other-operator", Role.OPERATOR_ADMIN, by=other)
    with pytest.raises(PermissionDenied, match="cannot re-template watchlist"):
        submit(store, other_admin, RETEMPLATE, {"watchlist": wl})
    mine = submit(store, estate.admin, RETEMPLATE, {"watchlist": wl})
    assert list_jobs(store, other_admin) == []
    with pytest.raises(PermissionDenied, match="another user's"):
        get_job(store, other_admin, mine.id)
    assert [r.id for r in list_jobs(store, estate.auditor)] == [mine.id]  # auditors see every job


def _submitted_not_run(store: Governance, actor, kind: str, params: dict, monkeypatch: pytest.MonkeyPatch) -> int:  # noqa: ANN001
    """A job submitted (audited) whose run has not come yet: what a queued job is."""
    with monkeypatch.context() as m:
        m.setattr(runner, "execute", lambda gov, job_id, **_: runner._ref(gov, job_id))
        return submit(store, actor, kind, params).id


def test_a_job_of_a_user_deactivated_before_it_runs_is_refused_and_audited(
        store: Governance, estate: Estate, monkeypatch: pytest.MonkeyPatch) -> None:
    from openlfr.governance import users

    (wl,) = watchlists(estate, [2])
    store.template_fn = new_model
    job = _submitted_not_run(store, estate.admin, RETEMPLATE, {"watchlist": wl}, monkeypatch)
    assert get_job(store, estate.auditor, job).status == "interrupted"  # inline, never run
    with store.transaction() as ctx:
        users.deactivate(ctx, estate.estate_admin, "admin", "left the company")
    seq = last_seq(store)

    with pytest.raises(runner.JobRefused, match="its user admin has been deactivated"):
        runner.execute(store, job, worker="jobs@test")

    new = events(store, seq)
    assert [(e.action, e.actor) for e in new] == [("job.run.refused", "jobs@test")]
    assert details(new[0])["user"] == "admin"
    assert template_models(store, wl) != [NEW_MODEL] * 2  # nothing ran
    ref = get_job(store, estate.auditor, job)
    assert ref.status == "refused" and "deactivated" in (ref.error or "")


def test_a_job_whose_user_lost_the_role_before_it_runs_is_refused(store: Governance, estate: Estate,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from openlfr.governance import users

    job = _submitted_not_run(store, estate.auditor, EXPORT, {}, monkeypatch)
    with store.transaction() as ctx:
        users.set_role(ctx, estate.oversight_admin, "dpo", Role.ADMIN)
    seq = last_seq(store)
    with pytest.raises(runner.JobRefused, match="needs role auditor"):
        runner.execute(store, job, worker="jobs@test")
    assert [e.action for e in events(store, seq)] == ["audit.export.refused", "job.run.refused"]


def test_an_export_job_overwrites_only_an_earlier_export(store: Governance, estate: Estate, tmp_path) -> None:  # noqa: ANN001
    key = tmp_path / "key"
    key.write_bytes(b"the store's own file")
    with pytest.raises(InputError, match="is not an audit export"):
        submit(store, estate.auditor, EXPORT, {"path": str(key)})
    with pytest.raises(InputError, match="is a folder"):
        submit(store, estate.auditor, EXPORT, {"path": str(tmp_path)})
    assert key.read_bytes() == b"the store's own file"
    first = submit(store, estate.auditor, EXPORT, {"path": str(tmp_path / "chain.jsonl")})
    again = submit(store, estate.auditor, EXPORT, {"path": str(tmp_path / "chain.jsonl")})  # an export: replaced
    assert first.status == again.status == "succeeded"
    assert again.outcome is not None and again.outcome["events"] > first.outcome["events"]  # type: ignore[index]
