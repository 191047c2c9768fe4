"""The store: migrations, encryption at rest, append-only ledger, transactions and bad input."""

from __future__ import annotations

import base64
import os
import stat
from datetime import timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from openlfr.errors import InputError, NoFaceError
from openlfr.governance import DuplicateError, Governance, RuleViolation, parse
from openlfr.governance import deployments, sharing
from openlfr.governance.schemas import AgreementCreate, DeploymentRequest, ShareImage
from openlfr.store import BlobStore, load_or_create_key, make_engine, upgrade
from openlfr.store.blobs import EncryptionKeyError
from openlfr.store.models import AuditEvent, Base, LedgerEntry, SharedImage

from govkit import Estate, as_image, fake_template, grounds
from test_gov_constraint_names import misnamed_constraints


def _stored(gov: Governance) -> dict[str, bytes]:
    """Every blob as stored (id -> sealed bytes): its files, or its rows in the database."""
    return {b: gov.blob_store.sealed(b) for b in sorted(gov.blob_store.ids())}


def test_migrations_match_the_models(db_url: str) -> None:
    engine = make_engine(db_url)
    upgrade(engine)  # idempotent on an already-migrated database
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        misnamed = misnamed_constraints(conn)  # names too, which compare_metadata does not check
    engine.dispose()
    assert diff == []
    assert misnamed == []


def test_fresh_database_is_created_by_migrations(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'new.db'}")
    upgrade(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT seq, hash FROM audit_head")).one() == (0, "0" * 64)
    engine.dispose()


def test_images_and_templates_are_encrypted_on_disk(estate: Estate, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    ok, jpeg = cv2.imencode(".jpg", rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    image = jpeg.tobytes()
    assert ok and image[:3] == b"\xff\xd8\xff"
    from openlfr.face.image_gate import gate_image

    stored = gate_image(image).data  # what is kept: the image re-encoded, metadata-free
    template = fake_template(stored)[0]
    ag = estate.agreement()
    image_id = estate.share(ag, image)
    stored_blobs = _stored(estate.gov)
    assert len(stored_blobs) == 2  # image + template
    if estate.gov.blob_store.kind == "files":  # where they are: files (SQLite), else rows (PostgreSQL)
        assert sorted(p.name for p in (tmp_path / "blobs").rglob("*") if p.is_file()) == sorted(stored_blobs)
    else:
        assert not (tmp_path / "blobs").exists()
    for body in stored_blobs.values():
        assert body.startswith(b"OLFR2") and b"\xff\xd8\xff" not in body and stored[100:132] not in body
        assert template.tobytes() not in body and template.tobytes()[:32] not in body
        assert template.astype(np.float64).tobytes()[:32] not in body
    with estate.gov.transaction() as ctx:
        row = ctx.session.get(SharedImage, image_id)
        assert ctx.blobs.get(row.image_blob) == stored
        np.testing.assert_array_equal(sharing.load_template(ctx, row), template)
    # The database holds no biometric data in clear either: only blob ids (SQLite), or the
    # blobs' ciphertext (PostgreSQL: every table as text, the blobs' bytes included)
    db_path = Path(estate.gov.engine.url.database or "")
    if db_path.is_file():
        assert template.tobytes()[:32] not in db_path.read_bytes()
    else:
        with estate.gov.engine.connect() as conn:
            dump = b"".join(bytes(r[0]) for r in conn.execute(text("SELECT sealed FROM blobs")))
            dump += "".join(str(r[0]) for r in conn.execute(text("SELECT t::text FROM shared_images t"))).encode()
        assert dump and stored[100:132] not in dump and template.tobytes()[:32] not in dump


def test_key_file_created_once_with_private_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENLFR_KEY", raising=False)
    key_file = tmp_path / "key"
    key = load_or_create_key(key_file)
    assert len(key) == 32 and stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert load_or_create_key(key_file) == key


def test_key_from_environment_and_wrong_key_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENLFR_KEY", base64.b64encode(b"k" * 32).decode())
    assert load_or_create_key(tmp_path / "unused") == b"k" * 32
    assert not (tmp_path / "unused").exists()
    store = BlobStore(tmp_path / "b", b"k" * 32)
    blob = store.put(b"secret")
    with pytest.raises(EncryptionKeyError, match="wrong key or tampered"):
        BlobStore(tmp_path / "b", b"x" * 32).get(blob)
    path = next(p for p in (tmp_path / "b").rglob(blob))
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(EncryptionKeyError):
        store.get(blob)
    monkeypatch.setenv("OPENLFR_KEY", "short")
    with pytest.raises(EncryptionKeyError):
        load_or_create_key(tmp_path / "unused")


def test_ledger_is_append_only_in_the_database(estate: Estate) -> None:
    estate.share(estate.agreement(), b"img")
    for sql in ("UPDATE ledger_entries SET category = 'x'", "DELETE FROM ledger_entries"):
        with pytest.raises(DBAPIError, match="append-only"), estate.gov.engine.begin() as conn:
            conn.execute(text(sql))
    with estate.gov.sessions() as session:
        assert session.execute(select(func.count()).select_from(LedgerEntry)).scalar_one() == 1


def _counts(estate: Estate, tmp_path: Path) -> tuple[int, int, int, int]:
    with estate.gov.sessions() as s:
        images = s.execute(select(func.count()).select_from(SharedImage)).scalar_one()
        ledger = s.execute(select(func.count()).select_from(LedgerEntry)).scalar_one()
        events = s.execute(text("SELECT count(*) FROM audit_events WHERE action NOT LIKE '%.refused'")).scalar_one()
    return images, ledger, events, len(estate.gov.blob_store.ids())


def test_duplicate_image_refused_without_partial_writes(estate: Estate, tmp_path: Path) -> None:
    ag = estate.agreement()
    estate.share(ag, b"same image")
    before = _counts(estate, tmp_path)
    with pytest.raises(DuplicateError, match="already shared under agreement"):
        estate.share(ag, b"same image", subject="S-2")
    assert _counts(estate, tmp_path) == before


def test_failure_mid_transaction_rolls_back_everything(estate: Estate, tmp_path: Path) -> None:
    ag = estate.agreement()
    before = _counts(estate, tmp_path)
    data = ShareImage(agreement_id=ag, category="wanted_by_court", warrant_ref="WA-2029-00123", reason="r",
                      subject_ref="S-1", image_date=estate.clock.now.date())
    with pytest.raises(NoFaceError), estate.gov.transaction() as ctx:
        sharing.share_image(ctx, estate.supplier, data, as_image(b"first, fine"))
        sharing.share_image(ctx, estate.supplier, data, as_image(b"noface second"))
    assert _counts(estate, tmp_path) == before  # the first share and its blobs are gone too


def test_rolled_back_purge_keeps_blobs(estate: Estate) -> None:
    from openlfr.governance import agreements

    ag = estate.agreement()
    image = estate.share(ag, b"img")
    with pytest.raises(RuntimeError), estate.gov.transaction() as ctx:
        blob = ctx.session.get(SharedImage, image).image_blob
        agreements.end(ctx, estate.supplier, ag, "x")
        raise RuntimeError("crash before commit")
    assert estate.gov.blob_store.exists(blob)
    with estate.gov.sessions() as s:
        assert s.get(SharedImage, image).deleted_at is None


def test_inverted_dates_refused() -> None:
    from datetime import UTC, datetime

    t = datetime(2030, 1, 1, tzinfo=UTC)
    with pytest.raises(InputError, match="valid_until must be after valid_from"):
        parse(AgreementCreate, operator="o", purpose="p", lawful_basis="b", valid_from=t, valid_until=t,
              image_limit=1, allowed_categories=["wanted_by_court"])
    with pytest.raises(InputError, match="end must be after start"):
        parse(DeploymentRequest, purpose="p", watchlist_id=1, camera_ids=[1], start=t, end=t - timedelta(hours=1),
              threshold=0.6, **grounds())
    with pytest.raises(InputError, match="timezone"):
        parse(AgreementCreate, operator="o", purpose="p", lawful_basis="b", valid_from=datetime(2030, 1, 1),
              valid_until=datetime(2030, 2, 1), image_limit=1, allowed_categories=["wanted_by_court"])
    with pytest.raises(InputError, match="image_limit"):
        parse(AgreementCreate, operator="o", purpose="p", lawful_basis="b", valid_from=t,
              valid_until=t + timedelta(days=1), image_limit=0, allowed_categories=["wanted_by_court"])


def test_overlapping_agreements_refused(estate: Estate) -> None:
    estate.agreement(days=10)
    with pytest.raises(RuleViolation, match="overlap"):
        estate.agreement(days=10, start_offset_days=5)
    estate.agreement(days=10, start_offset_days=10)  # back to back is fine


def test_overlapping_deployments_on_a_camera_refused(estate: Estate) -> None:
    wl = estate.watchlist([estate.share(estate.agreement(), b"img")])
    cam, cam2 = estate.camera("a"), estate.camera("b")
    estate.request(wl, [cam], hours=4)
    with pytest.raises(RuleViolation, match="overlapping"):
        estate.request(wl, [cam2, cam], offset_hours=2, hours=4)
    estate.request(wl, [cam2], offset_hours=2, hours=4)
    estate.request(wl, [cam], offset_hours=4, hours=4)


def test_deployment_window_in_the_past_refused(estate: Estate) -> None:
    wl = estate.watchlist([estate.share(estate.agreement(), b"img")])
    with pytest.raises(InputError, match="past"):
        estate.request(wl, [estate.camera()], offset_hours=-10, hours=2)


def test_unusable_image_is_a_clear_error(estate: Estate) -> None:
    with pytest.raises(NoFaceError, match="no face"):
        estate.share(estate.agreement(), b"noface at all")


def test_transaction_isolation_governance_objects(tmp_path: Path, db_url: str) -> None:
    """Two Governance objects on one store see each other's committed work (server-style use)."""
    from govkit import KEY, Clock

    clock = Clock()
    a = Governance(db_url, blob_root=tmp_path / "blobs", key=KEY, template_fn=fake_template, clock=clock)
    b = Governance(db_url, blob_root=tmp_path / "blobs", key=KEY, template_fn=fake_template, clock=clock)
    estate_a = Estate(a, clock)
    estate_a.setup_users()
    dep, cam, _ = estate_a.live_deployment(2)
    with b.transaction() as ctx:
        assert deployments.live_watchlist(ctx, dep, cam, clock.now).templates.shape == (2, 128)
    assert a.blob_store.ids() == b.blob_store.ids() != set()
    a.close()
    b.close()
    assert os.path.isdir(tmp_path / "blobs") == (a.blob_store.kind == "files")


def test_busy_store_is_retried_and_real_faults_are_not(estate: Estate) -> None:
    """``Governance.run`` (the camera workers' writes) waits out a busy store; it gives up on
    anything else at once, and on a store that stays busy after its attempts."""
    import sqlite3

    from sqlalchemy.exc import IntegrityError, OperationalError

    calls: list[int] = []

    def busy_twice(ctx) -> str:  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) <= 2:
            raise OperationalError("INSERT ...", {}, sqlite3.OperationalError("database is locked"))
        ctx.audit("worker-1", "test.write", "camera", 1)
        return "stored"

    assert estate.gov.run(busy_twice, first_wait=0.01) == "stored" and len(calls) == 3
    with estate.gov.transaction() as ctx:
        assert ctx.session.execute(select(AuditEvent).where(AuditEvent.action == "test.write")).scalars().all()

    calls.clear()

    def broken(ctx) -> None:  # type: ignore[no-untyped-def]
        calls.append(1)
        raise IntegrityError("INSERT ...", {}, sqlite3.IntegrityError("UNIQUE constraint failed"))

    with pytest.raises(IntegrityError):
        estate.gov.run(broken, first_wait=0.01)
    assert len(calls) == 1

    calls.clear()

    def always_busy(ctx) -> None:  # type: ignore[no-untyped-def]
        calls.append(1)
        raise OperationalError("INSERT ...", {}, sqlite3.OperationalError("database is locked"))

    with pytest.raises(OperationalError):
        estate.gov.run(always_busy, attempts=3, first_wait=0.01)
    assert len(calls) == 3


def test_reads_never_wait_for_a_write_in_progress(estate: Estate) -> None:
    """A read (``Governance.reading``: health, public pages) answers while a write transaction
    is open (on SQLite: a deferred read transaction, and write-ahead logging for commits)."""
    import threading
    import time as _time

    holding = threading.Event()
    release = threading.Event()

    def writer() -> None:
        with estate.gov.transaction() as ctx:
            ctx.audit("worker-1", "test.long_write", "camera", 1)
            ctx.session.flush()
            holding.set()
            release.wait(10)

    t = threading.Thread(target=writer)
    t.start()
    try:
        assert holding.wait(10)
        t0 = _time.perf_counter()
        with estate.gov.reading() as ctx:
            n = ctx.session.execute(select(func.count()).select_from(AuditEvent)).scalar_one()
        assert _time.perf_counter() - t0 < 0.5 and n > 0
    finally:
        release.set()
        t.join(10)
