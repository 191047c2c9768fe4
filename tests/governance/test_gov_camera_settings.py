"""Cameras in the store: editing a camera (address, place, analysis settings), what its worker
reports (status, failures) and who may read that; the service, then the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from govkit import Clock, Estate
from openlfr.errors import InputError
from openlfr.governance import Governance, OrgKind, PermissionDenied, Role, cameras
from openlfr.governance.schemas import CameraUpdate
from openlfr.pipeline.status import record_failure, write_status
from openlfr.store.models import AuditEvent, Camera, CameraGap


def _events(gov: Governance, action: str) -> list[dict]:
    with gov.transaction() as ctx:
        return [json.loads(d) for d in ctx.session.execute(
            select(AuditEvent.details).where(AuditEvent.action == action).order_by(AuditEvent.seq)).scalars()]


def _camera(gov: Governance, cam: int) -> Camera:
    with gov.transaction() as ctx:
        row = ctx.get(Camera, cam, "camera")
        ctx.session.expunge(row)
        return row


def test_mask_address_hides_only_the_password() -> None:
    assert cameras.mask_address("rtsp://user:s3cret@10.0.0.5:554/live") == "rtsp://user:***@10.0.0.5:554/live"
    assert cameras.mask_address("rtsp://10.0.0.5/live") == "rtsp://10.0.0.5/live"
    assert cameras.mask_address("/recordings/a.mp4") == "/recordings/a.mp4"
    assert cameras.mask_address("") == ""


def test_update_camera_stores_only_changed_settings_and_audits_masked(gov: Governance, estate: Estate) -> None:
    cam = estate.camera("gate")
    with gov.transaction() as ctx:
        cameras.set_camera_networks(ctx, estate.admin, ["10.0.0.0/8"])
        cameras.update_camera(ctx, estate.admin, cam, CameraUpdate(
            location="south gate", stream_url="rtsp://cam:pw1@10.0.0.5/live",
            settings={"analyse_fps": 4, "roi": [0, 100, 639, 479], "min_face_size": 80}))  # 80 is the default
    row = _camera(gov, cam)
    assert row.location == "south gate" and row.stream_url == "rtsp://cam:pw1@10.0.0.5/live"
    assert row.settings == {"analyse_fps": 4.0, "roi": [0, 100, 639, 479]}
    # a later change merges; null puts a setting back to its default
    with gov.transaction() as ctx:
        cameras.update_camera(ctx, estate.admin, cam, {"stream_url": "rtsp://cam:pw2@10.0.0.6/live",
                                                       "settings": {"roi": None, "loop": True}})
    assert _camera(gov, cam).settings == {"analyse_fps": 4.0, "loop": True}
    first, second = _events(gov, "camera.update")
    assert first["stream"] == {"old": "", "new": "rtsp://cam:***@10.0.0.5/live"}
    assert first["location"]["new"] == "south gate"
    assert second["stream"] == {"old": "rtsp://cam:***@10.0.0.5/live", "new": "rtsp://cam:***@10.0.0.6/live"}
    assert "pw1" not in json.dumps(first) + json.dumps(second)


@pytest.mark.parametrize("fields, match", [
    ({"settings": {"analyse_fps": -1}}, "analyse_fps"),
    ({"settings": {"no_such_setting": 1}}, "no_such_setting"),
    ({"settings": {"roi": [100, 0, 50, 10]}}, "roi"),
    ({"stream_url": "rtsp://203.0.113.9/live"}, "outside the networks"),
    ({"stream_url": "ftp://10.0.0.5/x"}, "scheme 'ftp'"),
    ({"location": ""}, "location"),
    ({}, "nothing to change"),
])
def test_bad_camera_changes_are_refused_audited_and_store_nothing(
        gov: Governance, estate: Estate, fields: dict, match: str) -> None:
    cam = estate.camera("gate")
    with gov.transaction() as ctx:
        cameras.set_camera_networks(ctx, estate.admin, ["10.0.0.0/8"])
    with pytest.raises(InputError, match=match), gov.transaction() as ctx:
        cameras.update_camera(ctx, estate.admin, cam, fields)
    row = _camera(gov, cam)
    assert row.settings in ({}, None) and row.stream_url == "" and row.location == "north gate"
    assert len(_events(gov, "camera.update.refused")) == 1 and not _events(gov, "camera.update")


def test_only_the_cameras_own_operator_admin_may_edit_it(gov: Governance, estate: Estate) -> None:
    cam = estate.camera("gate")
    other = estate.organisation("Other Mall", OrgKind.SITE_OPERATOR)
    with gov.transaction() as ctx:
        from openlfr.governance import users
        from openlfr.governance.schemas import UserCreate

        users.create_user(ctx, other, UserCreate(name="bob", role=Role.OPERATOR_ADMIN), None)
    from govkit import token_for

    for actor in (estate.reviewer, estate.supplier, token_for(gov, "bob")):
        with pytest.raises(PermissionDenied), gov.transaction() as ctx:
            cameras.update_camera(ctx, actor, cam, {"settings": {"analyse_fps": 2}})
    assert _camera(gov, cam).settings in ({}, None)
    assert len(_events(gov, "camera.update.refused")) == 3


def test_camera_status_readers_and_failures(gov: Governance, estate: Estate, clock: Clock) -> None:
    dep, cam, _ = estate.live_deployment(n_images=1)
    with gov.transaction() as ctx:
        write_status(ctx, cam, dep, "pipeline:cam1", "starting")
        write_status(ctx, cam, dep, "pipeline:cam1", "running", fps=4.96, frames_analysed=120,
                     last_frame_at=clock.now)
    for reader in (estate.admin, estate.reviewer, estate.auditor):
        with gov.transaction() as ctx:
            (h,) = cameras.camera_status(ctx, reader)
            assert (h.camera.id, h.state, h.status.fps, h.status.frames_analysed) == (cam, "running", 4.96, 120)
    with pytest.raises(PermissionDenied), gov.transaction() as ctx:
        cameras.camera_status(ctx, estate.supplier)  # the force's supplier: not the camera's organisation
    clock.advance(seconds=31)  # a worker that says nothing for 30 s is not believed to run
    with gov.transaction() as ctx:
        assert cameras.camera_status(ctx, estate.admin)[0].state == "not responding"
        record_failure(ctx, cam, dep, "pipeline:cam1", "no such video file")
    with gov.transaction() as ctx:
        (h,) = cameras.camera_status(ctx, estate.reviewer)
        assert h.state == "failed" and h.status.error == "no such video file" and h.status.fps == 0
        assert [g.reason for g in h.gaps] == ["camera failed: no such video file"] and h.gaps[0].ended_at is None
        assert ctx.session.execute(select(CameraGap)).scalars().one().camera_id == cam
    assert _events(gov, "camera.failed")[0]["reason"] == "no such video file"
    clock.advance(seconds=5)
    with gov.transaction() as ctx:  # a new run clears the last one's error and counts
        write_status(ctx, cam, dep, "pipeline:cam1", "starting")
        (h,) = cameras.camera_status(ctx, estate.admin)
        assert (h.state, h.status.error, h.status.frames_analysed, h.status.last_frame_at) == ("starting", "", 0, None)


def test_jobs_take_each_cameras_stored_settings(gov: Governance, estate: Estate, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from openlfr.pipeline.worker import jobs_for_live_deployments

    monkeypatch.setenv("OPENLFR_CAMERA_FILE_ROOTS", str(tmp_path))
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"x")
    dep, cam, _ = estate.live_deployment(n_images=1)
    with gov.transaction() as ctx:
        cameras.update_camera(ctx, estate.admin, cam, {"stream_url": str(clip),
                                                       "settings": {"analyse_fps": 3, "loop": True}})
    (job,) = jobs_for_live_deployments(gov)
    assert (job.camera_id, job.source, job.settings) == (cam, str(clip), {"analyse_fps": 3.0, "loop": True})
    (job,) = jobs_for_live_deployments(gov, {"*": {"analyse_fps": 8}})  # 'openlfr run --analyse-fps' wins
    assert job.settings == {"analyse_fps": 8, "loop": True}
    # 'openlfr run --camera' takes a name or an id, as every command does
    with gov.transaction() as ctx:
        name = cameras.find_camera(ctx, cam).name
    for ref in (name, str(cam)):
        assert [j.camera_id for j in jobs_for_live_deployments(gov, cameras=[ref])] == [cam]
    assert jobs_for_live_deployments(gov, cameras=["no-such-camera"]) == []


# ---------------------------------------------------------------- the command line
import test_gov_cli  # noqa: E402

Cli = test_gov_cli.Cli
cli, parties = test_gov_cli.cli, test_gov_cli.parties  # fixtures: a real store, the parties made as real ones are


def test_cli_camera_edit_and_status(parties: Cli) -> None:
    c = parties
    c.login("alice")
    c.ok("camera", "add", "gate", "--location", "north gate")
    out = c.ok("camera", "edit", "gate", "--set", "analyse_fps=4", "--set", "loop=true", "--roi", "0,10,639,479",
               "--zone", "square")
    assert "camera 1 gate" in out and '"analyse_fps": 4.0' in out and "square" in out
    with c.session() as s:
        cam = s.get(Camera, 1)
        assert cam.settings == {"analyse_fps": 4.0, "roi": [0, 10, 639, 479], "loop": True} and cam.zone == "square"
    c.ok("camera", "edit", "1", "--set", "loop=default", "--roi", "none")  # by id; back to the defaults
    with c.session() as s:
        assert s.get(Camera, 1).settings == {"analyse_fps": 4.0}
    c.refused("camera", "edit", "gate", "--set", "analyse_fps=-2", match="analyse_fps")
    c.refused("camera", "edit", "gate", "--roi", "1,2,3", match="LEFT,TOP,RIGHT,BOTTOM")
    c.refused("camera", "edit", "gate", "--stream", "ftp://10.1.1.1/x", match="scheme 'ftp'")
    c.refused("camera", "edit", "no-such-camera", "--zone", "x", match="no camera named")
    assert len(c.events("camera.update.refused")) == 4 and len(c.events("camera.update")) == 2
    with c.session() as s:
        assert s.get(Camera, 1).settings == {"analyse_fps": 4.0}
    assert "name=gate  state=never run" in c.ok("camera", "status")
    c.login("ruth")  # a reviewer reads the status, but may not edit
    assert "state=never run" in c.ok("camera", "status")
    c.refused("camera", "edit", "gate", "--zone", "x", match="operator_admin")
    c.login("met")  # the force's supplier: not the camera's organisation
    c.refused("camera", "status", match="camera.status needs role")
