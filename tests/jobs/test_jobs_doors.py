"""The doors of batch jobs on SQLite: ``--background`` on ``openlfr scan``, ``deployment
watchlist-retemplate`` and ``audit export``, ``openlfr jobs``, and the Python door for a
search. On SQLite a job runs inline, and each door says so and prints what its synchronous
twin prints; the wrong role is refused at submission at every door."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from govkit import Estate
from jobkit import (NEW_MODEL, as_configured_model, events, faceless_clip, last_seq, new_model, retrospective,
                    template_models, watchlists)
from typer.testing import CliRunner

from openlfr.cli import app
from openlfr.cli import store as cli_store
from openlfr.governance import Governance, PermissionDenied
from openlfr.jobs import SEARCH, get_job, submit
from openlfr.scan import search_recording

runner = CliRunner()


@pytest.fixture
def db_url(sqlite_url: str) -> str:
    return sqlite_url


def openlfr(estate_actor, *args: str):  # noqa: ANN001, ANN201
    """Run ``openlfr ARGS`` in-process as the bearer of ``estate_actor`` (``None``: nobody)."""
    env = {"OPENLFR_TOKEN": estate_actor.token} if estate_actor is not None else {}
    return runner.invoke(app, list(args), env=env)


def refused(result, match: str) -> None:  # noqa: ANN001
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines()[-1].startswith("error: ") and match in result.output, result.output


def test_a_search_job_runs_inline_and_finds_what_the_search_finds(store: Governance, estate: Estate,
                                                                  tmp_path: Path) -> None:
    store.template_fn = as_configured_model
    (wl,) = watchlists(estate, [1])
    dep, cam = retrospective(estate, wl)
    clip = faceless_clip(tmp_path / "clip.mp4")
    door = search_recording(store, estate.reviewer, dep, clip)
    seq = last_seq(store)

    ref = submit(store, estate.reviewer, SEARCH, {"deployment": dep, "path": str(clip)})

    assert ref.status == "succeeded" and ref.params["camera"] == cam and ref.params["size"] == clip.stat().st_size
    assert ref.outcome == {"deployment": dep, "camera": cam, "sha256": door.grant.sha256, "frames": door.frames,
                           "frames_analysed": door.analysed, "tracks": door.tracks, "people_passes": door.passes,
                           "alerts": [], "stopped": ""}
    assert door.analysed > 5
    actions = [(e.action, e.actor) for e in events(store, seq)]
    assert actions[:3] == [("job.submit", "reviewer"), ("job.start", "reviewer"), ("search.start", "reviewer")]
    assert ("search.end", "search:reviewer") in actions and actions[-1] == ("job.end", "reviewer")

    # the recording is named by its digest at submission: a changed file is not searched
    clip.write_bytes(clip.read_bytes() + b"\0")
    changed = submit(store, estate.reviewer, SEARCH, {"deployment": dep, "path": str(clip)})
    moved = submit(store, estate.reviewer, SEARCH, {"deployment": dep, "path": str(faceless_clip(tmp_path / "b.mp4"))})
    assert changed.status == "succeeded" and moved.status == "succeeded"  # a new digest each: a new search
    with pytest.raises(PermissionDenied, match="needs role"):
        submit(store, estate.supplier, SEARCH, {"deployment": dep, "path": str(clip)})


def test_the_background_doors_of_the_command_line(store: Governance, estate: Estate, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    store.template_fn = as_configured_model
    by_door, by_job, searched = watchlists(estate, [2, 2, 1])
    dep, _ = retrospective(estate, searched)
    clip = faceless_clip(tmp_path / "clip.mp4")
    monkeypatch.setattr(cli_store, "_template_fn", lambda: new_model)  # the configured face model changed

    # the wrong role: refused at submission, at every door, nothing submitted
    seq = last_seq(store)
    refused(openlfr(estate.reviewer, "deployment", "watchlist-retemplate", str(by_job), "--background"),
            "needs role operator_admin")
    refused(openlfr(estate.admin, "audit", "export", str(tmp_path / "x.jsonl"), "--background"), "needs role auditor")
    refused(openlfr(None, "audit", "export", str(tmp_path / "x.jsonl"), "--background"), "log in first")
    refused(openlfr(estate.supplier, "scan", str(clip), "--deployment", str(dep), "--background"), "needs role")
    assert [e.action for e in events(store, seq)] == ["watchlist.retemplate.refused", "audit.export.refused",
                                                      "audit.export.refused", "search.start.refused"]
    assert not (tmp_path / "x.jsonl").exists()

    # allowed: run inline, said so, and reported as the synchronous command reports
    door = openlfr(estate.admin, "deployment", "watchlist-retemplate", str(by_door))
    job = openlfr(estate.admin, "deployment", "watchlist-retemplate", str(by_job), "--background")
    assert door.exit_code == job.exit_code == 0, job.output
    assert "ran now, inline (succeeded)" in job.stderr
    assert job.stdout.replace(f"watchlist {by_job}:", "W") == door.stdout.replace(f"watchlist {by_door}:", "W")
    assert "2 template(s) re-made, 0 already of this model" in job.stdout
    assert template_models(store, by_job) == [NEW_MODEL] * 2

    export = openlfr(estate.auditor, "audit", "export", str(tmp_path / "chain.jsonl"), "--background")
    assert export.exit_code == 0 and f"events written to {tmp_path / 'chain.jsonl'}; head #" in export.stdout
    assert openlfr(None, "audit", "verify", "--export", str(tmp_path / "chain.jsonl")).exit_code == 0

    scan = openlfr(estate.reviewer, "scan", str(clip), "--deployment", str(dep), "--background", "--json")
    assert scan.exit_code == 0, scan.output
    summary = json.loads(scan.stdout.splitlines()[-1])["summary"]
    assert summary["deployment"] == dep and summary["alerts"] == 0 and summary["frames_analysed"] > 5

    # openlfr jobs: each user's own; an auditor's view of all; no worker on SQLite
    listed = json.loads(openlfr(estate.admin, "jobs", "list", "--json").stdout)
    assert [(j["kind"], j["status"], j["inline"]) for j in listed] == [("watchlist-retemplate", "succeeded", True)]
    shown = openlfr(estate.admin, "jobs", "show", str(listed[0]["id"]))
    assert shown.exit_code == 0 and f"watchlist={by_job}" in shown.stdout and "retemplated=2" in shown.stdout
    assert len(json.loads(openlfr(estate.auditor, "jobs", "list", "--json").stdout)) == 3
    refused(openlfr(estate.reviewer, "jobs", "show", str(listed[0]["id"])), "another user's")
    refused(openlfr(None, "jobs", "list"), "log in first")
    refused(openlfr(None, "jobs", "worker"), "needs a PostgreSQL store")


def test_the_background_routes_of_the_api(store: Governance, estate: Estate) -> None:
    """202 with the job (run inline on SQLite, before the answer); the route's role, then the
    synchronous route's finer rule, refuse the wrong caller; a job is shown to its submitter
    and auditors only."""
    from fastapi.testclient import TestClient

    from openlfr.api import create_app

    (wl,) = watchlists(estate, [2])
    store.template_fn = new_model

    def bearer(actor) -> dict[str, str]:  # noqa: ANN001
        return {"Authorization": f"Bearer {actor.token}"}

    with TestClient(create_app(store)) as client:
        seq = last_seq(store)
        assert client.post(f"/api/watchlists/{wl}/retemplate-job", headers=bearer(estate.reviewer)).status_code == 403
        assert client.post("/api/audit/export-job", headers=bearer(estate.admin)).status_code == 403
        assert [e.action for e in events(store, seq)] == ["http.refused", "http.refused"]
        r = client.post(f"/api/watchlists/{wl}/retemplate-job", headers=bearer(estate.admin))
        assert r.status_code == 202, r.text
        job = r.json()
        assert (job["kind"], job["status"], job["inline"], job["user"]) == ("watchlist-retemplate", "succeeded",
                                                                            True, "admin")
        assert job["outcome"] == {"watchlist": wl, "retemplated": 2, "unchanged": 0}
        assert template_models(store, wl) == [NEW_MODEL] * 2
        export = client.post("/api/audit/export-job", headers=bearer(estate.auditor)).json()
        assert export["status"] == "succeeded" and export["outcome"]["chain_ok"] is True

        assert client.get(f"/api/jobs/{job['id']}", headers=bearer(estate.admin)).json() == job
        assert client.get(f"/api/jobs/{job['id']}", headers=bearer(estate.auditor)).json() == job
        assert client.get(f"/api/jobs/{job['id']}", headers=bearer(estate.reviewer)).status_code == 403
        assert client.get(f"/api/jobs/{export['id'] + 1}", headers=bearer(estate.admin)).status_code == 404
        spec = client.get("/openapi.json").json()["paths"]
        assert "202" in spec["/api/watchlists/{watchlist_id}/retemplate-job"]["post"]["responses"]
        assert "202" in spec["/api/audit/export-job"]["post"]["responses"]


def test_a_search_delivered_again_never_stores_an_alert_twice(store: Governance, estate: Estate, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """At least once: a search job whose earlier attempt was interrupted searches again only if
    that attempt stored no alert; otherwise it ends failed, naming the alerts stored."""
    from datetime import timedelta

    from openlfr.jobs import runner
    from openlfr.jobs.kinds import JobFailed
    from openlfr.store.models import Alert, AlertDetail

    store.template_fn = as_configured_model
    (wl,) = watchlists(estate, [1])
    dep, cam = retrospective(estate, wl)
    clip = str(faceless_clip(tmp_path / "clip.mp4"))

    def interrupted(alert: bool) -> int:
        """A search job whose first attempt started (and stored an alert, or not), then died."""
        with monkeypatch.context() as m:
            m.setattr(runner, "execute", lambda gov, job_id, **_: runner._ref(gov, job_id))
            job = submit(store, estate.reviewer, SEARCH, {"deployment": dep, "path": clip}).id
        with store.transaction() as ctx:
            ctx.audit(estate.reviewer, "job.start", "job", job, kind=SEARCH, attempt=1, worker="jobs@dead:1")
            if alert:
                now = ctx.now()
                row = Alert(deployment_id=dep, camera_id=cam, score=0.9, at=now, retain_until=now + timedelta(days=1))
                ctx.session.add(row)
                ctx.session.flush()
                ctx.session.add(AlertDetail(alert_id=row.id, track_id="", frame_index=3, video_time=0.3, box=[],
                                            quality=0.9, candidate_label="", snapshot_hash="0" * 64,
                                            worker="search:reviewer"))
        return job

    clean = interrupted(alert=False)
    ref = runner.execute(store, clean, worker="jobs@test")
    assert (ref.status, ref.attempts, ref.outcome["alerts"] if ref.outcome else None) == ("succeeded", 2, [])

    dirty = interrupted(alert=True)
    seq = last_seq(store)
    with pytest.raises(JobFailed, match=r"interrupted after storing alert\(s\) 1: not searched again"):
        runner.execute(store, dirty, worker="jobs@test")
    assert [e.action for e in events(store, seq)] == ["job.start", "job.failed"]  # no search.start: not searched
    failed = get_job(store, estate.reviewer, dirty)
    assert failed.status == "failed" and failed.outcome == {"alerts": [1], "stopped": "interrupted"}
