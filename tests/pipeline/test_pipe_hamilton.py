"""The live loop on the Hamilton clip: one alert for Lin-Manuel Miranda's track when he is on
the deployment's watchlist; none, and nothing of him kept, when he is not."""

from __future__ import annotations

import itertools
from pathlib import Path

import cv2
import numpy as np
import pytest
from sqlalchemy import func, select

from pipekit import HAMILTON_PASSES, THRESHOLD, blob_files, decrypt_all, live_deployment, make_store, token_for
from openlfr.pipeline.records import alert_detail
from openlfr.rights.keys import media_bytes
from openlfr.audit.chain import verify
from openlfr.evaluation import deployment_report
from openlfr.evaluation.demographics import wilson
from openlfr.face.analyzer import enrolment_template
from openlfr.pipeline.camera import CameraPipeline, DeploymentNotLive, pipeline_stage
from openlfr.pipeline.settings import CameraSettings
from openlfr.video.motion import pad_box
from openlfr.pipeline.events import AlertEvent, EventBus
from openlfr.store.models import Alert, AlertDetail, AuditEvent, Base, MediaItem, PipelineCounter
from openlfr.video.file_source import VideoFileSource

CLIP = "short_hamilton_clip.mp4"


def _row_counts(gov) -> dict[str, int]:  # noqa: ANN001
    with gov.transaction() as ctx:
        return {t.name: ctx.session.execute(select(func.count()).select_from(t)).scalar_one()
                for t in Base.metadata.sorted_tables}


def _events(sub) -> list[object]:  # noqa: ANN001
    out = []
    while (e := sub.get(timeout=0)) is not None:
        out.append(e)
    return out


def test_one_alert_for_miranda_track(tmp_path: Path, video_dir: Path) -> None:
    store = make_store(tmp_path)
    gov = store.governance(enrolment_template)
    refs = video_dir / "references"
    dep, cam = live_deployment(gov, [refs / "lin-manuel-miranda.png", refs / "alex-lacamoire.png"])
    bus = EventBus()
    sub = bus.subscribe()
    stats = CameraPipeline(gov, dep, cam, publish=bus.publish).run(VideoFileSource(video_dir / CLIP))

    alerts = [e for e in _events(sub) if isinstance(e, AlertEvent)]
    assert len(alerts) == 1, alerts
    alert = alerts[0]
    assert alert.label == "person 0" and alert.score >= THRESHOLD  # entry 0 is Miranda's photo
    print(f"Hamilton, default model: Miranda's alert score {alert.score:.3f} at threshold {THRESHOLD:.3f} "
          f"(margin {alert.score - THRESHOLD:+.3f}); {len(stats.tracks)} tracks")
    # his close-up track is long (seen on many analysed frames) yet raised one alert
    assert stats.tracks[alert.track_id][2] >= 10
    with gov.transaction() as ctx:
        rows = ctx.session.execute(select(Alert)).scalars().all()
        assert [r.id for r in rows] == [alert.alert_id]
        detail = alert_detail(ctx, alert.alert_id)
        assert detail["track_id"] == alert.track_id and detail["candidate_label"] == "person 0"
        stored = ctx.session.get(AlertDetail, alert.alert_id)  # where and whom: sealed under the alert's key
        assert stored.track_id == "" and stored.candidate_label == "" and alert.track_id not in stored.personal
        media = ctx.session.execute(select(MediaItem)).scalars().one()
        assert media.alert_id == alert.alert_id and media.kind == "crop"
        crop = cv2.imdecode(np.frombuffer(media_bytes(ctx, media), np.uint8), cv2.IMREAD_COLOR)
        assert crop is not None and min(crop.shape[:2]) >= 80  # the probe face, decrypted
        counters = ctx.session.execute(select(PipelineCounter)).scalars().all()
        assert sum(c.alerts for c in counters) == 1
        assert sum(c.faces_seen for c in counters) >= 15
        actions = [a for (a,) in ctx.session.execute(select(AuditEvent.action))]
        assert "alert.record" in actions and "crop.record" in actions and "pipeline.counters" in actions
        assert verify(ctx.session).ok
        report = deployment_report.for_deployment(ctx.session, dep)
    # the report counts people passing, and the faces of them searched (at most
    # templates_per_track each), not the detections on every analysed frame
    print(f"Hamilton report: {report.people_passes} pass, {report.faces_searched} faces searched, "
          f"{report.detections} detections, {stats.analysed} frames analysed")
    assert report.people_passes == HAMILTON_PASSES
    assert report.faces_searched == sum(c.templates for c in counters)
    assert 3 <= report.faces_searched <= 3 * HAMILTON_PASSES
    assert report.detections == sum(c.faces_seen for c in counters) >= 5 * report.faces_searched
    assert report.unreviewed == 1 and "consistent" not in report.predicted_vs_observed
    # the crop blob as stored (its file, or its row in the database) is encrypted (no PNG signature)
    raw = gov.blob_store.sealed(media.blob)
    assert b"PNG" not in raw[:64]


def test_no_alert_and_nothing_kept_when_not_on_the_watchlist(tmp_path: Path, video_dir: Path) -> None:
    store = make_store(tmp_path)
    gov = store.governance(enrolment_template)
    dep, cam = live_deployment(gov, [video_dir / "references" / "alex-lacamoire.png"])
    before_rows = _row_counts(gov)
    before_blobs = decrypt_all(store.blobs)
    with gov.transaction() as ctx:
        last_seq = ctx.session.execute(select(func.max(AuditEvent.seq))).scalar_one()

    bus = EventBus()
    sub = bus.subscribe()
    stats = CameraPipeline(gov, dep, cam, publish=bus.publish).run(VideoFileSource(video_dir / CLIP))
    assert not [e for e in _events(sub) if isinstance(e, AlertEvent)]
    assert stats.analysed > 20 and len(stats.tracks) >= 1

    # Nothing on disk but what was there before: same blob files, same contents.
    assert {p.name for p in blob_files(store.blobs)} == set(before_blobs)
    assert decrypt_all(store.blobs) == before_blobs
    # In the database only counters and audit events were added.
    after_rows = _row_counts(gov)
    changed = {t for t in after_rows if after_rows[t] != before_rows[t]}
    # (camera_status: what the worker said about itself, no face data)
    assert changed <= {"pipeline_counters", "audit_events", "camera_status"}, changed
    with gov.transaction() as ctx:
        counters = ctx.session.execute(select(PipelineCounter)).scalars().all()
        assert sum(c.faces_seen for c in counters) >= 15
        assert sum(c.templates for c in counters) >= 1
        assert sum(c.templates_discarded for c in counters) == sum(c.templates for c in counters)
        assert sum(c.alerts for c in counters) == 0
        new = ctx.session.execute(select(AuditEvent).where(AuditEvent.seq > last_seq)).scalars().all()
        assert {e.action for e in new} <= {"camera.claim", "pipeline.start", "deployment.watchlist",
                                           "pipeline.counters", "camera.release"}
        discards = [e for e in new if e.action == "pipeline.counters"]
        assert discards and all('"templates_discarded"' in e.details and '"passes"' in e.details for e in discards)
        report = deployment_report.for_deployment(ctx.session, dep)
    # no alert: the observed rate is 0 per face searched, its interval that of 0 in faces searched
    assert report.people_passes == sum(c.passes for c in counters) >= 1
    assert report.faces_searched == sum(c.templates for c in counters) < report.detections
    assert report.observed_false_alert_rate == 0
    assert report.observed_false_alert_rate_ci95 == list(wilson(0, report.faces_searched))


def test_no_matching_without_a_live_deployment(tmp_path: Path, video_dir: Path) -> None:
    from openlfr.governance import deployments

    store = make_store(tmp_path)
    gov = store.governance(enrolment_template)
    dep, cam = live_deployment(gov, [video_dir / "references" / "lin-manuel-miranda.png"])
    with gov.transaction() as ctx:
        deployments.end(ctx, token_for(gov, "admin"), dep, reason="test")
    with pytest.raises(DeploymentNotLive):
        CameraPipeline(gov, dep, cam).start()


def test_matching_stops_when_the_deployment_ends_mid_run(tmp_path: Path, video_dir: Path) -> None:
    from openlfr.governance import deployments
    from openlfr.pipeline.settings import CameraSettings

    store = make_store(tmp_path)
    gov = store.governance(enrolment_template)
    dep, cam = live_deployment(gov, [video_dir / "references" / "lin-manuel-miranda.png"])

    admin = token_for(gov, "admin")

    def frames():  # noqa: ANN202
        for frame in VideoFileSource(video_dir / CLIP):
            if frame.index == 45:  # 1.5 s in, before he appears at ~2.8 s
                with gov.transaction() as ctx:
                    deployments.end(ctx, admin, dep, reason="operation over")
            yield frame

    pipe = CameraPipeline(gov, dep, cam, CameraSettings(watchlist_refresh_s=0.5))
    with pytest.raises(DeploymentNotLive, match="not live"):
        pipe.run(frames())
    assert not pipe.stats.alerts and pipe.stats.frames < 80
    with gov.transaction() as ctx:
        assert not ctx.session.execute(select(Alert)).scalars().all()
        refused = ctx.session.execute(
            select(AuditEvent).where(AuditEvent.action == "deployment.watchlist.refused")).scalars().all()
        assert refused  # the refusal is on the audit record


def test_a_suspended_agreement_stops_matching_within_seconds(tmp_path: Path, video_dir: Path) -> None:
    """The force suspends the agreement while the camera runs: within ``agreement_check_s``
    (2 s) of video the pipeline holds none of its images any more (here: all of them, so it
    stops), the refusal is audited, and no alert is raised after the suspension."""
    from openlfr.audit.chain import load_records
    from openlfr.governance import agreements
    from openlfr.store.models import Agreement

    store = make_store(tmp_path)
    gov = store.governance(enrolment_template)
    dep, cam = live_deployment(gov, [video_dir / "references" / "alex-lacamoire.png"])
    pipe = CameraPipeline(gov, dep, cam)
    pipe.start()
    suspended_at = None
    with pytest.raises(DeploymentNotLive, match="no longer in force"):
        for frame in VideoFileSource(video_dir / CLIP):
            if suspended_at is None and frame.time >= 0.5:
                met = token_for(gov, "met")
                with gov.transaction() as ctx:
                    (ag,) = ctx.session.execute(select(Agreement.id)).scalars().all()
                    agreements.suspend(ctx, met, ag, "complaint received")
                suspended_at = frame.time
            pipe.process(frame)
            last = frame.time
    assert suspended_at is not None and last - suspended_at <= 2.0 + 0.3, (suspended_at, last)
    with gov.transaction() as ctx:
        refused = [r for r in load_records(ctx.session) if r.action == "deployment.watchlist.refused"]
    assert refused and "no longer in force" in refused[-1].details


def _clip_face(clip: Path, index: int, out: Path) -> Path:
    """A PNG of the one face on frame ``index`` of ``clip``, padded as a watchlist photo is."""
    analyzer, detector = pipeline_stage(CameraSettings().detector)
    frame = next(f for f in VideoFileSource(clip, start_frame=index))
    (face,) = analyzer.analyze(frame.image, detector.detect(frame.image))
    b = pad_box(face.box, 0.6, frame.image.shape)
    crop = frame.image[b.top : b.bottom + 1, b.left : b.right + 1]
    out.write_bytes(cv2.imencode(".png", cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))[1].tobytes())
    return out


@pytest.mark.parametrize("one_person", [True, False], ids=["one-reference", "two-references"])
def test_two_images_of_miranda_are_one_pass_across_a_track_break(one_person: bool, tmp_path: Path,
                                                                  video_dir: Path) -> None:
    """Miranda's close-up (2.8-7.0 s) is cut in two at frame 153 (a stream that broke, so a new
    track), and he is listed twice: his face at 3.4 s, which the first part matches best, and at
    6.6 s, which the second part matches best. Under one subject reference that is one person:
    one alert. Under two (the control), each part alerts for its own image."""
    clip = video_dir / CLIP
    images = [_clip_face(clip, 102, tmp_path / "early.png"), _clip_face(clip, 198, tmp_path / "late.png")]
    store = make_store(tmp_path)
    gov = store.governance(enrolment_template)
    dep, cam = live_deployment(gov, images, subjects=["SUBJ-0001", "SUBJ-0001" if one_person else "SUBJ-0002"])
    first = CameraPipeline(gov, dep, cam).run(itertools.takewhile(lambda f: f.index < 153, VideoFileSource(clip)))
    second = CameraPipeline(gov, dep, cam).run(VideoFileSource(clip, start_frame=153))
    assert [a.label for a in first.alerts] == ["person 0"]  # the early image
    if one_person:
        assert second.alerts == [] and second.joined_passes == 1
    else:
        assert [a.label for a in second.alerts] == ["person 1"]  # the late image: another person's alert
    with gov.reading() as ctx:
        assert ctx.session.execute(select(func.count()).select_from(Alert)).scalar_one() == (1 if one_person else 2)
