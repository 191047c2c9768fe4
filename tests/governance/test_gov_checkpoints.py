"""Signed audit checkpoints: when they are made, where the key is kept, and what they detect.

The must-show: in a 1,000-event chain, a rewrite from any event k (every later hash
recomputed, the head moved) is flagged by the outside procedure of docs/audit-verification.md
whenever k is at or before the newest checkpoint, and (its documented limit) not after it.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from govkit import KEY, Clock, Estate, fake_template
from sqlalchemy import inspect, select, text

from openlfr.audit import chain
from openlfr.audit import checkpoints as cps
from openlfr.audit.chain import GENESIS, EventRecord, event_hash
from openlfr.governance import Governance, Policy, deployments
from openlfr.store.keys import EncryptionKeyError, Keyring
from openlfr.store.models import AuditCheckpoint, AuditEvent
from openlfr.store.settings import data_dir

DOC = Path(__file__).resolve().parents[2] / "docs" / "audit-verification.md"
N, EVERY, LAST = 1000, 100, 900


# ---------------------------------------------------------------- helpers
def _record(seq: int, prev: str, actor: str) -> EventRecord:
    t0 = datetime(2030, 1, 1, tzinfo=UTC)
    fields = (seq, chain.iso_utc(t0 + timedelta(seconds=seq)), actor, "image.share", "shared_image", str(seq),
              chain.canonical_json({"n": seq, "note": "é"}))
    return EventRecord(*fields, prev, event_hash(*fields, prev))


def _chain(n: int = N) -> list[EventRecord]:
    out, prev = [], GENESIS
    for seq in range(1, n + 1):
        out.append(_record(seq, prev, f"user{seq % 7}"))
        prev = out[-1].hash
    return out


def _rewrite(records: list[EventRecord], k: int) -> list[EventRecord]:
    """The chain with event ``k`` changed and every hash from ``k`` on recomputed (what an operator
    with write access to the database could do)."""
    out = list(records[: k - 1])
    prev = out[-1].hash if out else GENESIS
    for rec in records[k - 1:]:
        actor = "mallory" if rec.seq == k else rec.actor
        fields = (rec.seq, rec.at, actor, rec.action, rec.object_type, rec.object_id, rec.details)
        out.append(EventRecord(*fields, prev, event_hash(*fields, prev)))
        prev = out[-1].hash
    return out


def _signer(tmp_path: Path, name: str = "a") -> cps.Signer:
    return cps.Signer(tmp_path / name / cps.KEY_FILE_NAME, Keyring.single(KEY))


def _sign(signer: cps.Signer, rec: EventRecord, at: str, reason: str = "interval") -> cps.Checkpoint:
    public, signature = signer.sign(cps.message(rec.seq, rec.hash, at, reason))
    return cps.Checkpoint(rec.seq, rec.hash, at, reason, cps.key_id(public), public, signature)


def _export_lines(records: list[EventRecord]) -> list[str]:
    return [json.dumps(r.as_dict(), ensure_ascii=False) for r in records]


def _write_export(path: Path, lines: list[str], head: EventRecord) -> None:
    header = {"format": "openlfr-audit/1", "head_seq": head.seq, "head_hash": head.hash, "count": len(lines)}
    path.write_text(json.dumps(header) + "\n" + "\n".join(lines) + "\n", encoding="utf-8")


def _doc_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)


def _outside(program: object, export: Path, checkpoints: Path) -> tuple[bool, str]:
    """Run the documented stdlib program (compiled once) as ``python3 verify_audit.py A B``:
    (passed, what it printed or exited with)."""
    argv, sys.argv = sys.argv, ["verify_audit.py", str(export), str(checkpoints)]
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            exec(program, {"__name__": "__main__"})  # noqa: S102 - the documented program itself
    except SystemExit as stop:
        return False, str(stop.code)
    finally:
        sys.argv = argv
    return True, out.getvalue()


def _write(gov: Governance, n: int = 1) -> None:
    with gov.transaction() as ctx:
        for i in range(n):
            ctx.audit("system:test", "test.event", "thing", i)


def _rows(gov: Governance) -> list[AuditCheckpoint]:
    with gov.reading() as ctx:
        rows = list(ctx.session.execute(select(AuditCheckpoint).order_by(AuditCheckpoint.id)).scalars())
        return rows


def _records(gov: Governance) -> list[EventRecord]:
    with gov.reading() as ctx:
        return chain.load_records(ctx.session)


# ---------------------------------------------------------------- the must-show
# every k on either side of every checkpoint and of the ends: what the exhaustive run checks, in
# 2 s instead of 15 (each rewrite of k recomputes 1000 - k hashes and reruns the program)
EDGES = sorted({k for s in range(0, N + 1, EVERY) for k in (s - 1, s, s + 1) if 1 <= k <= N})


def test_a_rewrite_on_either_side_of_each_checkpoint_is_flagged_by_the_outside_procedure(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As below, for the k next to each checkpoint and to either end of the chain."""
    _rewrites_flagged_by_the_outside_procedure(tmp_path, monkeypatch, EDGES)


# slow (about 15 s); the rule is checked at every checkpoint's edges by the test above
@pytest.mark.slow
def test_every_rewrite_before_the_last_checkpoint_is_flagged_by_the_outside_procedure(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _rewrites_flagged_by_the_outside_procedure(tmp_path, monkeypatch, list(range(1, N + 1)))


def _rewrites_flagged_by_the_outside_procedure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              ks: list[int]) -> None:
    """For every k in ``ks``: rewrite from k, hashes recomputed, head moved. The documented
    stdlib program flags every k <= 900 (the newest checkpoint) and passes every k > 900; the
    one signature check (openssl, and the documented `cryptography` lines) holds for the
    latter; openlfr's own checker agrees with the outside one on every k."""
    monkeypatch.chdir(tmp_path)  # the program writes checkpoint.msg/.sig/-key.pem here
    records = _chain()
    signer = _signer(tmp_path)
    signed = [_sign(signer, records[s - 1], f"2030-01-01T00:{s // 60:02d}:{s % 60:02d}.000000+00:00")
              for s in range(EVERY, LAST + 1, EVERY)]
    published = tmp_path / "checkpoints.json"
    published.write_text(json.dumps(cps.export_document(signed, signer.public_key(), now=datetime.now(UTC))))
    program_text, signature_lines = _doc_blocks()[0], _doc_blocks()[1]
    program = compile(program_text, "verify_audit.py", "exec")
    export = tmp_path / "audit.jsonl"
    base = _export_lines(records)

    # untouched: passes, and the one signature check holds (openssl as documented, if present)
    _write_export(export, base, records[-1])
    ok, said = _outside(program, export, published)
    assert ok and f"up to #{LAST}" in said, said
    assert Path("checkpoint.msg").read_bytes() == signed[-1].message()
    exec(compile(signature_lines, "signature_check", "exec"), {})  # noqa: S102 - raises InvalidSignature if wrong
    openssl = shutil.which("openssl")
    if openssl:
        cmd = re.search(r"^(openssl pkeyutl -verify .*)$", DOC.read_text(encoding="utf-8"), re.MULTILINE).group(1)
        run = subprocess.run(cmd.split(), capture_output=True, text=True, check=False)
        assert run.returncode == 0 and "Signature Verified Successfully" in run.stdout, run.stderr

    flagged, passed = [], []
    for k in ks:
        rewritten = _rewrite(records, k)
        _write_export(export, base[: k - 1] + _export_lines(rewritten[k - 1:]), rewritten[-1])
        ok, said = _outside(program, export, published)
        assert ok or said.startswith("REWRITTEN"), said  # the chain itself always recomputes cleanly
        (passed if ok else flagged).append(k)
        ours = cps.verify(signed, rewritten, public_key=signer.public_key())
        assert bool(ours) == (not ok), k
        if ok:  # past the newest checkpoint: the newest checkpoint still signs the same head
            assert Path("checkpoint.msg").read_bytes() == signed[-1].message() and cps.signature_ok(signed[-1])
    assert flagged == [k for k in ks if k <= LAST]
    assert passed == [k for k in ks if k > LAST]  # the documented limit: protected only by the next checkpoint


def test_the_outside_program_refuses_a_checkpoint_under_another_key(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    records = _chain(50)
    mine, other = _signer(tmp_path, "mine"), _signer(tmp_path, "other")
    signed = [_sign(mine, records[19], "t"), _sign(other, records[39], "t")]
    published = tmp_path / "checkpoints.json"
    published.write_text(json.dumps(cps.export_document(signed, mine.public_key(), now=datetime.now(UTC))))
    export = tmp_path / "audit.jsonl"
    _write_export(export, _export_lines(records), records[-1])
    ok, said = _outside(compile(_doc_blocks()[0], "verify_audit.py", "exec"), export, published)
    assert not ok and "REWRITTEN: checkpoint #40" in said


# ---------------------------------------------------------------- checking signatures and keys
def test_forged_altered_or_foreign_checkpoints_are_flagged(tmp_path: Path) -> None:
    records = _chain(30)
    signer, other = _signer(tmp_path, "mine"), _signer(tmp_path, "other")
    good = _sign(signer, records[9], "2030-01-01T00:00:10.000000+00:00")
    key = signer.public_key()
    assert cps.verify([good], records, public_key=key) == []
    forged = replace(good, signature=("0" if good.signature[0] != "0" else "1") + good.signature[1:])
    moved = replace(good, seq=11, head_hash=records[10].hash)  # a genuine signature moved onto another head
    reasoned = replace(good, reason="deployment 1 start")
    foreign = _sign(other, records[9], good.at)
    wrong_id = replace(good, key_id="0" * 64)
    beyond = _sign(signer, replace(records[9], seq=31), good.at)
    problems = cps.verify([forged, moved, reasoned, foreign, wrong_id, beyond], records, public_key=key)
    assert len(problems) == 6
    assert all("signature does not match" in p for p in problems[:3]), problems
    assert "not the installation's" in problems[3] and "signature does not match" in problems[4]
    assert "#31 is not in the chain" in problems[5]
    # without a pinned key, a foreign key's own valid signature is accepted as such (the key check is the pin)
    assert cps.verify([foreign], records, public_key=None) == []


# ---------------------------------------------------------------- when they are made
def test_checkpoints_at_deployment_start_end_and_expiry(estate: Estate, gov: Governance, clock: Clock) -> None:
    dep, cam, _ = estate.live_deployment()
    rows = _rows(gov)
    start = [r for r in rows if r.reason == f"deployment {dep} start"]
    assert len(start) == 1
    with gov.reading() as ctx:
        began = ctx.session.execute(select(AuditEvent).where(AuditEvent.action == "deployment.start")).scalar_one()
    assert (start[0].seq, start[0].head_hash) == (began.seq, began.hash)  # signs the head including its start
    with gov.transaction() as ctx:
        deployments.end(ctx, estate.admin, dep, reason="done")
    end = _rows(gov)[-1]
    with gov.reading() as ctx:
        assert (end.reason, end.seq) == (f"deployment {dep} end", chain.head(ctx.session)[0])
    # a deployment that runs out is ended by the sweep, which signs too
    with gov.reading() as ctx:
        watchlist = ctx.session.get(deployments.Deployment, dep).watchlist_id
    dep2 = estate.request(watchlist, [cam])
    with gov.transaction() as ctx:
        deployments.authorise(ctx, estate.officer2, dep2)
        deployments.start(ctx, estate.admin, dep2)
    clock.advance(hours=9)
    with gov.transaction() as ctx:
        assert dep2 in deployments.sweep(ctx)[0]
    last = _rows(gov)[-1]
    assert last.reason == f"deployment {dep2} expired"
    assert cps.verify([cps._plain(r) for r in _rows(gov)], _records(gov), public_key=gov.signer.public_key()) == []


def test_a_checkpoint_every_interval_while_anything_is_written(gov: Governance, clock: Clock) -> None:
    gov.policy = Policy(checkpoint_interval_minutes=15)
    _write(gov, 3)
    rows = _rows(gov)
    assert [(r.seq, r.reason) for r in rows] == [(3, "interval")]  # none yet: the first write signs
    clock.advance(minutes=14)
    _write(gov)
    assert len(_rows(gov)) == 1  # not yet due
    clock.advance(minutes=1)
    _write(gov, 2)
    rows = _rows(gov)
    assert [(r.seq, r.at) for r in rows[1:]] == [(6, chain.iso_utc(clock.now))]
    clock.advance(hours=3)
    with gov.transaction() as ctx:  # a transaction that writes no event signs nothing
        chain.head(ctx.session)
    with gov.reading() as ctx:
        chain.load_records(ctx.session)
    assert len(_rows(gov)) == 2
    # a refusal is written in its own transaction: it is covered too
    from openlfr.errors import InputError

    with pytest.raises(InputError), gov.transaction() as ctx:
        ctx.attempt = ("someone", "thing.do", "thing", "1")
        raise InputError("no")
    rows = _rows(gov)
    assert len(rows) == 3 and rows[-1].seq == 7
    with gov.reading() as ctx:
        assert ctx.session.get(AuditEvent, 7).action == "thing.do.refused"
    # a rolled-back transaction leaves no checkpoint of events that never were
    clock.advance(hours=1)
    with pytest.raises(RuntimeError), gov.transaction() as ctx:
        ctx.audit("system:test", "test.event", "thing", 1)
        raise RuntimeError("crash")
    assert len(_rows(gov)) == 3


# ---------------------------------------------------------------- the key
def test_the_signing_key_is_made_lazily_sealed_and_shared_by_the_installation(
        db_url: str, tmp_path: Path, clock: Clock) -> None:
    gov = Governance(db_url, blob_root=tmp_path / "blobs", key=KEY, template_fn=fake_template, clock=clock,
                     migrate=False)
    # where the blobs are: a file beside the blob folder (SQLite), a row of the blobs table (PostgreSQL)
    path = tmp_path / cps.KEY_FILE_NAME
    secret = gov.blob_store.secret(cps.KEY_FILE_NAME)
    with gov.reading() as ctx:
        chain.load_records(ctx.session)
    with gov.transaction():
        pass
    assert secret.load() is None and gov.signer.public_key() is None  # reading makes no key
    _write(gov)
    assert path.exists() == (gov.blob_store.kind == "files")
    if path.exists():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert gov.signer.public_key() is not None  # (a key made in a transaction is kept in memory once committed)
    raw = gov.signer._key.private_bytes_raw()  # type: ignore[union-attr]
    body = secret.load()
    assert body is not None and body.startswith(b"OLFR2") and raw not in body and raw.hex().encode() not in body
    assert base64.b64encode(raw) not in body
    with pytest.raises(EncryptionKeyError):  # sealed: another keyring cannot open it
        cps.Signer(secret, Keyring.single(bytes(32))).public_key()
    row = _rows(gov)[0]
    assert row.public_key == gov.signer.public_key() and row.key_id == cps.key_id(row.public_key)
    if db_url.startswith("sqlite"):  # the private key is not in the database
        db = Path(db_url.removeprefix("sqlite:///")).read_bytes()
        assert raw not in db and raw.hex().encode() not in db
    else:  # only sealed: no table holds it in clear (the blobs row holds it as ciphertext)
        with gov.engine.connect() as conn:
            tables = inspect(conn).get_table_names()
            dump = "\n".join(str(r[0]) for t in tables for r in conn.execute(text(f'SELECT t::text FROM "{t}" t')))
        assert raw.hex() not in dump and base64.b64encode(raw).decode() not in dump
    # another process of the same installation signs with the same key
    other = Governance(db_url, blob_root=tmp_path / "blobs", key=KEY, clock=clock, migrate=False)
    with other.transaction() as ctx:
        ctx.audit("system:test", "test.event", "thing", 2)
        ctx.checkpoint("manual")
    assert {r.public_key for r in _rows(gov)} == {gov.signer.public_key()}
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    other.close()
    gov.close()


# ---------------------------------------------------------------- the CLI door
def _openlfr(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The real console-script entry point (``openlfr = openlfr.cli:main``) in a new process."""
    return subprocess.run([sys.executable, "-c", "from openlfr.cli import main; main()", *args],
                          capture_output=True, text=True, env=env, timeout=120, check=False)


def _rewrite_store(db_url: str, gov: Governance, k: int) -> None:
    rewritten = _rewrite(_records(gov), k)
    with gov.engine.begin() as conn:
        for rec in rewritten[k - 1:]:
            conn.execute(text("UPDATE audit_events SET actor = :a, prev_hash = :p, hash = :h WHERE seq = :s"),
                         {"a": rec.actor, "p": rec.prev_hash, "h": rec.hash, "s": rec.seq})
        conn.execute(text("UPDATE audit_head SET hash = :h WHERE id = 1"), {"h": rewritten[-1].hash})


@pytest.mark.slow_on_postgres
def test_cli_checkpoints_export_and_verify_flag_a_rewrite(db_url: str, clock: Clock, tmp_path: Path) -> None:
    home = data_dir()
    env = {**os.environ, "OPENLFR_DATA_DIR": str(home), "OPENLFR_DATABASE_URL": db_url,
           "OPENLFR_KEY": base64.b64encode(KEY).decode()}
    gov = Governance(db_url, blob_root=home / "blobs", key=KEY, clock=clock, migrate=False)
    for _ in range(4):
        _write(gov, 10)
        clock.advance(minutes=20)
    with gov.transaction() as ctx:
        ctx.audit("system:test", "test.event", "thing", "x")
        ctx.checkpoint("deployment 9 start")
    _write(gov, 5)  # after the newest checkpoint
    last = _rows(gov)[-1].seq
    assert [r.seq for r in _rows(gov)] == [10, 20, 30, 40, 41] and last == 41
    kept = tmp_path / "cps.json"
    made = _openlfr("audit", "checkpoints", str(kept), env=env)
    assert made.returncode == 0 and "5 checkpoints written" in made.stdout, made.stderr
    doc = json.loads(kept.read_text())
    assert doc["public_key"] == gov.signer.public_key() and len(doc["checkpoints"]) == 5
    good = _openlfr("audit", "verify", "--checkpoints", str(kept), env=env)
    assert good.returncode == 0 and "5 checked" in good.stdout, good.stdout + good.stderr
    export = tmp_path / "audit.jsonl"
    assert _openlfr("audit", "export", str(export), env=env).returncode == 0

    # a key swapped in the file (re-signed with another key, pinned to it): not the installation's
    foreign = _signer(tmp_path, "other")
    records = _records(gov)
    swapped = [_sign(foreign, records[c["seq"] - 1], c["at"], c["reason"]) for c in doc["checkpoints"]]
    swapped_file = tmp_path / "swapped.json"
    swapped_file.write_text(json.dumps(cps.export_document(swapped, foreign.public_key(), now=clock.now)))
    out = _openlfr("audit", "verify", "--checkpoints", str(swapped_file), env=env)
    assert out.returncode == 1 and "not this installation's signing key" in out.stdout, out.stdout
    # a forged signature
    forged = json.loads(kept.read_text())
    forged["checkpoints"][2]["head_hash"] = "f" * 64
    forged_file = tmp_path / "forged.json"
    forged_file.write_text(json.dumps(forged))
    out = _openlfr("audit", "verify", "--export", str(export), "--checkpoints", str(forged_file), env=env)
    assert out.returncode == 1 and out.stdout.count("CHECKPOINT FAILS") == 1 and "#30" in out.stdout  # the other 4 pass
    assert "chain OK" in out.stdout and "signature does not match" in out.stdout
    # not a checkpoints file: one error line, exit 2
    out = _openlfr("audit", "verify", "--checkpoints", str(export), env=env)
    assert out.returncode == 2 and out.stderr.strip().startswith("error:") and "checkpoints file" in out.stderr

    # the operator rewrites the chain from event 35 (before the last checkpoint, #41) and re-signs
    # its own table: the chain alone passes, the kept checkpoints do not
    _rewrite_store(db_url, gov, 35)
    with gov.transaction() as ctx:
        ctx.session.execute(text("DELETE FROM audit_checkpoints"))
    caught = _openlfr("audit", "verify", "--checkpoints", str(kept), env=env)
    assert caught.returncode == 1 and "chain OK" in caught.stdout and "store matches" in caught.stdout
    assert caught.stdout.count("CHECKPOINT FAILS") == 2  # #40 and #41; #10..#30 precede the rewrite
    assert "event #40 no longer has the signed hash" in caught.stdout and "#41" in caught.stdout
    gov.close()


# ---------------------------------------------------------------- read-only helpers for the lead
def test_latest_and_load(gov: Governance, clock: Clock) -> None:
    with gov.reading() as ctx:
        assert cps.latest(ctx.session) is None and cps.load(ctx.session) == []
    _write(gov)
    clock.advance(minutes=30)
    _write(gov)
    with gov.reading() as ctx:
        newest = cps.latest(ctx.session)
        assert newest is not None and newest.seq == 2 and len(cps.load(ctx.session)) == 2
