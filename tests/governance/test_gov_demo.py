"""``openlfr demo-setup``: cameras streaming the shared clips (paced, looping), Lin-Manuel
Miranda on the watchlist, a live deployment; rerunning it on the demo store. (Fake templates:
the real enrolment runs in the slow test of test_gov_cli.py and in the serve test.)"""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest
from sqlalchemy import select

from openlfr.cli.demo import DEMO_CAMERA_SETTINGS, demo_recording
from openlfr.store.models import Camera, Deployment, User, WatchlistEntry
import test_gov_cli

PW, Cli = test_gov_cli.PW, test_gov_cli.Cli
cli, parties = test_gov_cli.cli, test_gov_cli.parties  # fixtures: a real store, the command line


def test_demo_streams_the_clips_and_reruns(cli: Cli, data_dir: Path) -> None:
    video = data_dir / "video"
    if not (video / "short_hamilton_clip.mp4").is_file():
        pytest.skip(f"the shared clips are not in {video}")
    out = cli.ok("demo-setup", "--count", "2", "--password", PW)
    assert "demo estate ready" in out and "chain OK" in out and "next: openlfr serve" in out
    assert "log in as ruth" in out and "Lin-Manuel Miranda" in out
    assert re.search(r"3 of 3 images shared onto the watchlist \(\d+ s\)", out), out  # the closing summary
    assert f"dana: {PW} (dpo, Estate Ltd)" in out  # the estate's data protection officer, with a password
    with cli.session() as s:
        cams = {c.name: c for c in s.execute(select(Camera)).scalars()}
        assert Path(cams["north-gate"].stream_url) == (video / "short_hamilton_clip.mp4").resolve()
        assert Path(cams["station-exit"].stream_url) == (video / "street_1080p.mp4").resolve()
        assert all(c.settings == DEMO_CAMERA_SETTINGS for c in cams.values())
        labels = list(s.execute(select(WatchlistEntry.label)).scalars())
        assert labels[0] == "lin-manuel-miranda" and len(labels) == 3
        (dep,) = s.execute(select(Deployment)).scalars()
        assert dep.status == "live" and {c.id for c in dep.cameras} == {c.id for c in cams.values()}
        dpo = s.execute(select(User).where(User.name == "dana")).scalar_one()
        assert (dpo.role, dpo.organisation, dpo.active) == ("dpo", "Estate Ltd", True)
    cli.login("dana")  # the demo password works for the DPO too
    cli.ok("logout")
    # the README's command again: the demo is there, so it says so and succeeds
    again = cli.ok("demo-setup")
    assert "already set up" in again and f"deployment {dep.id} is live" in again and "break-glass" in again
    # once its deployment has ended, a rerun starts a fresh one by the same steps (it needs the password)
    cli.login("alice")
    cli.ok("deployment", "end", str(dep.id), "--reason", "demo over")
    cli.ok("logout")
    cli.refused("demo-setup", match="no longer live")
    out = cli.ok("demo-setup", "--password", PW)
    assert "requested, authorised and started" in out
    with cli.session() as s:
        live = s.execute(select(Deployment).where(Deployment.status == "live")).scalars().one()
        assert live.id != dep.id and len(live.cameras) == 2
    assert len(cli.events("deployment.start")) == 2


def test_demo_refuses_a_store_that_is_not_the_demo(parties: Cli) -> None:
    parties.refused("demo-setup", "--count", "1", match="holds no demo")


def test_demo_recording_is_copied_privately_into_the_recording_folder(
        tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clip = data_dir / "video" / "short_hamilton_clip.mp4"
    if not clip.is_file():
        pytest.skip("no shared clips")
    monkeypatch.setenv("OPENLFR_CAMERA_FILE_ROOTS", str(tmp_path / "recordings"))
    where, note = demo_recording(clip)
    assert where == tmp_path / "recordings" / "demo" / clip.name and "copied" in note
    assert where.read_bytes() == clip.read_bytes() and stat.S_IMODE(where.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "recordings").stat().st_mode) == 0o700
    monkeypatch.setenv("OPENLFR_CAMERA_FILE_ROOTS", str(data_dir))
    assert demo_recording(clip) == (clip.resolve(), "")  # inside a recording folder: read in place
    assert demo_recording(tmp_path / "missing.mp4")[0] is None
