"""The camera's periodic watchlist re-check is light: the snapshot is decrypted once per worker
process (cached by its hash), a re-check reads only the deployment's state, and it writes an
audit event only when something changed; every rule of the watchlist still holds at each
re-check (an agreement suspended during the run is noticed at the next one, and audited).
SQLite (blobs in files) and PostgreSQL (blobs in the database)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select

from pipekit import KEY, Clock, Estate  # (pipekit puts tests/governance on the path)
from govkit import FAKE_MODEL, fake_template
from openlfr.governance import Governance, Policy, agreements, deployments, watchlists
from openlfr.governance.schemas import WatchlistAdd
from openlfr.pipeline import camera as camera_module
from openlfr.pipeline.camera import CameraPipeline, DeploymentNotLive
from openlfr.pipeline.settings import CameraSettings
from openlfr.store.blobs import BlobStore
from openlfr.store.db_blobs import DatabaseBlobStore
from openlfr.store.models import AuditEvent, Deployment
from openlfr.video.frames import Frame

BLANK = np.zeros((90, 160, 3), np.uint8)  # nothing to detect: only the watchlist's upkeep runs
STEP_S = 1.5  # seconds of video between the frames given: each one is due for a re-check (below)


@pytest.fixture
def world(db_url: str, tmp_path: Path) -> Iterator[tuple[Governance, Estate]]:
    """A store with the estate's users, on the fixed test clock; no snapshot cached yet."""
    clock = Clock()
    gov = Governance(db_url, blob_root=tmp_path / "blobs", key=KEY, policy=Policy(), template_fn=fake_template,
                     clock=clock, migrate=False)
    estate = Estate(gov, clock)
    estate.setup_users()
    deployments.SNAPSHOTS.clear()  # (the same fake world in another test gives the same snapshot hash)
    yield gov, estate
    deployments.SNAPSHOTS.clear()
    gov.close()


def _live(estate: Estate, per_agreement: int = 2, agreement_count: int = 1) -> tuple[int, int, list[int]]:
    """(deployment, camera, agreements): a live deployment of images shared under ``agreement_count`` agreements."""
    ags = [estate.agreement() for _ in range(agreement_count)]
    images = [estate.share(ag, f"img-{a}-{i}".encode(), subject=f"S-{a}-{i}")
              for a, ag in enumerate(ags) for i in range(per_agreement)]
    wl = estate.watchlist(images)
    cam = estate.camera()
    dep = estate.request(wl, [cam])
    with estate.gov.transaction() as ctx:
        deployments.authorise(ctx, estate.officer2, dep)
        deployments.start(ctx, estate.admin, dep)
    return dep, cam, ags


def _snapshot_reads(monkeypatch: pytest.MonkeyPatch, gov: Governance, dep: int) -> list[str]:
    """Every read of ``dep``'s snapshot blob from now on, by either backend."""
    with gov.reading() as ctx:
        blob = ctx.session.get(Deployment, dep).snapshot_blob
    reads: list[str] = []
    for cls in (BlobStore, DatabaseBlobStore):
        original: Callable[..., bytes] = cls.get

        def spy(self: Any, blob_id: str, *args: Any, _original: Callable[..., bytes] = original,
                **kwargs: Any) -> bytes:
            if blob_id == blob:
                reads.append(type(self).__name__)
            return _original(self, blob_id, *args, **kwargs)

        monkeypatch.setattr(cls, "get", spy)
    return reads


def _rechecks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """One item per re-check the camera makes from now on."""
    calls: list[int] = []
    original = camera_module.recheck_watchlist

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(camera_module, "recheck_watchlist", counted)
    return calls


def _pipeline(gov: Governance, dep: int, cam: int) -> CameraPipeline:
    # the fake templates' model (the analyzer matches nothing here: no face in a blank frame)
    analyzer: Any = SimpleNamespace(model_id=FAKE_MODEL)
    settings = CameraSettings(watchlist_refresh_s=1.0, agreement_check_s=1e6, analyse_fps=1.0)
    return CameraPipeline(gov, dep, cam, settings, analyzer=analyzer, worker="pipeline:cam1")


def _frame(gov: Governance, i: int) -> Frame:
    """Frame ``i``, captured now by the services' clock (``STEP_S`` of video after the one before)."""
    return Frame(BLANK, i, i * STEP_S, wall=gov.clock() + timedelta(seconds=i * STEP_S))


def _events_after(gov: Governance, seq: int) -> list[AuditEvent]:
    with gov.reading() as ctx:
        rows = list(ctx.session.execute(select(AuditEvent).where(AuditEvent.seq > seq)
                                        .order_by(AuditEvent.seq)).scalars())
        ctx.session.expunge_all()
    return rows


def _last_seq(gov: Governance) -> int:
    with gov.reading() as ctx:
        return int(ctx.session.execute(select(func.max(AuditEvent.seq))).scalar_one())


def test_rechecks_decrypt_the_snapshot_once_and_write_nothing_when_nothing_changed(
        world: tuple[Governance, Estate], monkeypatch: pytest.MonkeyPatch) -> None:
    gov, estate = world
    dep, cam, _ = _live(estate)
    reads, rechecks = _snapshot_reads(monkeypatch, gov, dep), _rechecks(monkeypatch)
    pipe = _pipeline(gov, dep, cam)
    before_start = _last_seq(gov)
    pipe.start()
    assert reads == ["BlobStore" if gov.blob_store.kind == "files" else "DatabaseBlobStore"]  # the first load
    loads = [e for e in _events_after(gov, before_start) if e.action.startswith("deployment.")]
    assert [e.action for e in loads] == ["deployment.watchlist"]  # audited, as every first load is
    held, seq = pipe.watchlist, _last_seq(gov)
    assert held is not None and len(held.entry_ids) == 2
    for i in range(1, 9):
        pipe.process(_frame(gov, i))
    assert len(rechecks) == 8  # each frame was due for one
    assert len(reads) == 1  # the snapshot was decrypted once: every re-check used the cached one
    assert pipe.watchlist is held  # nothing changed ...
    assert [e.action for e in _events_after(gov, seq)] == []  # ... and nothing was written to the audit log
    pipe.finish()


def test_a_suspended_agreement_is_noticed_at_the_next_recheck_and_audited(
        world: tuple[Governance, Estate], monkeypatch: pytest.MonkeyPatch) -> None:
    gov, estate = world
    dep, cam, (agreement,) = _live(estate)
    reads, rechecks = _snapshot_reads(monkeypatch, gov, dep), _rechecks(monkeypatch)
    pipe = _pipeline(gov, dep, cam)
    pipe.start()
    pipe.process(_frame(gov, 1))
    pipe.process(_frame(gov, 2))
    seq = _last_seq(gov)
    with gov.transaction() as ctx:
        agreements.suspend(ctx, estate.supplier, agreement, "complaint under review")
    with pytest.raises(DeploymentNotLive, match="no longer in force"):
        pipe.process(_frame(gov, 3))  # the very next re-check: every image was shared under it
    assert len(rechecks) == 3 and len(reads) == 1 and pipe.watchlist is None
    refused = [e for e in _events_after(gov, seq) if e.actor == "pipeline:cam1"]
    assert [e.action for e in refused][:1] == ["deployment.watchlist.refused"]
    assert "no longer in force" in json.loads(refused[0].details)["reason"]
    pipe.finish()


def test_an_entry_past_its_review_date_is_dropped_at_the_next_recheck_and_audited_once(
        world: tuple[Governance, Estate], monkeypatch: pytest.MonkeyPatch) -> None:
    gov, estate = world
    today = estate.clock.now.date()
    ag = estate.agreement()
    images = [estate.share(ag, f"img-{i}".encode(), subject=f"S-{i}") for i in range(2)]
    wl = estate.watchlist([])
    with gov.transaction() as ctx:
        for i, (image, review) in enumerate(zip(images, [today, today + timedelta(days=2)])):
            watchlists.add_entry(ctx, estate.admin, WatchlistAdd(
                watchlist_id=wl, shared_image_id=image, label=f"p{i}", reason="warrant", review_date=review))
    cam = estate.camera()
    dep = estate.request(wl, [cam], hours=48)
    with gov.transaction() as ctx:
        deployments.authorise(ctx, estate.officer2, dep)
        deployments.start(ctx, estate.admin, dep)
    reads = _snapshot_reads(monkeypatch, gov, dep)
    pipe = _pipeline(gov, dep, cam)
    pipe.start()
    pipe.process(_frame(gov, 1))
    assert pipe.watchlist is not None and len(pipe.watchlist.entry_ids) == 2  # still its review day
    seq = _last_seq(gov)
    estate.clock.now = datetime.combine(today + timedelta(days=1), time(0, 0, 5), tzinfo=UTC)  # the night passes
    pipe.process(_frame(gov, 2))
    assert pipe.watchlist is not None and len(pipe.watchlist.entry_ids) == 1
    drops = [e for e in _events_after(gov, seq) if e.action.startswith("deployment.")]  # (and the hour's counters)
    assert [e.action for e in drops] == ["deployment.watchlist_drop"]
    assert json.loads(drops[0].details)["reason"] == "review date passed"
    seq = _last_seq(gov)
    for i in range(3, 6):
        pipe.process(_frame(gov, i))
    assert _events_after(gov, seq) == [] and len(pipe.watchlist.entry_ids) == 1 and len(reads) == 1
    pipe.finish()


def test_the_deployment_ending_is_noticed_at_the_next_recheck(
        world: tuple[Governance, Estate], monkeypatch: pytest.MonkeyPatch) -> None:
    gov, estate = world
    dep, cam, _ = _live(estate)
    pipe = _pipeline(gov, dep, cam)
    pipe.start()
    pipe.process(_frame(gov, 1))
    with gov.transaction() as ctx:
        deployments.end(ctx, estate.admin, dep, reason="operation over")
    seq = _last_seq(gov)
    with pytest.raises(DeploymentNotLive, match="not live"):
        pipe.process(_frame(gov, 2))
    assert pipe.watchlist is None
    assert [e.action for e in _events_after(gov, seq) if e.actor == "pipeline:cam1"][:1] == \
        ["deployment.watchlist.refused"]
    pipe.finish()
