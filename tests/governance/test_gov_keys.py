"""Everything biometric encrypted at rest: private modes, a key file apart from the data,
and ``openlfr key rotate`` (audited, and safe to kill at any moment). The key and rotation
tests run on both stores: SQLite with its blobs in files, PostgreSQL with its blobs in the
database (``store_home``)."""

from __future__ import annotations

import base64
import json
import os
import random
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import typer
from sqlalchemy import select
from typer.testing import CliRunner

from openlfr import audit
from openlfr.cli import keys as cli_keys
from openlfr.config import get_settings
from openlfr.audit import checkpoints
from openlfr.evaluation import facecache
from openlfr.governance import Governance
from openlfr.store import open_blob_store
from openlfr.store.blobs import BlobBackend, BlobStore, EncryptionKeyError
from openlfr.store.keys import MAGIC_V1, MAGIC_V2, Keyring, key_id, open_keyring, rotation_lock
from openlfr.store.models import AuditEvent
from openlfr.store.settings import blob_dir, data_dir, eval_cache_dir, key_file

runner = CliRunner()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A data directory of its own (not yet created), the default SQLite store, a key file."""
    monkeypatch.setenv("OPENLFR_DATA_DIR", str(tmp_path / "data"))
    for name in ("OPENLFR_KEY", "OPENLFR_KEY_FILE", "OPENLFR_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    yield tmp_path / "data"
    get_settings.cache_clear()


@pytest.fixture
def store_home(home: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """:func:`home`, its store the default SQLite file (blobs in files) or the test PostgreSQL
    database (blobs in the database)."""
    if not db_url.startswith("sqlite"):
        monkeypatch.setenv("OPENLFR_DATABASE_URL", db_url)
        get_settings.cache_clear()
    return home


def _store(gov: Governance, key: bytes | Keyring) -> BlobBackend:
    """``gov``'s blobs (its files, or its rows in the database) opened with ``key``."""
    return open_blob_store(gov.engine, key=key)


def _sealed(gov: Governance) -> dict[str, bytes]:
    """Every blob as stored (id -> sealed bytes)."""
    return {b: gov.blob_store.sealed(b) for b in gov.blob_store.ids()}


def _owner(sealed: bytes) -> str:
    """The id of the key sealed bytes are under (or their magic, for the earlier format)."""
    return sealed[5:9].hex() if sealed.startswith(MAGIC_V2) else sealed[:5].decode()


@pytest.fixture
def app() -> typer.Typer:
    main = typer.Typer()

    @main.callback()
    def _root() -> None:
        """openlfr (test)"""

    cli_keys.register(main)
    return main


def _face_data(n: int = 6, dim: int = 128) -> facecache.FaceData:
    rng = np.random.default_rng(1)
    return facecache.FaceData(
        [Path(f"/faces/Jane_Doe/Jane_Doe_{i:04d}.jpg") for i in range(n)],
        rng.standard_normal((n, dim)).astype(np.float32), rng.standard_normal((n, dim)).astype(np.float32),
        rng.random(n).astype(np.float32), np.ones(n, bool), np.full(n, "mmod", dtype="<U8"),
    )


def _private(root: Path) -> list[Path]:
    """Every path under ``root`` (and itself) that group or others could use."""
    loose = [root] if stat.S_IMODE(root.stat().st_mode) & 0o077 else []
    return loose + [p for p in root.rglob("*") if stat.S_IMODE(p.lstat().st_mode) & 0o077]


def _blobs(gov: Governance, count: int) -> dict[str, bytes]:
    made = {}
    with gov.transaction() as ctx:
        for i in range(count):
            data = f"face image {i} ".encode() * 20
            made[ctx.blobs.put(data)] = data
    return made


def _events(gov: Governance, action: str) -> list[AuditEvent]:
    with gov.sessions() as session:
        return list(session.execute(select(AuditEvent).where(AuditEvent.action == action)).scalars())


def _verify(gov: Governance) -> audit.VerifyResult:
    with gov.sessions() as session:
        return audit.verify(session)


def _key_of(path: Path) -> str:
    with open(path, "rb") as fh:
        head = fh.read(9)
    return head[5:9].hex() if head.startswith(MAGIC_V2) else head[:5].decode()


# ---------------------------------------------------------------------- permissions
def test_store_dirs_are_0700_and_files_0600(home: Path) -> None:
    home.mkdir(mode=0o755)
    os.chmod(home, 0o755)  # an existing, too open data directory is tightened
    gov = Governance()
    _blobs(gov, 3)
    facecache.save(_face_data(), facecache.cache_file_for([Path("a.jpg")], eval_cache_dir(), "pipeline"))
    db = home / "openlfr.db"
    # SQLite gives its WAL and shared-memory files the database file's mode
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE scratch (x)")
    conn.execute("INSERT INTO scratch VALUES (1)")
    conn.commit()
    assert (home / "openlfr.db-wal").exists()
    assert _private(home) == []
    conn.close()
    gov.close()
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    for name in ("openlfr.db", "key"):
        assert stat.S_IMODE((home / name).stat().st_mode) == 0o600
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o700 for p in home.rglob("*") if p.is_dir())
    files = [p for p in home.rglob("*") if p.is_file()]
    assert any(p.parent.name == "eval-cache" for p in files) and len([p for p in files if "blobs" in p.parts]) == 3
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in files)


def test_an_existing_database_file_is_made_private(home: Path) -> None:
    home.mkdir(mode=0o700)
    db = home / "openlfr.db"
    sqlite3.connect(db).close()
    os.chmod(db, 0o644)
    Governance().close()
    assert stat.S_IMODE(db.stat().st_mode) == 0o600


def test_key_file_apart_from_the_data(store_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = store_home
    secret = tmp_path / "secrets" / "openlfr" / "key"
    monkeypatch.setenv("OPENLFR_KEY_FILE", str(secret))
    assert key_file() == secret
    gov = Governance()
    made = _blobs(gov, 3)
    facecache.save(_face_data(), eval_cache_dir() / "faces-x.sealed")
    gov.close()
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert stat.S_IMODE(secret.parent.stat().st_mode) == 0o700
    ring = Keyring.from_file(secret, create=False)
    key = ring.primary_key
    # nothing key-like in the data directory: no key file, no key material in any file
    assert not [p for p in home.rglob("*") if "key" in p.name]
    for p in (p for p in home.rglob("*") if p.is_file()):
        body = p.read_bytes()
        assert key not in body and base64.b64encode(key) not in body
    gov = Governance()
    store = _store(gov, open_keyring())
    assert {b: store.get(b) for b in made} == made
    # the data alone (with any other key) opens nothing
    monkeypatch.setenv("OPENLFR_KEY_FILE", str(tmp_path / "elsewhere" / "key"))
    other = _store(gov, open_keyring())
    for b in made:
        with pytest.raises(EncryptionKeyError, match="wrong key"):
            other.get(b)
    gov.close()


def test_key_file_of_earlier_versions_and_olfr1_blobs_still_open(home: Path) -> None:
    home.mkdir(mode=0o700)
    key = os.urandom(32)
    (home / "key").write_text(base64.b64encode(key).decode() + "\n")
    ring = open_keyring()
    assert ring.primary == key_id(key) and ring.primary_key == key
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    blob_id, nonce = "ab" * 16, os.urandom(12)
    path = blob_dir() / blob_id[:2] / blob_id
    path.parent.mkdir(parents=True)
    path.write_bytes(MAGIC_V1 + nonce + AESGCM(key).encrypt(nonce, b"old blob", blob_id.encode()))
    assert BlobStore(blob_dir(), ring).get(blob_id) == b"old blob"


# ---------------------------------------------------------------------- rotation
def test_rotation_round_trip(store_home: Path, app: typer.Typer) -> None:
    home = store_home
    home.mkdir(mode=0o700)
    old_key = os.urandom(32)
    (home / "key").write_text(base64.b64encode(old_key).decode() + "\n")  # a key file of earlier versions
    os.chmod(home / "key", 0o600)
    gov = Governance()
    made = _blobs(gov, 20)
    with gov.transaction() as ctx:  # an audited write: the checkpoint signing key is made, under the old key
        ctx.audit("system:test", "test.event", "thing", 1)
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    legacy_id, nonce = "cd" * 16, os.urandom(12)  # a blob of earlier versions (OLFR1)
    gov.blob_store.put_sealed(legacy_id, MAGIC_V1 + nonce + AESGCM(old_key).encrypt(nonce, b"legacy",
                                                                                   legacy_id.encode()))
    made[legacy_id] = b"legacy"
    cache = facecache.cache_file_for([Path("a.jpg")], eval_cache_dir(), "pipeline")
    facecache.save(_face_data(), cache)
    before = {**_sealed(gov), cache.name: cache.read_bytes()}
    assert len(before) == 22

    result = runner.invoke(app, ["key", "rotate", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    ring = Keyring.from_file(home / "key", create=False)
    assert out["old_keys"] == [key_id(old_key)] and out["new_key"] == ring.primary != key_id(old_key)
    # 20 blobs, the legacy one, the cache, and the audit checkpoints' sealed signing key
    assert out["files"] == out["resealed"] == 23 and not out["resumed"] and out["unreadable"] == 0
    assert ring.ids == [ring.primary] and ring.rotation is None  # the old key is gone
    # every sealed file (and blob row) is rewritten under the new key and opens with it, not with the old one
    after = {**_sealed(gov), cache.name: cache.read_bytes()}
    assert after.keys() == before.keys()
    for name, body in after.items():
        assert _owner(body) == ring.primary and body != before[name]
    for p in [*blob_dir().rglob("*"), cache]:
        if p.is_file():
            assert stat.S_IMODE(p.stat().st_mode) == 0o600
    fresh = _store(gov, ring)
    old = _store(gov, old_key)
    for blob, data in made.items():
        assert fresh.get(blob) == data
        with pytest.raises(EncryptionKeyError):
            old.get(blob)
    np.testing.assert_array_equal(facecache.load(cache, ring).embeddings, _face_data().embeddings)
    # resealed too (a file beside the blobs, or a row): the same signing key opens under the new key
    signing = gov.blob_store.secret(checkpoints.KEY_FILE_NAME)
    assert _owner(signing.load() or b"") == ring.primary
    assert checkpoints.Signer(signing, ring).public_key() == gov.signer.public_key() is not None
    # a Governance opened before the rotation follows it (reads, and writes under the new key)
    assert gov.blob_store.get(legacy_id) == b"legacy"
    new_blob = next(iter(_blobs(gov, 1)))
    assert _owner(gov.blob_store.sealed(new_blob)) == ring.primary
    # audited, with counts; the chain still verifies
    (start,), (done,) = _events(gov, "key.rotate.start"), _events(gov, "key.rotate.done")
    assert start.object_type == done.object_type == "keyring" and start.object_id == done.object_id == ring.primary
    assert start.seq < done.seq and start.actor.startswith("machine:")
    assert json.loads(start.details)["to_reseal"] == 23
    assert json.loads(done.details)["resealed"] == 23 and json.loads(done.details)["old_keys"] == [key_id(old_key)]
    assert _verify(gov).ok
    status = runner.invoke(app, ["key", "status", "--json"])
    assert json.loads(status.stdout)["primary"] == ring.primary and json.loads(status.stdout)["rotation"] is None
    # a second rotation works from the JSON keyring file
    again = runner.invoke(app, ["key", "rotate", "--json"])
    assert again.exit_code == 0 and json.loads(again.stdout)["old_keys"] == [ring.primary]
    gov.close()


def test_rotation_refused_for_a_key_from_the_environment(home: Path, app: typer.Typer,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENLFR_KEY", base64.b64encode(b"k" * 32).decode())
    result = runner.invoke(app, ["key", "rotate"])
    assert result.exit_code == 2 and "error:" in result.output and "OPENLFR_KEY" in result.output
    assert not (home / "key").exists()


def test_one_rotation_at_a_time(home: Path) -> None:
    Governance().close()
    with rotation_lock(key_file()):
        with pytest.raises(EncryptionKeyError, match="another key rotation"):
            cli_keys.rotate_store()
    assert open_keyring().rotation is None


ROTATE_SLOWLY = """
import sys, time
from openlfr.cli import keys as cli_keys

done = 0

def hook(path, outcome):
    global done
    if outcome == "resealed":
        done += 1
        print(done, flush=True)
        time.sleep(float(sys.argv[1]))

cli_keys.rotate_store(progress=hook)
print("finished", flush=True)
"""


def _rotate_in_child(delay: float) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", ROTATE_SLOWLY, str(delay)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ))


def _setup_many(count: int) -> tuple[bytes, dict[str, bytes], Path]:
    gov = Governance()
    old_key = open_keyring().primary_key
    store = _store(gov, open_keyring())
    if isinstance(store, BlobStore):
        store.durable = False
    made = {}
    for i in range(count):
        data = os.urandom(64) + f"blob {i}".encode()
        made[store.put(data)] = data
    cache = facecache.cache_file_for([Path("cohort.jpg")], eval_cache_dir(), "pipeline")
    facecache.save(_face_data(), cache)
    gov.close()
    return old_key, made, cache


def _check_all_rotated(old_key: bytes, made: dict[str, bytes], cache: Path) -> None:
    ring = Keyring.from_file(key_file(), create=False)
    assert ring.rotation is None and ring.ids == [ring.primary] and ring.primary != key_id(old_key)
    gov = Governance()
    store, old = _store(gov, ring), _store(gov, old_key)
    assert {b: store.get(b) for b in made} == made
    for blob in list(made)[:: max(1, len(made) // 20)]:
        with pytest.raises(EncryptionKeyError):
            old.get(blob)
    assert _key_of(cache) == ring.primary
    assert facecache.load(cache, ring).paths == _face_data().paths
    assert not list(data_dir().rglob("*.rotate-tmp")) and not list(data_dir().rglob("*.tmp"))
    assert not list(key_file().parent.glob(".key.*.tmp"))
    assert _verify(gov).ok
    assert len(_events(gov, "key.rotate.done")) == len(_events(gov, "key.rotate.start"))
    gov.close()


def test_rotation_killed_midway_then_rerun_loses_nothing(store_home: Path, app: typer.Typer) -> None:
    old_key, made, cache = _setup_many(300)
    child = _rotate_in_child(0.005)
    assert child.stdout is not None
    for line in child.stdout:
        if line.strip().isdigit() and int(line) >= 100:
            os.kill(child.pid, signal.SIGKILL)
            break
    child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL, child.stderr.read() if child.stderr else ""
    # killed midway: the rotation is pending, files are under both keys, and all still open
    ring = Keyring.from_file(key_file(), create=False)
    assert ring.rotation is not None and ring.retired == [key_id(old_key)]
    gov = Governance()
    owners = [_owner(body) for body in _sealed(gov).values()]
    # (at least the 100 reported resealed, but the signing key's if it was one of them)
    assert 99 <= owners.count(ring.primary) < 300 and owners.count(key_id(old_key)) > 0
    store = _store(gov, ring)
    assert {b: store.get(b) for b in made} == made
    gov.close()
    status = runner.invoke(app, ["key", "status"])
    assert "unfinished" in status.output

    result = runner.invoke(app, ["key", "rotate", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["resumed"] and out["new_key"] == ring.primary and out["old_keys"] == [key_id(old_key)]
    # 300 blobs, the cache, and the checkpoint signing key (made by the first rotation's audit event)
    assert out["files"] == 302 and out["already"] >= 100 and out["resealed"] == 302 - out["already"]
    _check_all_rotated(old_key, made, cache)
    gov = Governance()
    assert len(_events(gov, "key.rotate.start")) == 1 and len(_events(gov, "key.rotate.done")) == 1
    gov.close()


@pytest.mark.slow_on_postgres
def test_rotation_killed_at_random_moments(store_home: Path) -> None:
    old_key, made, cache = _setup_many(120)
    rng = random.Random(7)
    pending = 0
    for attempt in range(5):
        child = _rotate_in_child(0.005)
        if attempt:  # once resealing has begun (the first try: at any moment, start-up included)
            assert child.stdout is not None
            child.stdout.readline()
        time.sleep(rng.uniform(0.0, 0.5) if attempt else rng.uniform(0.0, 1.0))
        child.kill()
        child.wait(timeout=60)
        # whatever the moment, every blob opens with the keyring as the kill left it
        ring = Keyring.from_file(key_file(), create=False)
        gov = Governance(migrate=False)
        store = _store(gov, ring)
        assert {b: store.get(b) for b in made} == made
        gov.close()
        pending += ring.rotation is not None
    assert pending  # at least one kill landed inside a rotation
    child = _rotate_in_child(0.0)
    out, err = child.communicate(timeout=120)
    assert child.returncode == 0 and "finished" in out, err
    _check_all_rotated(old_key, made, cache)
