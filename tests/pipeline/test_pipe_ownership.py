"""The live loop's own rules: one pipeline per camera (a duplicate is refused and counts
nothing; a pipeline without a host agent takes the camera's lease, keeps it renewed as it runs
and gives it back at the end; one whose lease was taken over has its writes refused and stops),
and an entry whose review date passes during a run drops out of the watchlist at once."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from pipekit import live_deployment, make_store
from openlfr.face.analyzer import enrolment_template
from openlfr.governance import Governance, watchlists
from openlfr.pipeline import leases
from openlfr.pipeline.camera import CameraPipeline
from openlfr.pipeline.leases import CameraTaken, LeaseLost
from openlfr.pipeline.settings import CameraSettings
from openlfr.store.models import AuditEvent, CameraLease, PipelineCounter, WatchlistEntry
from openlfr.video.frames import Frame

BLANK = np.zeros((90, 160, 3), np.uint8)  # nothing to detect: these tests count frames and leases


def _frames(n: int, fps: float = 25.0, start: int = 0) -> list[Frame]:
    return [Frame(BLANK, i, i / fps) for i in range(start, start + n)]


def _actions(gov: Governance, action: str) -> list[AuditEvent]:
    with gov.transaction() as ctx:
        rows = ctx.session.execute(select(AuditEvent).where(AuditEvent.action == action)).scalars().all()
        ctx.session.expunge_all()
        return list(rows)


@pytest.fixture
def short_leases(monkeypatch: pytest.MonkeyPatch) -> float:
    """Leases of 1 s (renewed every 0.2 s by a pipeline that took its own)."""
    monkeypatch.setenv("OPENLFR_LEASE_SECONDS", "1")
    monkeypatch.setenv("OPENLFR_RENEW_SECONDS", "0.5")
    return 1.0


def test_a_second_pipeline_on_a_camera_is_refused_and_counts_nothing(tmp_path: Path, video_dir: Path) -> None:
    store = make_store(tmp_path)
    gov = store.governance(enrolment_template)
    dep, cam = live_deployment(gov, [video_dir / "references" / "alex-lacamoire.png"])
    first = CameraPipeline(gov, dep, cam, worker="pipeline:first")
    first.start()
    with pytest.raises(CameraTaken, match="camera .* is already analysed by pipeline:first@"):
        CameraPipeline(gov, dep, cam, worker="pipeline:second").start()
    with pytest.raises(CameraTaken):  # run() takes the lease too
        CameraPipeline(gov, dep, cam, worker="pipeline:third").run(_frames(10))
    first.run(_frames(50))
    with gov.transaction() as ctx:
        counters = ctx.session.execute(select(PipelineCounter)).scalars().all()
        assert sum(c.frames for c in counters) == 50  # the first pipeline's frames only, once
        assert ctx.session.get(CameraLease, cam).host_id is None  # given back at the end
    assert [e.actor for e in _actions(gov, "pipeline.start")] == ["pipeline:first"]
    refused = _actions(gov, "camera.claim.refused")
    assert [e.actor for e in refused] == ["pipeline:second", "pipeline:third"]
    assert "already analysed" in json.loads(refused[0].details)["reason"]
    assert [e.actor for e in _actions(gov, "camera.release")] == ["pipeline:first"]
    CameraPipeline(gov, dep, cam, worker="pipeline:next").run(_frames(5))  # free again


def test_the_lease_is_renewed_while_the_pipeline_runs(tmp_path: Path, video_dir: Path, short_leases: float) -> None:
    store = make_store(tmp_path)
    gov = store.governance(enrolment_template)
    dep, cam = live_deployment(gov, [video_dir / "references" / "alex-lacamoire.png"])
    pipe = CameraPipeline(gov, dep, cam, worker="pipeline:first")
    pipe.start()
    t0 = time.monotonic()
    for frame in _frames(13, fps=6):  # 2.2 s of frames at their own pace: over twice the lease's life
        time.sleep(max(0.0, t0 + frame.time - time.monotonic()))
        pipe.process(frame)
    time.sleep(short_leases * 1.5)  # no frames for a while (a stream outage): renewed all the same
    with pytest.raises(CameraTaken):  # still held
        CameraPipeline(gov, dep, cam, worker="pipeline:second").start()
    pipe.finish()
    CameraPipeline(gov, dep, cam, worker="pipeline:second").start()


def test_a_pipeline_whose_lease_was_taken_over_is_refused_and_stops(tmp_path: Path, video_dir: Path) -> None:
    """Under a host agent (the lease given): once another host holds the camera, the pipeline's
    next write is refused (audited, nothing written) and it stops."""
    store = make_store(tmp_path)
    gov = store.governance(enrolment_template)
    dep, cam = live_deployment(gov, [video_dir / "references" / "alex-lacamoire.png"],
                               source=str(video_dir / "short_hamilton_clip.mp4"))  # (claimed: it has an address)
    with gov.transaction() as ctx:
        (lease,) = leases.claim(ctx, "A", "host:A@another-machine:1", None, 30)
    pipe = CameraPipeline(gov, dep, cam, CameraSettings(counters_interval_s=1.0), worker="pipeline:cam1",
                          lease_epoch=lease.epoch)
    pipe.start()
    for frame in _frames(30):  # A's counters for its first second are written
        pipe.process(frame)
    with gov.transaction() as ctx:  # A stopped renewing (paused) and its lease ran out; B takes the camera
        ctx.session.get(CameraLease, cam).expires_at = datetime.now(UTC) - timedelta(seconds=1)
    with gov.transaction() as ctx:
        (taken,) = leases.claim(ctx, "B", "host:B@another-machine:2", None, 30)
    with pytest.raises(LeaseLost, match=f"epoch {lease.epoch} is now {taken.epoch}, held by host B"):
        for frame in _frames(30, start=30):
            pipe.process(frame)
    with gov.transaction() as ctx:
        frames = sum(c.frames for c in ctx.session.execute(select(PipelineCounter)).scalars())
    assert 25 <= frames < 50  # its second interval was not written
    refused = _actions(gov, "pipeline.counters.refused")
    assert len(refused) == 1 and refused[0].actor == "pipeline:cam1"
    assert "lease lost" in json.loads(refused[0].details)["reason"]


def test_an_entry_past_its_review_date_drops_out_during_the_run(tmp_path: Path, video_dir: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    store = make_store(tmp_path)
    gov = store.governance(enrolment_template)
    refs = video_dir / "references"
    today = datetime.now(UTC).date()
    add_entry = watchlists.add_entry

    def due_today(ctx, actor, data, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        if data.label == "person 0":  # the first entry is due for review today
            data = data.model_copy(update={"review_date": today})
        return add_entry(ctx, actor, data, *args, **kwargs)

    monkeypatch.setattr(watchlists, "add_entry", due_today)
    dep, cam = live_deployment(gov, [refs / "lin-manuel-miranda.png", refs / "alex-lacamoire.png"], hours=48)
    with gov.transaction() as ctx:
        entry_id = ctx.session.execute(select(WatchlistEntry.id).where(WatchlistEntry.label == "person 0")).scalar_one()
    # (only the review date may reload the watchlist here, not the regular refresh)
    pipe = CameraPipeline(gov, dep, cam, CameraSettings(watchlist_refresh_s=1e6), worker="pipeline:cam1")
    now = datetime.now(UTC)
    pipe.process(Frame(BLANK, 0, 0.0, wall=now))
    assert entry_id in pipe.watchlist.entry_ids and len(pipe.watchlist.entry_ids) == 2
    midnight = pipe.watchlist.next_change
    assert midnight == datetime.combine(today + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    pipe.process(Frame(BLANK, 1, 1.0, wall=now + timedelta(seconds=1)))
    assert len(pipe.watchlist.entry_ids) == 2  # still its review day
    gov.clock = lambda: midnight + timedelta(seconds=2)  # the night passes
    pipe.process(Frame(BLANK, 2, 2.0, wall=midnight + timedelta(seconds=1)))
    assert entry_id not in pipe.watchlist.entry_ids and len(pipe.watchlist.entry_ids) == 1  # dropped at once
    drops = _actions(gov, "deployment.watchlist_drop")
    assert len(drops) == 1 and json.loads(drops[0].details)["reason"] == "review date passed"
    pipe.finish()
