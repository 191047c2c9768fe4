"""Does the store still say what the audit log says it did?

The hash chain proves the log itself was not rewritten; it says nothing of the rows and files
the log describes. Someone with the database could delete a ledger row (after dropping its
trigger), flip an alert's outcome, loosen a deployment's threshold, or swap an encrypted image,
without touching the log. :func:`check_store` compares the store with the log:

* every ``image.share`` event has its image row with the same SHA-256, a ``shared`` ledger row
  with that hash, and (while the image is live) an image file that decrypts to that hash and a
  template file that matches the ``template_sha256`` recorded when it was shared (or last
  re-templated); every
  ``image.delete`` event has its ``deleted`` ledger row and an image no longer live; no ledger
  row exists without an event;
* every settled alert's outcome is the one its last ``alert.review`` event recorded, and no
  outcome is set without one;
* every deployment's threshold is the one last recorded (requested, changed, then frozen at
  authorisation), and its snapshot file still hashes to the SHA-256 recorded at authorisation.

Without the encryption key (``blobs=None``) the file checks are skipped, and the result says so.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from openlfr.audit.chain import load_records
from openlfr.errors import OpenLFRError
from openlfr.store.blobs import BlobBackend
from openlfr.store.models import Alert, Deployment, LedgerEntry, SharedImage


@dataclass
class StoreCheck:
    """Differences between the store and its audit log (empty: none found)."""

    problems: list[str] = field(default_factory=list)
    files_checked: bool = True
    checked: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def message(self) -> str:
        """One line for people (then one line per problem)."""
        what = ", ".join(f"{n} {k}" for k, n in self.checked.items())
        files = "" if self.files_checked else "; encrypted files NOT checked (no key)"
        if self.ok:
            return f"store matches the audit log: {what}{files}"
        return f"store DIFFERS from the audit log ({len(self.problems)} problems; {what}{files}):\n  " + \
            "\n  ".join(self.problems)


def _details(record: Any) -> dict[str, Any]:
    try:
        value = json.loads(record.details)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _blob_sha(blobs: BlobBackend, blob_id: str | None) -> str | None:
    """SHA-256 of a decrypted file; None when it is missing or does not decrypt."""
    if not blob_id:
        return None
    try:
        return hashlib.sha256(blobs.get(blob_id)).hexdigest()
    except OpenLFRError:
        return None


def check_store(session: Session, blobs: BlobBackend | None) -> StoreCheck:
    """Compare the rows and encrypted files with what the audit log recorded (module doc)."""
    out = StoreCheck(files_checked=blobs is not None)
    events: dict[str, list[Any]] = defaultdict(list)
    for record in load_records(session):
        events[record.action].append(record)
    problems = out.problems

    # ---- shared images and the ledger
    ledger = session.execute(select(LedgerEntry)).scalars().all()
    by_image: dict[tuple[int, str], list[LedgerEntry]] = defaultdict(list)
    for row in ledger:
        by_image[(row.shared_image_id, row.kind)].append(row)
    shared = {int(e.object_id): (e, _details(e)) for e in events["image.share"]}
    templates = {int(e.object_id): _details(e).get("template_sha256")
                 for e in sorted(events["image.share"] + events["image.retemplate"], key=lambda r: r.seq)}
    deleted = {int(e.object_id) for e in events["image.delete"]}
    for image_id, (event, d) in shared.items():
        image = session.get(SharedImage, image_id)
        sha = d.get("sha256")
        if image is None:
            problems.append(f"image {image_id}: shared (event #{event.seq}) but its row is gone")
            continue
        if image.sha256 != sha:
            problems.append(f"image {image_id}: its SHA-256 is not the one recorded when shared (event #{event.seq})")
        if not any(e.sha256 == sha for e in by_image[(image_id, "shared")]):
            problems.append(f"image {image_id}: the ledger has no 'shared' row for it (event #{event.seq})")
        if image_id in deleted:
            if not by_image[(image_id, "deleted")]:
                problems.append(f"image {image_id}: deleted (audit log) but the ledger has no 'deleted' row")
            if image.deleted_at is None:
                problems.append(f"image {image_id}: deleted (audit log) but live in the store")
        elif image.deleted_at is None and blobs is not None:
            if _blob_sha(blobs, image.image_blob) != image.sha256:
                problems.append(f"image {image_id}: its encrypted image file is missing or altered")
            recorded = templates.get(image_id)
            if recorded and _blob_sha(blobs, image.template_blob) != recorded:
                problems.append(f"image {image_id}: its encrypted template file is missing or altered")
    for (image_id, kind), rows in by_image.items():
        if image_id not in shared:
            problems.append(f"ledger: {len(rows)} '{kind}' row(s) for image {image_id}, "
                            "which the audit log never shared")
        elif kind == "deleted" and image_id not in deleted:
            problems.append(f"ledger: a 'deleted' row for image {image_id}, which the audit log never deleted")
        elif len(rows) > 1:
            problems.append(f"ledger: {len(rows)} '{kind}' rows for image {image_id}, where the audit log has one")
    out.checked["images"] = len(shared)
    out.checked["ledger rows"] = len(ledger)

    # ---- alert outcomes
    settled: dict[int, str | None] = {}
    for e in events["alert.review"]:
        settled[int(e.object_id)] = _details(e).get("outcome")
    alerts = session.execute(select(Alert).where(Alert.deleted_at.is_(None))).scalars().all()
    for alert in alerts:
        want = settled.get(alert.id)
        if alert.review_outcome != want:
            problems.append(f"alert {alert.id}: outcome {alert.review_outcome!r}, but the audit log settled it as "
                            f"{want!r}")
    out.checked["alerts"] = len(alerts)

    # ---- deployment thresholds and snapshots
    thresholds: dict[int, float | None] = {}
    frozen: dict[int, tuple[float | None, str | None]] = {}
    for record in sorted(events["deployment.request"] + events["deployment.threshold"], key=lambda r: r.seq):
        d = _details(record)
        thresholds[int(record.object_id)] = d.get("threshold", d.get("new"))
    for e in events["deployment.authorise"]:
        d = _details(e)
        frozen[int(e.object_id)] = (d.get("threshold"), d.get("snapshot_sha256"))
    deps = session.execute(select(Deployment)).scalars().all()
    for dep in deps:
        want_t, snap = frozen.get(dep.id, (thresholds.get(dep.id), None))
        if want_t is None or abs(float(dep.threshold) - float(want_t)) > 1e-9:
            problems.append(f"deployment {dep.id}: threshold {dep.threshold:g}, but the audit log recorded {want_t}")
        if snap is not None and dep.snapshot_hash != snap:
            problems.append(f"deployment {dep.id}: snapshot hash differs from the one recorded at authorisation")
        if snap is not None and dep.snapshot_blob and blobs is not None and _blob_sha(blobs, dep.snapshot_blob) != snap:
            problems.append(f"deployment {dep.id}: its encrypted snapshot file is missing or altered")
    out.checked["deployments"] = len(deps)
    return out


__all__ = ["StoreCheck", "check_store"]
