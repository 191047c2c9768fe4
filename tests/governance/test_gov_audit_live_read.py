"""The chain read while others append: an export and a verification taken during busy writing
see the events and the head of one moment, so a sound chain never looks cut off or extended
(PostgreSQL reads each statement at its own moment; an export job ran beside a re-templating
job and exported 32 events under a head that said 33)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

from govkit import KEY
from openlfr.audit.chain import read_chain, verify
from openlfr.audit.export import export_chain, verify_export
from openlfr.governance import Governance


def test_exports_and_verifications_during_appends_are_whole(db_url: str, tmp_path: Path) -> None:
    gov = Governance(db_url, blob_root=tmp_path / "blobs", key=KEY, migrate=False)
    with gov.transaction() as ctx:
        ctx.audit("busy-writer", "test.append", "test", "first")
    stop = threading.Event()
    appended = [0]

    def writer() -> None:
        while not stop.is_set():
            with gov.transaction() as ctx:
                ctx.audit("busy-writer", "test.append", "test", appended[0])
            appended[0] += 1

    threads = [threading.Thread(target=writer, daemon=True) for _ in range(2)]
    for t in threads:
        t.start()
    heads = set()  # the chain heads the reads saw
    try:
        for i in range(30):
            with gov.reading() as ctx:
                result = verify(ctx.session)
                assert result.ok, result.reason
                seq, _, records = read_chain(ctx.session)
                assert records[-1].seq == seq == len(records)
                heads.add(seq)
            with gov.reading() as ctx:
                exported = export_chain(ctx.session, tmp_path / f"chain-{i}.jsonl", now=datetime.now(UTC))
            assert exported.ok, exported.reason
            assert verify_export(tmp_path / f"chain-{i}.jsonl").ok
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    # the chain grew while it was read: many reads saw a different head (on SQLite, whose writers
    # wait for each other's fsync, about one append per read; on PostgreSQL many more)
    assert len(heads) >= 10 and appended[0] >= 10, (len(heads), appended[0])
    gov.close()
