"""Crypto-shredding: an alert's personal data sealed under its own erasure key, and erased by
destroying that key (openlfr.rights.keys, openlfr.rights.erasure.wipe_alert).

One scripted alert (a crop of a real face when the shared data is there; an escalation, the
officer's resolution, a confirmation and an engagement outcome, each with a note) is checked:

* before erasure: the notes, the outcome's note and officer and the audit events' personal
  parts read in clear through the services, the read models and the audit reader, while the
  database itself (the SQLite file and its log; PostgreSQL's tables as text) never holds them
  in clear;
* after :func:`~openlfr.rights.erasure.wipe_alert`: the crop is gone, the notes are blank, the
  personal parts read "[erased]" (naming the erasure event), the chain verifies (in Python,
  with ``openlfr audit verify`` and with the outside procedure of docs/audit-verification.md),
  and a scan of the whole data directory finds no trace: not the crop, the alert's key, a note,
  the pipeline's row details, nor the names of the crop's and the key's files;
* a copy of the crop's file taken before the erasure (a backup of the blob folder) still
  decrypts under the store's key but no longer opens under the alert's.

Rules checked by disabling them (each made a test here fail): sealing the reviewer's note in
governance/reviews.py (the note is then found in the database), SQLite ``secure_delete`` in
store/engine.py (the erased row details and file names are then found in the database file)
and the log scrub after an erasure (``scrub_wal``: they are then found in the -wal file).
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
import typer
from govkit import KEY, Estate
from sqlalchemy import inspect, select, text
from typer.testing import CliRunner

from openlfr import audit
from openlfr.cli import audit as cli_audit
from openlfr.api import views
from openlfr.audit.consistency import check_store
from openlfr.audit.export import export_chain
from openlfr.errors import NotFoundError
from openlfr.governance import Governance, PermissionDenied, Role, outcomes, reviews
from openlfr.governance.audit_log import (
    AuditQuery,
    details_of,
    readable_details,
    search,
)
from openlfr.governance.retention import record_alert
from openlfr.pipeline.records import AlertRecord, store_alert
from openlfr.rights.erasure import wipe_alert
from openlfr.rights.keys import (
    BYTES_MAGIC,
    ERASED,
    alert_ref,
    key_of,
    media_bytes,
    open_bytes,
)
from openlfr.store import BlobStore
from openlfr.store.models import Alert, AuditEvent, Deployment, ErasureKey, MediaItem, WatchlistEntry

DOC = Path(__file__).resolve().parents[2] / "docs" / "audit-verification.md"
FACE = Path(os.environ.get("OPENLFR_DATA", "/nonexistent")) / "lfw" / "Colin_Powell" / "Colin_Powell_0001.jpg"
# what the people handling the alert wrote: personal data of the person seen and of the officer
ESCALATE = "young male in grey hoodie"
RESOLVE = "same grey hoodie, scar over the left eyebrow"
CONFIRM = "confirmed: scar and hoodie match the listed man"
OUTCOME = "spoken to outside the pharmacy on Cable Street"
OFFICER = "PC 4411 Ruth Okonkwo-Hale"
NOTES = (ESCALATE, RESOLVE, CONFIRM, OUTCOME, OFFICER)
TRACK = "track-7f3c1e-passer-by"  # a row detail the pipeline stored (deleted by the wipe)
ERASE = "alert.erase"


def _crop() -> bytes:
    """A face crop: the centre of a real LFW photo when the shared data is there, else a made-up image."""
    if FACE.is_file():
        img = cv2.imdecode(np.frombuffer(FACE.read_bytes(), np.uint8), cv2.IMREAD_COLOR)
        return cv2.imencode(".jpg", img[60:190, 60:190])[1].tobytes()
    img = np.random.default_rng(7).integers(0, 255, (96, 96, 3), dtype=np.uint8)
    return cv2.imencode(".png", img)[1].tobytes()


@dataclass
class Scripted:
    """One handled alert, and what its erasure must make unreadable."""

    alert_id: int
    media_id: int
    crop: bytes
    crop_blob: str
    key: bytes
    key_blob: str


def _scripted_alert(estate: Estate) -> Scripted:
    """An alert raised as the pipeline raises one, escalated, resolved, confirmed and given an outcome."""
    dep, cam, _ = estate.live_deployment()
    crop = _crop()
    with estate.gov.transaction() as ctx:
        d = ctx.session.get(Deployment, dep)
        entry = ctx.session.execute(select(WatchlistEntry).where(WatchlistEntry.watchlist_id == d.watchlist_id)
                                    .order_by(WatchlistEntry.id)).scalars().first()
        alert_id = store_alert(ctx, AlertRecord(
            deployment_id=dep, camera_id=cam, entry_id=entry.id, label=entry.label, score=0.83, at=ctx.now(),
            track_id=TRACK, frame_index=12, video_time=0.5, box=[10, 20, 60, 80], quality=0.9, crop=crop,
            snapshot_hash=d.snapshot_hash or "0" * 64), "matcher").alert_id
    with estate.gov.transaction() as ctx:
        reviews.review(ctx, estate.reviewer, alert_id, "escalate", ESCALATE)
    with estate.gov.transaction() as ctx:
        (esc,) = reviews.escalations(ctx, estate.officer)
        reviews.resolve_escalation(ctx, estate.officer, esc.id, "confirm", RESOLVE)
    second = estate.user("reviewer-2", Role.REVIEWER)
    with estate.gov.transaction() as ctx:
        reviews.review(ctx, second, alert_id, "confirm", CONFIRM)
        assert ctx.session.get(Alert, alert_id).review_outcome == "true"
    with estate.gov.transaction() as ctx:
        outcomes.record_outcome(ctx, estate.officer, alert_id, "spoken_to", OUTCOME, OFFICER)
    with estate.gov.transaction() as ctx:
        item = ctx.session.execute(select(MediaItem).where(MediaItem.alert_id == alert_id)).scalar_one()
        key_row = ctx.session.get(ErasureKey, alert_ref(alert_id))
        return Scripted(alert_id, item.id, crop, item.blob, key_of(ctx, alert_ref(alert_id)), key_row.blob)


def _db_text(gov: Governance) -> bytes:
    """Everything the database holds, as stored: the SQLite file with its log and index files,
    or every PostgreSQL table's rows as text, and the blobs it holds (PostgreSQL) as bytes."""
    if gov.engine.dialect.name == "sqlite":
        path = Path(gov.engine.url.database)
        return b"".join(p.read_bytes() for p in (path, path.with_name(path.name + "-wal"),
                                                 path.with_name(path.name + "-shm")) if p.exists())
    with gov.engine.connect() as conn:
        tables = inspect(conn).get_table_names()
        return "\n".join(str(row[0]) for t in tables
                         for row in conn.execute(text(f'SELECT t::text FROM "{t}" t'))).encode() + \
            b"".join(bytes(row[0]) for row in conn.execute(text("SELECT sealed FROM blobs")))


def _events(gov: Governance, *actions: str) -> list[AuditEvent]:
    with gov.sessions() as session:
        return list(session.execute(select(AuditEvent).where(AuditEvent.action.in_(actions))
                                    .order_by(AuditEvent.seq)).scalars())


def _personal_parts(estate: Estate, alert_id: int) -> dict[str, object]:
    """action -> the personal part as the auditor's reader shows it, for the alert's sealed events."""
    with estate.gov.reading() as ctx:
        rows, _ = search(ctx, estate.auditor, AuditQuery(), 0, 1000)
        shown = {}
        for e in rows:
            d = readable_details(ctx, e)
            if "personal" in d and (e.object_id == str(alert_id) or d.get("alert") == alert_id):
                shown[e.action] = d["personal"]
    return shown


def _views(estate: Estate, alert_id: int) -> tuple[list[str], tuple[str, str], tuple[str, str]]:
    """(review notes, (outcome note, officer), (escalation reason, resolution note)) as people read them."""
    with estate.gov.transaction() as ctx:
        out = views.alert_out(ctx, ctx.session.get(Alert, alert_id), ctx.user_of(estate.officer))
        (esc,) = reviews.escalations(ctx, estate.officer)
    return [r.note for r in out.reviews], (out.outcome.note, out.outcome.officer), (esc.reason, esc.resolution_note)


def _erase(estate: Estate, alert_id: int) -> None:
    with estate.gov.transaction() as ctx:
        wipe_alert(ctx, ctx.session.get(Alert, alert_id), actor="system:test", action=ERASE,
                   reason="erased under request 7")


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def test_personal_data_is_sealed_and_erasure_leaves_no_trace(estate: Estate, tmp_path: Path,
                                                             tmp_path_factory: pytest.TempPathFactory,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    gov = estate.gov
    s = _scripted_alert(estate)
    elsewhere = tmp_path_factory.mktemp("outside")  # what leaves the data directory: a backup, an export
    # the crop's blob as stored (its file, or its row in the database), copied out as a backup would
    (elsewhere / "crop-backup").write_bytes(gov.blob_store.sealed(s.crop_blob))

    # -- while the key lives: readable by the people entitled to read it ...
    assert _views(estate, s.alert_id) == ([ESCALATE, RESOLVE, CONFIRM], (OUTCOME, OFFICER), (ESCALATE, RESOLVE))
    shown = _personal_parts(estate, s.alert_id)
    assert shown["alert.escalate"] == {"note": ESCALATE} and shown["escalation.resolve"] == {"note": RESOLVE}
    assert shown["alert.confirm"] == {"note": CONFIRM}
    assert shown["alert.outcome"] == {"officer": OFFICER, "note": OUTCOME}
    assert shown["alert.record"]["score"] == 0.83 and shown["alert.record"]["entry"]
    with gov.transaction() as ctx:
        assert media_bytes(ctx, ctx.get(MediaItem, s.media_id, "media")) == s.crop
    # ... but never in clear in the database, nor in the audit events as stored
    stored = _db_text(gov)
    assert not [n for n in NOTES if n.encode() in stored]
    (outcome_event,) = _events(gov, "alert.outcome")
    assert details_of(outcome_event)["result"] == "spoken_to" and "officer" not in details_of(outcome_event)
    assert details_of(outcome_event)["personal"]["sealed"].startswith(f"sealed:{alert_ref(s.alert_id)}:")

    # -- erased
    _erase(estate, s.alert_id)
    with gov.transaction() as ctx:
        with pytest.raises(NotFoundError):
            media_bytes(ctx, ctx.get(MediaItem, s.media_id, "media"))
        assert key_of(ctx, alert_ref(s.alert_id)) is None
    assert _views(estate, s.alert_id) == (["", "", ""], ("", ""), ("", ""))
    (erasure,) = _events(gov, ERASE)
    shown = _personal_parts(estate, s.alert_id)
    assert set(shown) == {"alert.record", "alert.escalate", "escalation.resolve", "alert.confirm", "alert.outcome"}
    for part in shown.values():
        assert isinstance(part, str) and part.startswith(ERASED) and f"by event #{erasure.seq} ({ERASE})" in part
    assert not [n for n in NOTES if n in json.dumps(shown)]

    # the chain still verifies, and the store matches it ...
    with gov.sessions() as session:
        assert audit.verify(session).ok
        assert check_store(session, gov.blob_store).ok
    # ... at the command line (`openlfr audit verify`, the data directory being this one) ...
    monkeypatch.setenv("OPENLFR_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("OPENLFR_DATABASE_URL", gov.engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("OPENLFR_KEY", base64.b64encode(KEY).decode())
    from openlfr.config import get_settings

    get_settings.cache_clear()
    app = typer.Typer()
    app.callback()(lambda: None)
    cli_audit.register(app)
    verified = CliRunner().invoke(app, ["audit", "verify"])
    assert verified.exit_code == 0 and "chain OK" in verified.output and "store matches" in verified.output, \
        verified.output
    # ... and by the outside procedure, on an export that holds the ciphertext exactly as hashed
    export = elsewhere / "audit.jsonl"
    with gov.sessions() as session:
        assert export_chain(session, export, now=gov.clock()).ok
    exported = {json.loads(line)["seq"]: json.loads(line) for line in export.read_text().splitlines()[1:]}
    assert exported[outcome_event.seq]["details"] == outcome_event.details
    assert not [n for n in NOTES if n in export.read_text()]
    script = elsewhere / "verify_audit.py"
    script.write_text(re.search(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL).group(1))
    outside = subprocess.run([sys.executable, str(script), str(export)], capture_output=True, text=True,
                             cwd=elsewhere, check=False)
    assert outside.returncode == 0 and outside.stdout.startswith(f"OK: {len(exported)} events"), outside.stderr

    # -- a scan of the whole data directory: no trace of the crop, its key, a note, the row details
    if gov.blob_store.kind == "files":
        assert tmp_path in gov.blob_store.root.parents  # type: ignore[attr-defined]
    if gov.engine.dialect.name == "sqlite":
        assert tmp_path in Path(gov.engine.url.database).parents
    needles = {"the crop": s.crop, "a slice of the crop": s.crop[len(s.crop) // 2:][:64], "the alert's key": s.key,
               "the key, base64": base64.b64encode(s.key), "the key, hex": s.key.hex().encode(),
               "the crop's file name": s.crop_blob.encode(), "the key's file name": s.key_blob.encode(),
               "the track (row details)": TRACK.encode()} | {f"note {n!r}": n.encode() for n in NOTES}
    files = _files(tmp_path)
    # (with the blobs and the signing key in PostgreSQL there may be no file at all: the rows are scanned below)
    assert (files or gov.blob_store.kind == "database")
    assert any(p.name.endswith(".db") for p in files) == (gov.engine.dialect.name == "sqlite")
    found = [(what, str(p.relative_to(tmp_path))) for p in files for what, needle in needles.items()
             if needle in p.read_bytes()]
    assert found == []
    assert not [p for p in files if p.name in (s.crop_blob, s.key_blob)]
    if gov.engine.dialect.name == "postgresql":  # the live rows, blobs included (dead ones: until VACUUM, see the docs)
        stored = _db_text(gov)
        assert not [what for what, needle in needles.items() if needle in stored]

    # -- a backup of the crop's blob taken before the erasure: the store's key opens its outer
    # layer, the alert's key (destroyed) was needed for the rest
    backup = (elsewhere / "crop-backup").read_bytes()
    restored = BlobStore(elsewhere / "restored", KEY)
    restored.put_sealed(s.crop_blob, backup)
    inner = restored.get(s.crop_blob)
    assert inner.startswith(BYTES_MAGIC) and s.crop not in inner
    gov.blob_store.put_sealed(s.crop_blob, backup)  # put back where it was, under the media row's old name
    with gov.transaction() as ctx:
        assert open_bytes(ctx, alert_ref(s.alert_id), inner) is None
        # still erased
        ghost = MediaItem(kind="crop", alert_id=s.alert_id, blob=s.crop_blob)
        with pytest.raises(NotFoundError, match="erased"):
            media_bytes(ctx, ghost)
        ctx.session.expunge_all()
    gov.blob_store.delete(s.crop_blob)


def test_a_note_is_readable_through_the_audit_reader_only_by_auditors(estate: Estate) -> None:
    """The opened personal part is behind the audit log's own rule: a reviewer is refused (and audited)."""
    dep, cam, _ = estate.live_deployment()
    with estate.gov.transaction() as ctx:
        alert_id = record_alert(ctx, dep, cam, 0.8, ctx.now()).id
    with estate.gov.transaction() as ctx:
        reviews.review(ctx, estate.reviewer, alert_id, "dismiss", ESCALATE)
    with pytest.raises(PermissionDenied), estate.gov.reading() as ctx:
        search(ctx, estate.reviewer, AuditQuery(action="alert."))
    assert _events(estate.gov, "audit.read.refused")
    assert _personal_parts(estate, alert_id)["alert.dismiss"] == {"note": ESCALATE}
