"""A ``kill -9`` during blob writes leaves half-written files and files of a transaction that
never committed; the next retention sweep (run when ``openlfr serve`` starts, and every few
minutes) removes them, and nothing a row refers to. With the blobs in the database
(PostgreSQL) the killed transaction's blobs die with it: nothing is left to remove."""

from __future__ import annotations

import base64
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import cv2
import numpy as np
from govkit import KEY, Estate
from openlfr.governance import retention
from openlfr.governance.retention import referenced_blobs

WRITER = textwrap.dedent("""
    import base64, sys
    from openlfr.governance import Governance
    gov = Governance(sys.argv[1], blob_root=sys.argv[2], key=base64.b64decode(sys.argv[3]), migrate=False)
    big = bytes(64 * 1024 * 1024)
    with gov.transaction() as ctx:
        for _ in range(3):
            ctx.blobs.put(b"a blob of a transaction that will never commit")
        print("ready", flush=True)
        while True:
            ctx.blobs.put(big if gov.blob_store.kind == "files" else b"more")  # killed during one of these writes
""")


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def test_kill_9_during_blob_writes_then_a_sweep_leaves_no_orphan(estate: Estate, db_url: str, tmp_path: Path) -> None:
    estate.live_deployment()
    root = tmp_path / "blobs"
    store = estate.gov.blob_store  # files (SQLite), or rows of the database (PostgreSQL)
    before = {p.name for p in _files(root)} | store.ids()
    proc = subprocess.Popen([sys.executable, "-c", WRITER, db_url, str(root), base64.b64encode(KEY).decode()],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    if store.kind == "database":  # the blobs are rows of the writer's transaction: killed, they never were
        time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert not _files(root) and store.ids() == before
        with estate.gov.transaction() as ctx:
            report = retention.sweep(ctx, orphan_grace_s=0)
            assert report.temp_files_removed == report.orphan_blobs_removed == 0
            assert store.ids() == before == referenced_blobs(ctx)
        return
    deadline = time.monotonic() + 60
    while True:  # freeze it while a write is half done, then kill it there
        assert time.monotonic() < deadline, "never caught a write in progress"
        if any(p.name.endswith(".tmp") for p in _files(root)):
            proc.send_signal(signal.SIGSTOP)
            if any(p.name.endswith(".tmp") for p in _files(root)):
                break
            proc.send_signal(signal.SIGCONT)
        time.sleep(0.001)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    left = [p for p in _files(root) if p.name not in before]
    assert any(p.name.endswith(".tmp") for p in left), left  # a half-written file...
    assert sum(not p.name.endswith(".tmp") for p in left) >= 3  # ...and files no row refers to

    with estate.gov.transaction() as ctx:
        assert retention.sweep(ctx).temp_files_removed == 0  # too recent: might still be being written
        report = retention.sweep(ctx, orphan_grace_s=0)  # as the sweep does an hour later
        referenced = referenced_blobs(ctx)
    assert report.temp_files_removed >= 1 and report.orphan_blobs_removed >= 3
    assert {p.name for p in _files(root)} == before == referenced  # exactly the referenced files remain
    with estate.gov.transaction() as ctx:
        from openlfr.audit.consistency import check_store

        assert check_store(ctx.session, estate.gov.blob_store).ok


def test_a_sweep_keeps_every_blob_a_row_refers_to(estate: Estate, tmp_path: Path) -> None:
    """Signage photos, alert crops and the alerts' erasure keys are blobs too: an orphan sweep
    that missed one would destroy a notice's evidence, or erase an alert nobody asked to erase."""
    from openlfr.rights.keys import alert_ref, key_of, media_bytes

    dep, cam, _ = estate.live_deployment()
    notice = cv2.imencode(".png", np.full((40, 60, 3), 200, np.uint8))[1].tobytes()
    estate.signage(dep, [cam], photo=notice)
    now = estate.clock.now
    with estate.gov.transaction() as ctx:
        alert = retention.record_alert(ctx, dep, cam, 0.9, now)
        crop = retention.record_media(ctx, "crop", dep, cam, b"a face crop", now, alert_id=alert.id)
        ids = (alert.id, crop.id)
    with estate.gov.transaction() as ctx:
        retention.sweep(ctx, orphan_grace_s=0)
    with estate.gov.transaction() as ctx:
        from openlfr.store.models import MediaItem, SignageRecord

        photos = [r.photo_blob for r in ctx.session.query(SignageRecord).all() if r.photo_blob]
        assert photos and all(estate.gov.blob_store.get(b) for b in photos)
        assert key_of(ctx, alert_ref(ids[0])) is not None
        assert media_bytes(ctx, ctx.session.get(MediaItem, ids[1])) == b"a face crop"
