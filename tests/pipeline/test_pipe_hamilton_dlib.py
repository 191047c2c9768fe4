"""The Hamilton clip with the dlib ResNet and the MMOD detector, which stay selectable beside the
default SFace + YuNet: one alert for Lin-Manuel Miranda when he is listed, none when only Alex
Lacamoire is; the score margin is reported."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from pipekit import live_deployment, make_store
from openlfr.audit.chain import verify
from openlfr.face.registry import model_threshold
from openlfr.pipeline.camera import CameraPipeline
from openlfr.pipeline.events import AlertEvent, EventBus
from openlfr.store.models import Alert, Deployment, SharedImage
from openlfr.video.file_source import VideoFileSource

CLIP = "short_hamilton_clip.mp4"


@pytest.fixture
def dlib_model(monkeypatch: pytest.MonkeyPatch) -> Iterator[float]:
    """The dlib ResNet + MMOD as the configured face model; yields the model's default threshold."""
    from openlfr.config import get_settings
    from openlfr.face.analyzer import default_analyzer
    from openlfr.pipeline.camera import pipeline_stage

    def clear() -> None:
        for cached in (get_settings, default_analyzer, pipeline_stage):
            cached.cache_clear()

    monkeypatch.setenv("OPENLFR_FACE_MODEL", "dlib-resnet")
    monkeypatch.setenv("OPENLFR_DETECTOR", "mmod")
    clear()
    yield model_threshold("dlib-resnet")
    monkeypatch.undo()
    clear()


def _alerts(gov, refs: list[Path], video_dir: Path, threshold: float) -> tuple[list[AlertEvent], object]:  # noqa: ANN001
    from openlfr.face.analyzer import enrolment_template

    gov.template_fn = enrolment_template
    dep, cam = live_deployment(gov, refs, threshold=threshold)
    bus = EventBus()
    sub = bus.subscribe()
    stats = CameraPipeline(gov, dep, cam, publish=bus.publish).run(VideoFileSource(video_dir / CLIP))
    events = []
    while (e := sub.get(timeout=0)) is not None:
        events.append(e)
    with gov.transaction() as ctx:
        assert {r.template_model for r in ctx.session.execute(select(SharedImage)).scalars()} == {
            "dlib-resnet-v1:55533b28"}
        assert ctx.session.get(Deployment, dep).model_id == "dlib-resnet-v1:55533b28"
    return [e for e in events if isinstance(e, AlertEvent)], stats


def test_one_alert_for_miranda_with_dlib(tmp_path: Path, video_dir: Path, dlib_model: float) -> None:
    gov = make_store(tmp_path).governance()
    refs = video_dir / "references"
    alerts, stats = _alerts(gov, [refs / "lin-manuel-miranda.png", refs / "alex-lacamoire.png"], video_dir, dlib_model)
    assert len(alerts) == 1, alerts
    (alert,) = alerts
    assert alert.label == "person 0"  # entry 0 is Miranda's photo
    print(f"dlib Hamilton: Miranda's alert score {alert.score:.3f} at threshold {dlib_model:.3f} "
          f"(margin {alert.score - dlib_model:+.3f}); {len(stats.tracks)} tracks")
    with gov.transaction() as ctx:
        assert [r.id for r in ctx.session.execute(select(Alert)).scalars()] == [alert.alert_id]
        assert verify(ctx.session).ok


def test_no_alert_with_dlib_when_only_lacamoire_is_listed(tmp_path: Path, video_dir: Path, dlib_model: float) -> None:
    gov = make_store(tmp_path).governance()
    alerts, stats = _alerts(gov, [video_dir / "references" / "alex-lacamoire.png"], video_dir, dlib_model)
    assert alerts == [] and stats.analysed > 20
