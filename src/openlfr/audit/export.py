"""Export the audit chain for an outside auditor, and verify such an export.

The export is JSON Lines: a header line ``{"format": "openlfr-audit/1", "head_seq": ...,
"head_hash": ..., "count": ..., "exported_at": ...}`` and then one line per event with the
fields ``seq, at, actor, action, object_type, object_id, details, prev_hash, hash``.
``docs/audit-verification.md`` gives a dozen lines of plain Python (standard library only)
that check it without openlfr.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from openlfr.audit.chain import (
    EventRecord, VerifyResult, check_anchors, iso_utc, read_chain, verify_records,
)
from openlfr.errors import InputError

FORMAT = "openlfr-audit/1"


def export_chain(session: Session, path: Path, *, now: datetime) -> VerifyResult:
    """Write the chain head and every event to ``path``; return the chain's own verification."""
    head_seq, head_hash, records = read_chain(session)
    header = {
        "format": FORMAT,
        "head_seq": head_seq,
        "head_hash": head_hash,
        "count": len(records),
        "exported_at": iso_utc(now),
        "hash": "sha256 of JSON [seq, at, actor, action, object_type, object_id, details, prev_hash]",
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        fh.write(json.dumps(header, ensure_ascii=False) + "\n")
        for rec in records:
            fh.write(json.dumps(rec.as_dict(), ensure_ascii=False) + "\n")
    return verify_records(records, head_seq, head_hash)


def verify_export(path: Path, anchors: Iterable[tuple[int, str]] = ()) -> VerifyResult:
    """Verify an exported file on its own (no database needed), and any earlier heads."""
    header, records = read_export(path)
    result = verify_records(records, int(header["head_seq"]), str(header["head_hash"]))
    return check_anchors(result, records, anchors) if result.ok else result


def read_export(path: Path) -> tuple[dict[str, Any], list[EventRecord]]:
    """(header, events) of an exported file, or a clear :class:`InputError`."""
    try:
        with Path(path).open(encoding="utf-8") as fh:
            header = json.loads(fh.readline())
            if header.get("format") != FORMAT:
                raise InputError(f"{path} is not an openlfr audit export ({FORMAT})")
            records = [EventRecord(**json.loads(line)) for line in fh if line.strip()]
    except (OSError, ValueError, TypeError) as err:
        raise InputError(f"cannot read audit export {path}: {err}") from err
    return header, records
