"""Tracking, motion regions, best shots, pacing and the event bus; the street clip's pedestrians."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from pipekit import live_deployment, make_store
from openlfr.face.analyzer import enrolment_template
from openlfr.face.types import Box, Detection, Quality
from openlfr.pipeline.camera import CameraPipeline
from openlfr.pipeline.events import EventBus
from openlfr.pipeline.settings import CameraSettings
from openlfr.video.best_shot import BestShots, Shot
from openlfr.video.file_source import VideoFileSource
from openlfr.video.frames import Frame
from openlfr.video.motion import MotionDetector, merge_boxes
from openlfr.video.pacing import PacedSource
from openlfr.video.tracker import IoUTracker


def _det(x: int, y: int, size: int = 80) -> Detection:
    return Detection(Box(x, y, x + size - 1, y + size - 1), 1.0)


def test_tracker_follows_a_walking_face_and_separates_two() -> None:
    tr = IoUTracker(max_age=1.0)
    ids = set()
    for i in range(10):  # two faces walking towards each other's side, 0.2 s apart
        t = i * 0.2
        pairs, _ = tr.update([_det(100 + 30 * i, 200), _det(900 - 30 * i, 220)], t)
        ids |= {track.id for track, _ in pairs}
    assert len(ids) == 2 and tr.started == 2
    assert all(track.hits == 10 for track in tr.tracks)
    # prediction carries the box between detections
    pred = tr.tracks[0].predict(10 * 0.2)
    assert abs(pred.center[0] - (100 + 30 * 10 + 39.5)) < 5


def test_tracker_follows_a_fast_walker_close_to_the_camera() -> None:
    """Two face widths per 0.2 s (a 1.5 m/s walk), one detection missed: still one track."""
    tr = IoUTracker(max_age=1.0)
    times = [0.0, 0.2, 0.6, 0.8]  # the detection at 0.4 s was missed
    ids = {tr.update([_det(100 + int(1000 * t), 300, size=100)], t)[0][0][0].id for t in times}
    assert len(ids) == 1 and tr.started == 1
    # the same jump in a twentieth of the time is not a walk: a different face
    tr.update([_det(100 + 800 + 200, 300, size=100)], 0.81)
    assert tr.started == 2


def test_tracker_ends_tracks_after_max_age_and_skips_jumps() -> None:
    tr = IoUTracker(max_age=0.5)
    tr.update([_det(100, 100)], 0.0)
    _, ended = tr.update([_det(1000, 600)], 0.2)  # far away: a different person
    assert tr.started == 2 and not ended
    _, ended = tr.update([], 1.0)
    assert len(ended) == 2 and not tr.tracks


def test_motion_regions_find_the_moving_square() -> None:
    m = MotionDetector(width=320)
    frame = np.zeros((360, 640, 3), np.uint8)
    assert m.regions(frame) == [Box(0, 0, 639, 359)]  # first frame: everything is new
    assert m.regions(frame) == []
    moved = frame.copy()
    moved[100:180, 300:380] = 255
    (region,) = m.regions(moved)
    assert region.left <= 300 and region.right >= 379 and region.top <= 100 and region.bottom >= 179
    assert region.area < 0.2 * 640 * 360
    assert merge_boxes([Box(0, 0, 10, 10), Box(5, 5, 20, 20), Box(50, 50, 60, 60)]) == [
        Box(0, 0, 20, 20), Box(50, 50, 60, 60)]


def _shot(score: float, ok: bool = True) -> Shot:
    q = Quality(score, 30, 50, 0, 0, [] if ok else ["too small"])
    return Shot(0, 0.0, Box(0, 0, 9, 9), q, np.zeros((5, 2)), np.zeros((1,)), np.zeros((1,)))


def test_best_shots_embed_only_clearly_better_acceptable_shots() -> None:
    b = BestShots(max_templates=2, min_gain=0.05)
    assert not b.offer(_shot(0.9, ok=False))
    assert b.offer(_shot(0.5))
    assert not b.offer(_shot(0.52))  # not clearly better
    assert b.offer(_shot(0.7))
    assert not b.offer(_shot(0.95))  # budget spent


def test_paced_source_drops_frames_a_busy_consumer_misses() -> None:
    frames = [Frame(np.zeros((1, 1, 3), np.uint8), i, i / 50) for i in range(25)]  # 0.5 s at 50 fps
    paced = PacedSource(frames)
    t = time.perf_counter()
    got = []
    for f in paced:
        got.append(f.index)
        time.sleep(0.05)  # the consumer takes 2.5 frame intervals per frame
    assert 0.45 < time.perf_counter() - t < 1.0
    assert paced.dropped > 10 and got[-1] == 24 and got == sorted(got)


def test_event_bus_delivers_to_every_subscriber_and_drops_oldest_when_full() -> None:
    bus = EventBus()
    a, b = bus.subscribe(), bus.subscribe(maxsize=2)
    seen = []
    bus.on_event(seen.append)
    for i in range(3):
        bus.publish(i)
    assert [a.get(0), a.get(0), a.get(0)] == [0, 1, 2]
    assert [b.get(0), b.get(0), b.get(0)] == [1, 2, None] and b.dropped == 1
    assert seen == [0, 1, 2]


def test_settings_validate() -> None:
    import pytest

    with pytest.raises(ValueError):
        CameraSettings(roi=(100, 100, 50, 200))
    with pytest.raises(ValueError):
        CameraSettings(analyse_fps=0)
    assert CameraSettings(roi=(0, 0, 5000, 5000)).roi_box((1080, 1920, 3)) == Box(0, 0, 1919, 1079)


def test_street_clip_gives_tracks_for_walking_pedestrians(tmp_path: Path, video_dir: Path) -> None:
    gov = make_store(tmp_path).governance(enrolment_template)
    dep, cam = live_deployment(gov, [video_dir / "references" / "alex-lacamoire.png"])
    stats = CameraPipeline(gov, dep, cam, publish=EventBus().publish).run(
        VideoFileSource(video_dir / "street_1080p.mp4"))
    assert stats.analysed >= 18  # 4.2 s at 5 analysed frames a second
    long_tracks = {k: v for k, v in stats.tracks.items() if v[2] >= 5}
    assert len(long_tracks) >= 3, stats.tracks
    for first, last, hits, c0, c1 in long_tracks.values():
        assert last - first >= 1.0  # followed for a second or more...
        assert hits <= stats.analysed  # ...at most once per analysed frame
    # one track per walker, not one per detection: 5 faces pass close enough to be found
    # (counted by eye), one of them crossing the whole frame in 1.4 s; 60 detections in all
    hits = sum(v[2] for v in stats.tracks.values())
    assert len(stats.tracks) <= 8 and hits >= 5 * len(stats.tracks), stats.tracks
    moved = [v for v in long_tracks.values() if abs(v[4][0] - v[3][0]) + abs(v[4][1] - v[3][1]) > 30]
    assert len(moved) >= 2  # walking people, not fixed false detections
