"""Blobs in the database (openlfr.store.db_blobs): the default on PostgreSQL, so that every host
and API replica reads the same crops and snapshots. They are sealed exactly as the files are,
commit or roll back with the rows that refer to them, are resealed by a key rotation, and the
audit checkpoint signing key is one row every host shares. Run on both databases (on SQLite
with the database backend chosen explicitly; its default stays files)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from govkit import KEY, Clock, Estate, as_image, fake_template
from openlfr.audit import checkpoints as cps
from openlfr.config import get_settings
from openlfr.errors import InputError, NotFoundError
from openlfr.governance import Governance, Policy, deployments, retention
from openlfr.governance.retention import referenced_blobs
from openlfr.pipeline.worker import StoreConfig
from openlfr.rights.keys import media_bytes
from openlfr.store import db_blobs
from openlfr.store.blobs import EncryptionKeyError
from openlfr.store.db_blobs import DatabaseBlobStore, blob_backend
from openlfr.store.keys import Keyring, open_keyring
from openlfr.store.models import AuditCheckpoint, MediaItem, SharedImage, StoredBlob


def _host(db_url: str, folder: Path, clock: Clock) -> Governance:
    """One host's Governance on the shared store, its own blob folder (unused: the blobs are rows)."""
    return Governance(db_url, blob_root=folder / "blobs", key=KEY, policy=Policy(), template_fn=fake_template,
                      clock=clock, migrate=False, blobs="database")


@pytest.fixture
def host_a(db_url: str, tmp_path: Path) -> Iterator[Governance]:
    gov = _host(db_url, tmp_path / "host-a", Clock())
    yield gov
    gov.close()


def _rows(gov: Governance) -> dict[str, bytes]:
    """The ``blobs`` table as stored: id -> sealed bytes (named secrets included)."""
    with gov.engine.connect() as conn:
        return {i: bytes(b) for i, b in conn.execute(select(StoredBlob.id, StoredBlob.sealed))}


def test_the_backend_follows_the_database_and_the_setting(db_url: str, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    assert blob_backend("sqlite:///x.db", "auto") == "files"
    assert blob_backend("postgresql+psycopg://u@h/db", "auto") == "database"
    assert blob_backend("sqlite:///x.db", "database") == "database"
    with pytest.raises(InputError, match="unknown blob backend"):
        blob_backend("sqlite:///x.db", "s3")
    on_pg = not db_url.startswith("sqlite")
    gov = Governance(db_url, blob_root=tmp_path / "blobs", key=KEY, migrate=False)  # the default: auto
    assert gov.blob_store.kind == ("database" if on_pg else "files")
    gov.close()
    monkeypatch.setenv("OPENLFR_BLOBS", "files" if on_pg else "database")  # the setting turns it round
    get_settings.cache_clear()
    gov = Governance(db_url, blob_root=tmp_path / "blobs", key=KEY, migrate=False)
    assert gov.blob_store.kind == ("files" if on_pg else "database")
    gov.close()
    # camera workers use the backend their parent resolved, whatever their own settings say
    monkeypatch.setenv("OPENLFR_DATABASE_URL", db_url)
    monkeypatch.setenv("OPENLFR_KEY", base64.b64encode(KEY).decode())
    get_settings.cache_clear()
    config = StoreConfig.from_settings()
    assert config.blobs == ("files" if on_pg else "database")
    monkeypatch.delenv("OPENLFR_BLOBS")
    get_settings.cache_clear()
    worker = config.governance()
    assert worker.blob_store.kind == config.blobs
    worker.close()


def test_blobs_round_trip_in_the_database(host_a: Governance) -> None:
    store = host_a.blob_store
    assert isinstance(store, DatabaseBlobStore)
    blob = store.put(b"a face crop")
    assert store.get(blob) == b"a face crop" and store.exists(blob) and blob in store.ids()
    assert store.sealed(blob).startswith(b"OLFR2") and b"a face crop" not in store.sealed(blob)
    with host_a.transaction() as ctx:  # a transaction reads its own writes
        inner = ctx.blobs.put(b"written in a transaction")
        assert ctx.blobs.get(inner) == b"written in a transaction"
    assert DatabaseBlobStore(host_a.engine, KEY).get(inner) == b"written in a transaction"  # committed
    with pytest.raises(RuntimeError), host_a.transaction() as ctx:
        ctx.blobs.delete(inner)
        with pytest.raises(NotFoundError):  # gone, as this transaction sees it
            ctx.blobs.get(inner)
        raise RuntimeError("rolled back")
    assert store.get(inner) == b"written in a transaction"  # the deletion rolled back with it
    with host_a.transaction() as ctx:
        ctx.blobs.delete(inner)
    assert not store.exists(inner) and inner not in store.ids()
    with pytest.raises(NotFoundError, match="does not exist"):
        store.get(inner)
    with pytest.raises(InputError, match="invalid blob id"):
        store.get("../../etc/passwd")
    # the id is bound in: the sealed bytes under another id do not open
    other = "ab" * 16
    store.put_sealed(other, store.sealed(blob))
    with pytest.raises(EncryptionKeyError, match="wrong key or tampered"):
        store.get(other)
    with pytest.raises(EncryptionKeyError):  # nor under another key
        DatabaseBlobStore(host_a.engine, bytes(32)).get(blob)
    store.delete(blob)
    store.delete(blob)  # no error when already gone
    assert not (host_a.blob_store.secret(cps.KEY_FILE_NAME).load())  # nothing signed yet


def test_a_rolled_back_transaction_leaves_no_blob(host_a: Governance) -> None:
    before = _rows(host_a)
    with pytest.raises(RuntimeError), host_a.transaction() as ctx:
        for _ in range(3):
            ctx.blobs.put(b"a blob of a transaction that never commits")
        raise RuntimeError("crash before commit")
    assert _rows(host_a) == before  # nothing to sweep up: the rows went with the transaction
    with host_a.transaction() as ctx:
        assert ctx.blobs.remove_orphans(set(), 0.0) == (0, 0)


def test_a_second_host_with_an_empty_blob_folder_reads_the_crop_and_the_snapshot(
        db_url: str, tmp_path: Path) -> None:
    clock = Clock()
    a = _host(db_url, tmp_path / "host-a", clock)
    estate = Estate(a, clock)
    estate.setup_users()
    dep, cam, _ = estate.live_deployment()
    with a.transaction() as ctx:
        alert = retention.record_alert(ctx, dep, cam, 0.9, clock.now)
        crop = retention.record_media(ctx, "crop", dep, cam, b"the face crop", clock.now, alert_id=alert.id).id
        templates_a = deployments.live_watchlist(ctx, dep, cam, clock.now).templates
    # another machine: the same PostgreSQL store (blobs in the database by default there), its own empty folder
    folder_b = tmp_path / "host-b"
    b = Governance(db_url, blob_root=folder_b / "blobs", key=KEY, clock=clock, migrate=False,
                   blobs=None if a.engine.dialect.name == "postgresql" else "database")
    assert b.blob_store.kind == "database"
    deployments.SNAPSHOTS.clear()  # as in a fresh process: the snapshot is read from the database
    with b.transaction() as ctx:
        assert media_bytes(ctx, ctx.get(MediaItem, crop, "media")) == b"the face crop"
        np.testing.assert_array_equal(deployments.live_watchlist(ctx, dep, cam, clock.now).templates, templates_a)
    assert not folder_b.exists() and not (tmp_path / "host-a").exists()  # no file on either host
    assert b.signer.public_key() == a.signer.public_key() is not None  # the checkpoints' one key
    a.close()
    b.close()


def test_the_table_holds_only_ciphertext(host_a: Governance) -> None:
    estate = Estate(host_a, Clock())
    estate.setup_users()
    image = as_image(b"a face to share")
    shared = estate.share(estate.agreement(), image)
    template = fake_template(image)[0]
    with host_a.transaction() as ctx:
        row = ctx.session.get(SharedImage, shared)
        clean = ctx.blobs.get(row.image_blob)
        blobs = {row.image_blob, row.template_blob}
        ctx.checkpoint("test")  # the signing key: a row too
    rows = _rows(host_a)
    assert blobs | {cps.KEY_FILE_NAME} <= set(rows)
    dump = b"".join(rows.values())
    assert all(body.startswith(b"OLFR2") for body in rows.values())
    assert clean[40:72] not in dump and b"IHDR" not in dump and template.tobytes()[:32] not in dump
    raw = host_a.signer._key.private_bytes_raw()  # type: ignore[union-attr]
    assert raw not in dump and raw.hex().encode() not in dump


def test_rotation_reseals_the_database_blobs(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from openlfr.cli import keys as cli_keys

    monkeypatch.setenv("OPENLFR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("OPENLFR_DATABASE_URL", db_url)
    monkeypatch.setenv("OPENLFR_BLOBS", "database")
    monkeypatch.delenv("OPENLFR_KEY", raising=False)
    get_settings.cache_clear()
    gov = Governance(migrate=False)  # the configured store, its key file made now
    old = open_keyring().primary_key
    with gov.transaction() as ctx:
        made = {ctx.blobs.put(f"blob {i}".encode()): f"blob {i}".encode() for i in range(7)}
        ctx.audit("system:test", "test.event", "thing", 1)
        ctx.checkpoint("before the rotation")  # the signing key, sealed under the old key
    public = gov.signer.public_key()
    assert public is not None
    doomed = sorted(made)[-1]  # deleted while the rotation runs: it must not come back
    monkeypatch.setattr(db_blobs, "RESEAL_BATCH", 3)

    def progress(where: Path, outcome: str) -> None:
        if outcome == "resealed" and gov.blob_store.exists(doomed):
            gov.blob_store.delete(doomed)

    result = cli_keys.rotate_store(progress=progress, gov=gov)
    ring = Keyring.from_file(tmp_path / "data" / "key", create=False)
    assert result.new_key == ring.primary and ring.rotation is None
    assert result.gone == 1 and result.resealed == 7 and result.unreadable == 0  # 6 blobs + the signing key
    rows = _rows(gov)
    assert doomed not in rows and all(body[5:9].hex() == ring.primary for body in rows.values())
    del made[doomed]
    fresh, stale = DatabaseBlobStore(gov.engine, ring), DatabaseBlobStore(gov.engine, old)
    assert {b: fresh.get(b) for b in made} == made
    with pytest.raises(EncryptionKeyError):
        stale.get(next(iter(made)))
    assert cps.Signer(fresh.secret(cps.KEY_FILE_NAME), ring).public_key() == public  # the same key, resealed
    gov.close()


def test_the_signing_key_is_one_row_shared_by_the_hosts(db_url: str, tmp_path: Path) -> None:
    clock = Clock()
    a, b = _host(db_url, tmp_path / "host-a", clock), _host(db_url, tmp_path / "host-b", clock)
    with pytest.raises(RuntimeError), a.transaction() as ctx:  # a first checkpoint that rolls back ...
        ctx.audit("system:test", "test.event", "thing", 1)
        ctx.checkpoint("rolled back")
        raise RuntimeError("crash")
    assert a.blob_store.secret(cps.KEY_FILE_NAME).load() is None  # ... leaves no key, stored or in memory
    assert a.signer._key is None
    with b.transaction() as ctx:
        ctx.audit("system:test", "test.event", "thing", 2)
        ctx.checkpoint("host b")
    with a.transaction() as ctx:
        ctx.audit("system:test", "test.event", "thing", 3)
        ctx.checkpoint("host a")
    with a.reading() as ctx:
        signed = [cps._plain(r) for r in ctx.session.execute(select(AuditCheckpoint)).scalars()]
    assert len(signed) == 2 and len({c.public_key for c in signed}) == 1 and all(map(cps.signature_ok, signed))
    assert a.signer.public_key() == b.signer.public_key() == signed[0].public_key
    assert not list(tmp_path.rglob(cps.KEY_FILE_NAME))  # not a file on either host
    with pytest.raises(EncryptionKeyError):  # sealed: another keyring cannot open it
        cps.Signer(a.blob_store.secret(cps.KEY_FILE_NAME), Keyring.single(bytes(32))).public_key()
    a.close()
    b.close()


def test_orphan_rows_are_swept_and_referenced_ones_kept(host_a: Governance) -> None:
    estate = Estate(host_a, Clock())
    estate.setup_users()
    estate.live_deployment()
    stray = host_a.blob_store.put(b"stored, then never referred to by any row")
    with host_a.transaction() as ctx:
        assert retention.sweep(ctx).orphan_blobs_removed == 0  # too recent: might belong to a write in progress
        report = retention.sweep(ctx, orphan_grace_s=0)
        referenced = referenced_blobs(ctx)
    assert report.orphan_blobs_removed == 1 and report.temp_files_removed == 0
    assert host_a.blob_store.ids() == referenced and stray not in referenced
    assert cps.KEY_FILE_NAME in _rows(host_a)  # the signing key is not an orphan
