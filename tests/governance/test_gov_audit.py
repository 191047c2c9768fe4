"""Audit chain: every single modification, deletion, insertion or reordering is detected."""

from __future__ import annotations

import dataclasses
import json
import random
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from openlfr.audit import chain
from openlfr.audit.chain import GENESIS, EventRecord, event_hash, verify_records
from openlfr.audit.export import export_chain, verify_export
from openlfr.governance import Governance, PermissionDenied
from openlfr.governance import agreements

from govkit import Estate

N = 1000
DOC = Path(__file__).resolve().parents[2] / "docs" / "audit-verification.md"


def _chain(n: int = N) -> list[EventRecord]:
    t0 = datetime(2030, 1, 1, tzinfo=UTC)
    out, prev = [], GENESIS
    for seq in range(1, n + 1):
        fields = (seq, chain.iso_utc(t0 + timedelta(seconds=seq)), f"user{seq % 7}", "image.share",
                  "shared_image", str(seq), chain.canonical_json({"n": seq, "note": "é"}))
        digest = event_hash(*fields, prev)
        out.append(EventRecord(*fields, prev, digest))
        prev = digest
    return out


def _forge(after: EventRecord | None, seq: int) -> EventRecord:
    """A well-formed event chained to ``after``, as a forger would write it."""
    prev = after.hash if after else GENESIS
    fields = (seq, "2030-01-01T00:00:00.000000+00:00", "forger", "image.share", "shared_image", "x", "{}")
    return EventRecord(*fields, prev, event_hash(*fields, prev))


def _rehash(rec: EventRecord) -> EventRecord:
    return dataclasses.replace(rec, hash=event_hash(rec.seq, rec.at, rec.actor, rec.action, rec.object_type,
                                                    rec.object_id, rec.details, rec.prev_hash))


def test_intact_chain_verifies() -> None:
    events = _chain()
    result = verify_records(events, events[-1].seq, events[-1].hash)
    assert result.ok and result.count == N


@pytest.mark.parametrize("kind", ["modify", "modify-rehash", "delete", "insert", "reorder"])
def test_every_single_tamper_in_1000_events_is_detected(kind: str) -> None:
    events = _chain()
    head_seq, head_hash = events[-1].seq, events[-1].hash
    positions = range(N - 1) if kind == "reorder" else range(N + 1) if kind == "insert" else range(N)
    for i in positions:
        tampered = list(events)
        if kind == "modify":
            tampered[i] = dataclasses.replace(events[i], details='{"n":0}')
        elif kind == "modify-rehash":
            tampered[i] = _rehash(dataclasses.replace(events[i], actor="someone else"))
        elif kind == "delete":
            del tampered[i]
        elif kind == "insert":
            tampered.insert(i, _forge(events[i - 1] if i else None, i + 1))
        else:
            tampered[i], tampered[i + 1] = tampered[i + 1], tampered[i]
        result = verify_records(tampered, head_seq, head_hash)
        assert not result.ok, f"{kind} at position {i} not detected"
        assert result.first_bad_seq is not None and result.first_bad_seq <= i + 2


def _seed(session: Session, n: int = N) -> None:
    t0 = datetime(2030, 1, 1, tzinfo=UTC)
    for k in range(n):
        chain.append(session, actor=f"user{k % 5}", action="test.event", object_type="thing", object_id=k,
                     details={"k": k, "text": "naïve"}, at=t0 + timedelta(seconds=k))


def _db_tamper(session: Session, kind: str, k: int, n: int) -> None:
    """Tamper with event ``k`` directly in the database, as someone with SQL access could."""
    ex = lambda sql, **p: session.execute(text(sql), p)  # noqa: E731
    if kind == "modify":
        ex("UPDATE audit_events SET details = :d WHERE seq = :k", d='{"k":-1}', k=k)
    elif kind == "delete":
        ex("DELETE FROM audit_events WHERE seq = :k", k=k)
    elif kind == "insert":  # shift later events up and slip a forged event in at k
        ex("UPDATE audit_events SET seq = -(seq + 1) WHERE seq >= :k", k=k)
        ex("UPDATE audit_events SET seq = -seq WHERE seq < 0")
        prev = ex("SELECT hash FROM audit_events WHERE seq = :p", p=k - 1).scalar() if k > 1 else GENESIS
        f = _forge(None, k)
        f = _rehash(dataclasses.replace(f, prev_hash=prev))
        ex("INSERT INTO audit_events (seq, at, actor, action, object_type, object_id, details, prev_hash, hash) "
           "VALUES (:seq, :at, :actor, :action, :object_type, :object_id, :details, :prev_hash, :hash)", **f.as_dict())
    elif kind == "reorder":  # swap event k with its successor (or predecessor for the last)
        j = k + 1 if k < n else k - 1
        ex("UPDATE audit_events SET seq = -1 WHERE seq = :k", k=k)
        ex("UPDATE audit_events SET seq = :k WHERE seq = :j", k=k, j=j)
        ex("UPDATE audit_events SET seq = :j WHERE seq = -1", j=j)
    elif kind == "append":
        last = ex("SELECT hash FROM audit_events WHERE seq = :n", n=n).scalar()
        f = _rehash(dataclasses.replace(_forge(None, n + 1), prev_hash=last))
        ex("INSERT INTO audit_events (seq, at, actor, action, object_type, object_id, details, prev_hash, hash) "
           "VALUES (:seq, :at, :actor, :action, :object_type, :object_id, :details, :prev_hash, :hash)", **f.as_dict())


def test_database_tampering_detected_by_verify(gov: Governance) -> None:
    """On the real database (SQLite and PostgreSQL), 1,000 events, tampered at many places."""
    with gov.sessions() as session, session.begin():
        _seed(session)
    with gov.sessions() as session:
        assert chain.verify(session).ok
    rng = random.Random(4)
    positions = sorted({1, 2, N // 2, N - 1, N, *rng.sample(range(1, N + 1), 6)})
    for kind in ("modify", "delete", "insert", "reorder", "append"):
        for k in positions:
            with gov.sessions() as session:
                session.begin()
                _db_tamper(session, kind, k, N)
                result = chain.verify(session)
                session.rollback()
            assert not result.ok, f"{kind} of event {k} not detected"
    with gov.sessions() as session:  # every tamper was rolled back
        assert chain.verify(session).ok


def test_rewritten_chain_caught_by_an_earlier_head(gov: Governance) -> None:
    """Rewriting every hash from some event on passes the internal check, but not against a
    head the auditor recorded before the rewrite."""
    with gov.sessions() as session, session.begin():
        _seed(session, 20)
    with gov.sessions() as session:
        anchor = chain.head(session)
    with gov.sessions() as session, session.begin():
        records = chain.load_records(session)
        session.execute(text("DELETE FROM audit_events WHERE seq >= 10"))
        prev = records[8].hash
        for rec in records[9:]:
            forged = _rehash(dataclasses.replace(rec, prev_hash=prev, actor="rewritten"))
            session.execute(text(
                "INSERT INTO audit_events (seq, at, actor, action, object_type, object_id, details, prev_hash, hash) "
                "VALUES (:seq, :at, :actor, :action, :object_type, :object_id, :details, :prev_hash, :hash)"),
                forged.as_dict())
            prev = forged.hash
        session.execute(text("UPDATE audit_head SET hash = :h"), {"h": prev})
    with gov.sessions() as session:
        assert chain.verify(session).ok  # a full rewrite is internally consistent...
        result = chain.verify(session, [anchor])
    assert not result.ok and result.first_bad_seq == 20  # ...but the recorded head is gone


def test_head_row_tampering_detected(gov: Governance) -> None:
    with gov.sessions() as session, session.begin():
        _seed(session, 10)
    with gov.sessions() as session, session.begin():
        session.execute(text("DELETE FROM audit_events WHERE seq = 10"))
        session.execute(text("UPDATE audit_head SET seq = 9"))  # forgot the hash: still caught
        assert not chain.verify(session).ok
        session.rollback()


def test_actions_and_refusals_are_chained(estate: Estate) -> None:
    with pytest.raises(PermissionDenied), estate.gov.transaction() as ctx:
        agreements.approve(ctx, estate.admin, 1)
    estate.agreement()
    with estate.gov.sessions() as session:
        records = chain.load_records(session)
        result = chain.verify(session)
    actions = [r.action for r in records]
    assert result.ok and result.count == len(records)
    assert "agreement.approve.refused" in actions and actions[-2:] == ["agreement.create", "agreement.approve"]
    refused = next(r for r in records if r.action == "agreement.approve.refused")
    assert refused.actor == estate.admin.name and "authorising_officer" in json.loads(refused.details)["reason"]


def _export(gov: Governance, path: Path) -> None:
    with gov.sessions() as session, session.begin():
        _seed(session, 50)
    with gov.sessions() as session:
        assert export_chain(session, path, now=datetime(2030, 2, 1, tzinfo=UTC)).ok


def test_export_verifies_and_tampered_export_fails(gov: Governance, tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    _export(gov, path)
    assert verify_export(path).ok
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[20] = lines[20].replace('"user', '"USER', 1)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = verify_export(path)
    assert not result.ok and result.first_bad_seq == 20


def test_documented_outside_procedure_works(gov: Governance, tmp_path: Path) -> None:
    """The stdlib-only script in docs/audit-verification.md accepts a good export, rejects a bad one."""
    script = re.search(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S).group(1)
    (tmp_path / "verify_audit.py").write_text(script, encoding="utf-8")
    path = tmp_path / "audit.jsonl"
    _export(gov, path)
    run = lambda: subprocess.run([sys.executable, str(tmp_path / "verify_audit.py"), str(path)],  # noqa: E731
                                 capture_output=True, text=True)
    ok = run()
    assert ok.returncode == 0 and ok.stdout.startswith("OK: 50 events"), ok.stderr
    lines = path.read_text(encoding="utf-8").splitlines()
    del lines[-1]  # cut the newest event
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    bad = run()
    assert bad.returncode != 0 and "BROKEN" in bad.stderr


def test_concurrent_writers_keep_one_chain(gov: Governance) -> None:
    """Four threads appending at once (separate connections) never fork or break the chain."""
    import threading

    errors: list[BaseException] = []

    def worker(w: int) -> None:
        try:
            for k in range(25):
                with gov.sessions() as session, session.begin():
                    chain.append(session, actor=f"worker{w}", action="test.concurrent", object_type="x",
                                 object_id=k, details={}, at=datetime.now(UTC))
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with gov.sessions() as session:
        result = chain.verify(session)
    assert result.ok and result.count == 100
