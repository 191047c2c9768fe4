"""Tampering outside the audit chain is found: the chain still verifies, but the store no
longer says what the log recorded (``openlfr.audit.consistency``; ``openlfr audit verify`` and
``POST /api/audit/verify`` run it). SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from govkit import Estate
from openlfr import audit
from openlfr.audit.consistency import check_store
from openlfr.governance import retention, reviews
from openlfr.store.models import SharedImage


def _problems(estate: Estate) -> list[str]:
    with estate.gov.transaction() as ctx:
        assert audit.verify(ctx.session).ok  # the chain itself is untouched every time
        return check_store(ctx.session, estate.gov.blob_store).problems


@pytest.fixture
def world(estate: Estate) -> tuple[Estate, int, int, list[int]]:
    """A live deployment of 3 shared images and one settled (dismissed) alert."""
    dep, cam, images = estate.live_deployment()
    with estate.gov.transaction() as ctx:
        alert = retention.record_alert(ctx, dep, cam, 0.8, ctx.now()).id
        reviews.review(ctx, estate.reviewer, alert, "dismiss", "someone else")
    assert _problems(estate) == []
    return estate, dep, alert, images


def _raw(estate: Estate, *statements: str) -> None:
    with estate.gov.engine.begin() as conn:
        for sql in statements:
            conn.execute(text(sql))


def test_a_ledger_row_deleted_after_dropping_its_trigger(world) -> None:  # type: ignore[no-untyped-def]
    estate, _, _, images = world
    if estate.gov.engine.dialect.name == "sqlite":
        _raw(estate, "DROP TRIGGER ledger_no_delete", f"DELETE FROM ledger_entries WHERE shared_image_id = {images[0]}")
    else:
        _raw(estate, "ALTER TABLE ledger_entries DISABLE TRIGGER ledger_no_change",
             f"DELETE FROM ledger_entries WHERE shared_image_id = {images[0]}")
    assert any(f"image {images[0]}: the ledger has no 'shared' row" in p for p in _problems(estate))


def test_a_changed_alert_outcome(world) -> None:  # type: ignore[no-untyped-def]
    estate, _, alert, _ = world
    _raw(estate, f"UPDATE alerts SET review_outcome = 'true' WHERE id = {alert}")
    settled = f"alert {alert}: outcome 'true', but the audit log settled it as 'false'"
    assert any(settled in p for p in _problems(estate))


def test_a_changed_threshold(world) -> None:  # type: ignore[no-untyped-def]
    estate, dep, _, _ = world
    _raw(estate, f"UPDATE deployments SET threshold = 0.05 WHERE id = {dep}")
    assert any(f"deployment {dep}: threshold 0.05" in p for p in _problems(estate))


@pytest.mark.parametrize("how", ["deleted", "altered", "re-encrypted"])
def test_a_deleted_or_altered_image_file(world, how: str) -> None:  # type: ignore[no-untyped-def]
    estate, _, _, images = world
    store = estate.gov.blob_store  # its files, or its rows in the database (PostgreSQL)
    with estate.gov.transaction() as ctx:
        blob = ctx.session.get(SharedImage, images[1]).image_blob
    sealed = store.sealed(blob)
    store.delete(blob)
    if how == "altered":
        data = bytearray(sealed)
        data[-5] ^= 0x01
        store.put_sealed(blob, bytes(data))
    elif how == "re-encrypted":  # someone with the key swaps in another picture under the same id
        store.put_sealed(blob, store.keyring.seal(b"another face", blob.encode()))
    assert any(f"image {images[1]}: its encrypted image file is missing or altered" in p for p in _problems(estate))


def test_a_swapped_snapshot_and_a_forged_ledger_row(world) -> None:  # type: ignore[no-untyped-def]
    estate, dep, _, images = world
    store = estate.gov.blob_store
    with estate.gov.transaction() as ctx:
        from openlfr.store.models import Deployment

        snap = ctx.session.get(Deployment, dep).snapshot_blob
    store.delete(snap)
    store.put_sealed(snap, store.keyring.seal(b'{"entries": []}', snap.encode()))
    # a ledger row for an image the log never shared (inserting needs no trigger change)
    with estate.gov.transaction() as ctx:
        from openlfr.store.models import LedgerEntry

        row = ctx.session.query(LedgerEntry).first()
        ctx.session.add(LedgerEntry(kind="deleted", shared_image_id=row.shared_image_id, agreement_id=row.agreement_id,
                                    supplier_id=row.supplier_id, sha256=row.sha256, category=row.category,
                                    reason="forged", subject_ref=row.subject_ref, image_date=row.image_date,
                                    actor="nobody", at=row.at))
    problems = _problems(estate)
    assert any(f"deployment {dep}: its encrypted snapshot file is missing or altered" in p for p in problems)
    assert any(f"a 'deleted' row for image {row.shared_image_id}, which the audit log never deleted" in p
               for p in problems), problems
