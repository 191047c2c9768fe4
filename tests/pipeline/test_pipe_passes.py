"""One alert per pass (openlfr.pipeline.passes), idempotent alert commits and the commit-order
cursor, on both databases: cameras of one zone seeing one person make one alert, a retry of a
committed attempt stores nothing new, racing writers make one alert per pass, and a reader that
follows ``cursor > last`` never misses an alert committed meanwhile."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select

from pipekit import KEY, Clock, Estate  # (pipekit puts tests/governance on the path)
from govkit import fake_template
from openlfr.governance import Governance, Policy, cameras, deployments, parse
from openlfr.governance.retention import sweep
from openlfr.governance.schemas import CameraCreate
from openlfr.pipeline import records
from openlfr.pipeline.camera import CameraPipeline, PipelineStats
from openlfr.pipeline.passes import zone_key
from openlfr.pipeline.records import AlertRecord, StoredAlert, store_alert
from openlfr.pipeline.settings import CameraSettings
from openlfr.rights.erasure import wipe_alert
from openlfr.store.models import (
    Alert, AlertDetail, AlertPass, AuditEvent, Camera, MediaItem, WatchlistEntry,
)

CROP = b"\x89PNG not really a png: the crop is only sealed and stored"


@dataclass
class World:
    gov: Governance
    clock: Clock
    deployment: int
    cameras: list[int]  # 0 and 1 share the zone "square"; 2 has none (a zone of its own)
    zones: dict[int, str]
    entries: list[int]

    def at(self, seconds: float) -> datetime:
        """``seconds`` after a moment 10 minutes into the deployment."""
        return self.clock.now + timedelta(seconds=600 + seconds)

    def record(self, camera: int, entry: int, at: datetime, *, window: float = 60.0, key: str = "",
               person: int | None = None) -> AlertRecord:
        return AlertRecord(
            deployment_id=self.deployment, camera_id=camera, entry_id=self.entries[entry], label=f"person {entry}",
            score=0.9, at=at, track_id="t1", frame_index=1, video_time=0.04, box=[1, 2, 30, 40], quality=0.8,
            crop=CROP, snapshot_hash="0" * 64, zone=self.zones[camera], pass_window_s=window,
            attempt_key=key or uuid.uuid4().hex, person=person)

    def store(self, rec: AlertRecord) -> StoredAlert | None:
        return self.gov.run(lambda ctx: store_alert(ctx, rec, "pipeline:test"))

    def sight(self, camera: int, entry: int, seconds: float, **kw: Any) -> StoredAlert | None:
        return self.store(self.record(camera, entry, self.at(seconds), **kw))

    def count(self, model: Any) -> int:
        with self.gov.reading() as ctx:
            return int(ctx.session.execute(select(func.count()).select_from(model)).scalar_one())


@pytest.fixture
def world(db_url: str, tmp_path: Path) -> Iterator[World]:
    clock = Clock()
    gov = Governance(db_url, blob_root=tmp_path / "blobs", key=KEY, policy=Policy(), template_fn=fake_template,
                     clock=clock, migrate=False)
    estate = Estate(gov, clock)
    estate.setup_users()
    ag = estate.agreement()
    # entries 0 and 1 are two people; entry 2 is a second image of person 0 (the same subject reference)
    wl = estate.watchlist([estate.share(ag, f"img-{i}".encode(), subject=f"S-{i % 2}") for i in range(3)])
    cams = []
    with gov.transaction() as ctx:
        for name, zone in (("gate-a", "square"), ("gate-b", " square "), ("lobby", "")):
            cams.append(cameras.add_camera(ctx, estate.admin, parse(CameraCreate, name=name, location="estate",
                                                                     zone=zone)).id)
    estate.signed.update(cams)
    dep = estate.request(wl, cams)
    with gov.transaction() as ctx:
        deployments.authorise(ctx, estate.officer2, dep)
        deployments.start(ctx, estate.admin, dep)
        zones = {c: zone_key(ctx.session.get(Camera, c).zone, c) for c in cams}
        entries = list(ctx.session.execute(select(WatchlistEntry.id).where(WatchlistEntry.watchlist_id == wl)
                                           .order_by(WatchlistEntry.id)).scalars())
    yield World(gov, clock, dep, cams, zones, entries)
    gov.close()


def test_zone_key_is_the_zone_or_the_camera_itself(world: World) -> None:
    a, b, lobby = world.cameras
    assert world.zones == {a: "square", b: "square", lobby: f"camera:{lobby}"}


def test_cameras_of_one_zone_raise_one_alert_per_pass(world: World) -> None:
    a, b, _ = world.cameras
    first = world.sight(a, 0, 10)
    assert first is not None and first.new
    assert world.sight(b, 0, 40) is None  # the neighbouring camera, 30 s later: the same pass
    assert world.sight(a, 0, 25) is None  # a frame that arrives late (before the pass's last sighting)
    assert world.sight(b, 0, 95) is None  # 55 s after the last sighting: the pass goes on
    assert world.count(Alert) == 1 and world.count(MediaItem) == 1 and world.count(AlertDetail) == 1
    with world.gov.reading() as ctx:
        (row,) = ctx.session.execute(select(AlertPass)).scalars()
        assert (row.zone, row.entry_id, row.alert_id) == ("square", world.entries[0], first.alert_id)
        assert (row.first_seen, row.last_seen) == (world.at(10), world.at(95))


def test_other_zones_and_other_entries_are_other_passes(world: World) -> None:
    a, b, lobby = world.cameras
    made = [world.sight(a, 0, 10), world.sight(lobby, 0, 11), world.sight(b, 1, 12)]
    assert all(m is not None and m.new for m in made)
    assert world.count(Alert) == 3 and world.count(AlertPass) == 3


def test_two_images_of_one_person_are_one_pass(world: World) -> None:
    a, b, _ = world.cameras
    with world.gov.transaction() as ctx:
        live = deployments.live_watchlist(ctx, world.deployment, a, world.at(0))
    first, other, second_image = world.entries
    assert live.person_of == {second_image: first}  # the same subject reference under one agreement
    made = world.store(world.record(a, 0, world.at(10), person=live.person(first)))
    assert made is not None and made.new
    # 20 s later the neighbouring camera's track matches the person's other image best: same pass
    assert world.store(world.record(b, 2, world.at(30), person=live.person(second_image))) is None
    # without the person's key it would have been a second alert for one pass (the rule's control)
    assert world.store(world.record(b, 2, world.at(31))) is not None
    made_other = world.store(world.record(b, 1, world.at(32), person=live.person(other)))
    assert made_other is not None and made_other.new  # another person: another pass
    assert world.count(Alert) == 3


def test_person_keys_join_one_reference_within_one_agreement_only() -> None:
    def e(entry: int, agreement: int, ref: str) -> deployments.SnapshotEntry:
        return deployments.SnapshotEntry(entry, "", agreement, None, ref)

    entries = [e(7, 1, "S-1"), e(3, 1, "S-1"), e(9, 1, "S-1"), e(4, 1, "S-2"), e(5, 2, "S-1"), e(6, 1, ""),
               e(8, 1, "")]
    # (another agreement's S-1 may be another supplier's code for someone else; no reference: nobody)
    assert deployments.person_keys(entries) == {7: 3, 9: 3}


def test_a_gap_longer_than_the_window_is_a_new_pass(world: World) -> None:
    a, b, _ = world.cameras
    first = world.sight(a, 0, 10)
    second = world.sight(b, 0, 71)  # 61 s without a sighting: a new pass, a new alert
    assert first is not None and second is not None and second.alert_id != first.alert_id
    assert world.sight(a, 0, 40) is None  # a late frame less than the window before the pass: it joins
    # a frame far later than that: of an earlier pass, which alerts; the zone's newest pass stays
    late = world.sight(a, 0, -100)
    assert late is not None and late.new
    with world.gov.reading() as ctx:
        (row,) = ctx.session.execute(select(AlertPass)).scalars()
        assert row.alert_id == second.alert_id and (row.first_seen, row.last_seen) == (world.at(40), world.at(71))
    assert world.count(Alert) == 3


def test_a_retry_after_a_commit_returns_the_same_alert_and_stores_nothing(world: World) -> None:
    a, _, _ = world.cameras
    rec = world.record(a, 0, world.at(10), key="cam:-:run:t7:1")
    first = world.store(rec)
    assert first is not None and first.new
    counts = [world.count(m) for m in (Alert, MediaItem, AlertDetail, AuditEvent, AlertPass)]
    again = world.store(rec)  # the worker did not learn the outcome of its first commit and tries again
    assert again == StoredAlert(first.alert_id, first.cursor, False)
    assert [world.count(m) for m in (Alert, MediaItem, AlertDetail, AuditEvent, AlertPass)] == counts
    with world.gov.reading() as ctx:
        alert = ctx.session.get(Alert, first.alert_id)
        assert alert.attempt_key == "cam:-:run:t7:1" and alert.cursor == first.cursor


def test_the_lease_is_checked_first(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from openlfr.pipeline.leases import LeaseLost

    seen: list[tuple[int, int | None, str]] = []

    def fence(ctx: Any, camera_id: int, epoch: int | None, worker: str, action: str = "alert.record",
              **kw: Any) -> None:
        seen.append((camera_id, epoch, worker))
        if epoch == 1:
            raise LeaseLost(f"camera {camera_id}: lease epoch {epoch} is not the camera's")

    monkeypatch.setattr(records, "fence", fence)
    a, _, _ = world.cameras
    with pytest.raises(LeaseLost):
        world.store(replace_epoch(world.record(a, 0, world.at(10)), 1))
    assert world.count(Alert) == 0 and world.count(AlertPass) == 0  # refused before anything was written
    assert world.store(replace_epoch(world.record(a, 0, world.at(10)), 2)) is not None
    assert seen == [(a, 1, "pipeline:test"), (a, 2, "pipeline:test")]


def replace_epoch(rec: AlertRecord, epoch: int) -> AlertRecord:
    from dataclasses import replace

    return replace(rec, lease_epoch=epoch)


def test_racing_cameras_of_one_zone_make_one_alert_per_pass(world: World) -> None:
    a, b, _ = world.cameras
    rounds, per_round = 4, 6
    results: list[StoredAlert | None] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    for r in range(rounds):
        barrier = threading.Barrier(per_round)
        at = world.at(10 + 1000 * r)  # far apart: a new pass each round

        def go(i: int, at: datetime = at, barrier: threading.Barrier = barrier) -> None:
            rec = world.record((a, b)[i % 2], 0, at + timedelta(milliseconds=i))
            barrier.wait()
            try:
                out = world.store(rec)
            except BaseException as err:  # noqa: BLE001 - reported below
                with lock:
                    errors.append(err)
                return
            with lock:
                results.append(out)

        threads = [threading.Thread(target=go, args=(i,)) for i in range(per_round)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert not errors, errors
    made = [s for s in results if s is not None]
    assert len(results) == rounds * per_round and len(made) == rounds
    assert world.count(Alert) == rounds and world.count(MediaItem) == rounds


def test_a_reader_following_the_cursor_misses_no_alert(world: World) -> None:
    """Writers commit alerts concurrently (alert ids are taken before the audit lock, so they
    commit out of id order); a reader that repeatedly reads ``cursor > last`` in cursor order
    and advances to the last one it saw gets every alert, once."""
    writers, each = 4, 12
    done = threading.Event()
    seen: list[int] = []
    errors: list[BaseException] = []

    def write(w: int) -> None:
        try:
            for k in range(each):
                # every sighting its own pass (window 0): the writers only meet on the audit lock
                world.sight(world.cameras[w % 3], w % 2, 10 + k + w / 10, window=0)
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    def read() -> None:
        last = 0
        while True:
            finished = done.is_set()  # (read once more after the writers are done)
            with world.gov.reading() as ctx:
                rows = ctx.session.execute(select(Alert.id, Alert.cursor).where(Alert.cursor > last)
                                           .order_by(Alert.cursor).limit(7)).all()
            for alert_id, cursor in rows:
                seen.append(alert_id)
                last = cursor
            if finished and not rows:
                return
            time.sleep(0.002)  # (a reader that never yields starves SQLite's writers of the GIL)

    reader = threading.Thread(target=read)
    reader.start()
    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    done.set()
    reader.join(60)
    assert not errors, errors
    with world.gov.reading() as ctx:
        stored = {i: c for i, c in ctx.session.execute(select(Alert.id, Alert.cursor))}
        recorded = {int(i): seq for i, seq in ctx.session.execute(
            select(AuditEvent.object_id, AuditEvent.seq).where(AuditEvent.action == "alert.record"))}
    assert len(stored) == writers * each
    assert sorted(seen) == sorted(stored) and len(seen) == len(set(seen))  # every alert, once
    # the cursor is the sequence number of the alert's own alert.record event
    assert recorded == stored


def test_an_erased_alert_takes_its_pass_and_the_sweep_drops_stale_bare_passes(world: World) -> None:
    a, b, lobby = world.cameras
    first = world.sight(a, 0, 10)
    kept = world.sight(lobby, 1, 10)
    assert first is not None and kept is not None
    with world.gov.transaction() as ctx:
        wipe_alert(ctx, ctx.session.get(Alert, first.alert_id), actor="system:test", action="alert.delete",
                   reason="a test")
        # bare pass rows (no alert): one stale (2 days), one recent
        for zone, age in (("old", timedelta(days=2)), ("new", timedelta(hours=1))):
            seen = world.clock.now - age
            ctx.session.add(AlertPass(deployment_id=world.deployment, zone=zone, entry_id=world.entries[0],
                                      alert_id=None, first_seen=seen, last_seen=seen))
    with world.gov.reading() as ctx:
        assert {p.zone for p in ctx.session.execute(select(AlertPass)).scalars()} == {"new", "old", f"camera:{lobby}"}
    assert world.sight(b, 0, 20) is not None  # its pass went with it: a later sighting alerts again
    with world.gov.transaction() as ctx:
        sweep(ctx)
    with world.gov.reading() as ctx:
        left = {p.zone: p.alert_id for p in ctx.session.execute(select(AlertPass)).scalars()}
    assert set(left) == {"new", "square", f"camera:{lobby}"} and left[f"camera:{lobby}"] == kept.alert_id


# --- the live loop's side: a track alerts at most once, for its best candidate --------------
def _pipeline(raise_alert: Any, person_of: dict[int, int] | None = None) -> Any:
    """The parts of a CameraPipeline that ``_match`` uses (no models loaded)."""
    wl = SimpleNamespace(entry_ids=[11, 12, 13], labels=["a", "b", "c"], threshold=0.5,
                         templates=np.eye(3, dtype=np.float32))
    wl.person = lambda entry: (person_of or {}).get(entry, entry)
    return SimpleNamespace(watchlist=wl, settings=CameraSettings(), _last_alert={}, stats=PipelineStats(),
                           _raise_alert=raise_alert)


def test_a_track_matching_two_entries_alerts_once_for_the_best() -> None:
    raised: list[tuple[int, float]] = []

    def raise_alert(track: Any, shot: Any, entry: int, person: int, label: str, score: float, at: datetime) -> Any:
        raised.append((entry, round(score, 2)))
        return SimpleNamespace(alert_id=len(raised))

    pipe = _pipeline(raise_alert)
    track, at = SimpleNamespace(id="t1", data={}), datetime(2030, 3, 1, 9)
    both = np.array([0.7, 0.9, 0.1], np.float32)  # above the threshold for entries 11 and 12
    assert len(CameraPipeline._match(pipe, track, None, both, at)) == 1
    assert raised == [(12, 0.9)]
    assert CameraPipeline._match(pipe, track, None, np.array([0.95, 0, 0], np.float32), at) == []  # once a track
    other = SimpleNamespace(id="t2", data={})
    assert CameraPipeline._match(pipe, other, None, np.array([0.4, 0.3, 0.2], np.float32), at) == []  # below
    assert raised == [(12, 0.9)]


@pytest.mark.parametrize("one_person", [True, False])
def test_a_broken_track_matching_the_persons_other_image_does_not_alert_again(one_person: bool) -> None:
    raised: list[tuple[int, int]] = []

    def raise_alert(track: Any, shot: Any, entry: int, person: int, label: str, score: float, at: datetime) -> Any:
        raised.append((entry, person))
        pipe._last_alert[person] = at  # (as the real one does once stored)
        return SimpleNamespace(alert_id=len(raised))

    pipe = _pipeline(raise_alert, {13: 11} if one_person else None)  # 11 and 13: two images of one person?
    at = datetime(2030, 3, 1, 9)
    assert len(CameraPipeline._match(pipe, SimpleNamespace(id="t1", data={}), None,
                                     np.array([0.9, 0, 0.6], np.float32), at)) == 1
    # the track broke; 5 s later its continuation matches the other image best
    later = CameraPipeline._match(pipe, SimpleNamespace(id="t2", data={}), None,
                                  np.array([0.6, 0, 0.9], np.float32), at + timedelta(seconds=5))
    if one_person:
        assert later == [] and raised == [(11, 11)] and pipe.stats.joined_passes == 1
    else:
        assert len(later) == 1 and raised == [(11, 11), (13, 13)]


def test_a_match_of_a_pass_already_alerted_is_counted_as_joined() -> None:
    pipe = _pipeline(lambda *args: None)  # the store says: the zone's pass has its alert
    at = datetime(2030, 3, 1, 9)
    assert CameraPipeline._match(pipe, SimpleNamespace(id="t1", data={}), None,
                                 np.array([0.9, 0, 0], np.float32), at) == []
    assert pipe.stats.joined_passes == 1


def test_a_resumed_recording_keeps_its_frame_times_so_a_replayed_pass_is_the_same_pass(world: World) -> None:
    # a recording's first run: its time 0 on the wall clock is kept with its resume point
    first = world.at(0)
    world.gov.run(lambda ctx: records.save_checkpoint(ctx, world.deployment, world.cameras[2], "clip.mp4", 50,
                                                      origin=first))
    later = world.at(25)  # a resumed run (another host, after a failover) does not replace it
    world.gov.run(lambda ctx: records.save_checkpoint(ctx, world.deployment, world.cameras[2], "clip.mp4", 80,
                                                      origin=later))
    with world.gov.transaction() as ctx:
        origin = records.checkpoint_origin(ctx, world.deployment, world.cameras[2], "clip.mp4")
        assert records.checkpoint_origin(ctx, world.deployment, world.cameras[2], "other.mp4") is None
    assert origin == first
    # the resumed pipeline times frame 2.0 s of the clip as its first run did, not "now"
    frame = SimpleNamespace(wall=None, time=2.0)
    resumed = SimpleNamespace(origin=origin, _wall0=world.at(40))
    assert CameraPipeline._frame_wall(resumed, frame) == first + timedelta(seconds=2)  # type: ignore[arg-type]
    fresh = SimpleNamespace(origin=None, _wall0=world.at(40))
    assert CameraPipeline._frame_wall(fresh, frame) == world.at(40)  # type: ignore[arg-type]
    assert CameraPipeline._frame_wall(fresh, SimpleNamespace(wall=None, time=3.0)) == world.at(41)  # type: ignore[arg-type]
    # so a pass alerted on the first run and replayed 40 s later (past a 30 s window) is the same pass
    a = world.store(world.record(2, 0, first + timedelta(seconds=2), window=30))
    assert a is not None and a.new
    assert world.store(world.record(2, 0, CameraPipeline._frame_wall(resumed, frame), window=30)) is None  # type: ignore[arg-type]
