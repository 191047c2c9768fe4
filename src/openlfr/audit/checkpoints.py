"""Signed audit checkpoints: the installation's Ed25519 key signs the chain head.

A hash chain alone cannot show that nobody rewrote it from some event on and recomputed
every later hash. A checkpoint can, once it has been copied out of the operator's hands
(published on ``GET /api/public/checkpoints``, exported with ``openlfr audit checkpoints``):
it names an event number and the hash that event had, signed. A rewrite of any event at or
before a published checkpoint changes that event's hash, so the checkpoint no longer matches
the chain. Events after the newest published checkpoint are protected only by the next one.

**Signed message** (exact bytes, UTF-8)::

    openlfr-checkpoint/1\\n<seq>\\n<head_hash>\\n<at>\\n<reason>\\n

``seq`` in decimal, ``head_hash`` 64 lowercase hex digits, ``at`` the ISO 8601 UTC time
with microseconds (as stored), ``reason`` one line. The signature is plain Ed25519 (RFC 8032)
over those bytes; ``openssl pkeyutl -verify -pubin -inkey pub.pem -rawin -in msg -sigfile sig``
checks it. A key's id is the SHA-256 (hex) of its raw 32-byte public key.

**The private key** is made on first need (the first checkpoint; reading never makes one) and
kept only sealed by the installation's keyring, never in plain text, where the installation's
blobs are (:meth:`openlfr.store.blobs.BlobBackend.secret`): with blobs in files (the embedded
default) in ``<data_dir>/checkpoint-signing.sealed`` beside the blob folder, and never in the
database; with blobs in the database (PostgreSQL) as the row ``checkpoint-signing.sealed`` of
the ``blobs`` table, so that every host and API replica signs with the one key of the
installation. The first creator wins (a file linked into place, or ``INSERT ... ON CONFLICT DO
NOTHING`` in the signing transaction). A key rotation reseals it with everything else.

Checkpoints are **not** audit events themselves: an event appended for one would move the head
it has just signed, so every checkpoint would be one event behind. They are their own table,
and a change to it shows in the published copies.

**Export file** (``openlfr-checkpoints/1``, JSON)::

    {"format": "openlfr-checkpoints/1", "public_key": "<hex>", "key_id": "<hex>",
     "exported_at": "...", "checkpoints": [{"seq", "head_hash", "at", "reason", "key_id",
     "public_key", "signature"}, ...]}
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from sqlalchemy import select
from sqlalchemy.orm import Session

from openlfr.audit.chain import AUDITED, EventRecord, head, iso_utc
from openlfr.errors import InputError
from openlfr.store.blobs import FileSecret, SealedSecret
from openlfr.store.keys import EncryptionKeyError, Keyring
from openlfr.store.models import AuditCheckpoint

FORMAT = "openlfr-checkpoints/1"
MESSAGE_TAG = "openlfr-checkpoint/1"
KEY_FILE_NAME = "checkpoint-signing.sealed"
#: the DER prefix of an Ed25519 SubjectPublicKeyInfo; + the 32 raw bytes = what a PEM file holds
SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")


def message(seq: int, head_hash: str, at: str, reason: str) -> bytes:
    """The exact bytes a checkpoint signs (see module docstring)."""
    return f"{MESSAGE_TAG}\n{seq}\n{head_hash}\n{at}\n{reason}\n".encode()


def key_id(public_key_hex: str) -> str:
    """SHA-256 (hex) of a raw Ed25519 public key given in hex."""
    return hashlib.sha256(bytes.fromhex(public_key_hex)).hexdigest()


def public_key_pem(public_key_hex: str) -> str:
    """The PEM (SubjectPublicKeyInfo) form of a raw public key, for ``openssl -pubin``."""
    import base64

    body = base64.b64encode(SPKI_PREFIX + bytes.fromhex(public_key_hex)).decode()
    return f"-----BEGIN PUBLIC KEY-----\n{body}\n-----END PUBLIC KEY-----\n"


@dataclass(frozen=True)
class Checkpoint:
    """One signed checkpoint as plain data."""

    seq: int
    head_hash: str
    at: str
    reason: str
    key_id: str
    public_key: str
    signature: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)

    def message(self) -> bytes:
        """The bytes its signature is over."""
        return message(self.seq, self.head_hash, self.at, self.reason)


def signing_key_path(blob_root: Path) -> Path:
    """Where an installation whose blobs are files keeps its sealed signing key: beside its blob folder."""
    return Path(blob_root).parent / KEY_FILE_NAME


class Signer:
    """The installation's Ed25519 signing key, read (or made) only when first needed.

    ``where`` is the sealed key's place: a file path, or the named secret of the blob store
    (:meth:`openlfr.store.blobs.BlobBackend.secret`). A key is kept in memory only once it is
    known to be stored for good: one made in a transaction that is still open is read again
    (through that transaction) until it commits, so a rolled-back first checkpoint never leaves
    this process signing with a key nobody else has."""

    def __init__(self, where: Path | SealedSecret, ring: Keyring) -> None:
        self.secret = where if isinstance(where, SealedSecret) else FileSecret(Path(where))
        self.ring = ring
        self._key: Ed25519PrivateKey | None = None
        self._made_in: Session | None = None  # the open transaction that made the stored key
        self._lock = threading.Lock()

    def _load(self, *, create: bool, session: Session | None = None) -> Ed25519PrivateKey | None:
        with self._lock:
            if self._key is not None:
                return self._key
            sealed = self.secret.load(session)
            if sealed is None:
                if not create:
                    return None
                raw = Ed25519PrivateKey.generate().private_bytes(
                    serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
                if not self.secret.create(self.ring.seal(raw, self.secret.name.encode()), session):
                    self._made_in = session
                sealed = self.secret.load(session)  # ours, or the one another process stored first
                if sealed is None:  # pragma: no cover - deleted between the two statements
                    raise EncryptionKeyError(f"the checkpoint signing key {self.secret.name} vanished")
            raw = self.ring.open(sealed, self.secret.name.encode(), self.secret.name)
            if len(raw) != 32:
                raise EncryptionKeyError(f"{self.secret.name} does not hold an Ed25519 key")
            key = Ed25519PrivateKey.from_private_bytes(raw)
            if session is None or session is not self._made_in:
                self._key, self._made_in = key, None
            return key

    def public_key(self, *, create: bool = False, session: Session | None = None) -> str | None:
        """The raw public key (hex); ``None`` when no key exists yet and ``create`` is not set."""
        key = self._load(create=create, session=session)
        if key is None:
            return None
        return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()

    def sign(self, data: bytes, session: Session | None = None) -> tuple[str, str]:
        """(public key hex, signature hex) of ``data``; makes the key if there is none (in
        ``session``'s transaction where the key lives in the database)."""
        key = self._load(create=True, session=session)
        assert key is not None
        public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()
        return public, key.sign(data).hex()


# ---------------------------------------------------------------------- making them
def sign_head(session: Session, signer: Signer, *, at: datetime, reason: str) -> AuditCheckpoint | None:
    """Sign the chain's current head inside the caller's transaction (no checkpoint of an empty
    chain: there is nothing to vouch for)."""
    seq, digest = head(session)
    if seq == 0:
        return None
    reason = " ".join(reason.split())[:80]
    at_text = iso_utc(at)
    public, signature = signer.sign(message(seq, digest, at_text, reason), session)
    row = AuditCheckpoint(seq=seq, head_hash=digest, at=at_text, reason=reason, key_id=key_id(public),
                          public_key=public, signature=signature)
    session.add(row)
    session.flush()
    return row


def due(session: Session, now: datetime, interval_minutes: float) -> bool:
    """Whether the newest checkpoint is older than the interval (or there is none): one query."""
    newest = session.execute(select(AuditCheckpoint.at).order_by(AuditCheckpoint.id.desc()).limit(1)).scalar()
    return newest is None or datetime.fromisoformat(newest) + timedelta(minutes=interval_minutes) <= now


def sign_if_due(session: Session, signer: Signer, *, now: datetime, interval_minutes: float) -> AuditCheckpoint | None:
    """At the end of a transaction that appended audit events: a checkpoint if the last is too old."""
    if not session.info.pop(AUDITED, False) or not due(session, now, interval_minutes):
        return None
    return sign_head(session, signer, at=now, reason="interval")


# ---------------------------------------------------------------------- reading them
def _plain(row: AuditCheckpoint) -> Checkpoint:
    return Checkpoint(row.seq, row.head_hash, row.at, row.reason, row.key_id, row.public_key, row.signature)


def load(session: Session) -> list[Checkpoint]:
    """Every checkpoint, oldest first."""
    return [_plain(r) for r in session.execute(select(AuditCheckpoint).order_by(AuditCheckpoint.id)).scalars()]


def latest(session: Session) -> Checkpoint | None:
    """The newest checkpoint (for the transparency page), or ``None``."""
    row = session.execute(select(AuditCheckpoint).order_by(AuditCheckpoint.id.desc()).limit(1)).scalar()
    return _plain(row) if row is not None else None


def export_document(checkpoints: list[Checkpoint], public_key: str | None, *, now: datetime) -> dict[str, Any]:
    """The ``openlfr-checkpoints/1`` document: the installation's public key and every checkpoint."""
    if public_key is None and checkpoints:
        public_key = checkpoints[-1].public_key
    return {
        "format": FORMAT,
        "public_key": public_key,
        "key_id": key_id(public_key) if public_key else None,
        "exported_at": iso_utc(now),
        "message": f"Ed25519 over UTF-8 '{MESSAGE_TAG}\\n<seq>\\n<head_hash>\\n<at>\\n<reason>\\n'",
        "checkpoints": [c.as_dict() for c in checkpoints],
    }


def export_checkpoints(session: Session, signer: Signer, path: Path, *, now: datetime) -> dict[str, Any]:
    """Write every checkpoint and the installation's public key to ``path`` (JSON); returns it."""
    doc = export_document(load(session), signer.public_key(), now=now)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return doc


def read_file(path: Path) -> tuple[str | None, list[Checkpoint]]:
    """(the pinned public key, the checkpoints) of an exported file; a clear :class:`InputError` otherwise."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise InputError(f"{path} is not an openlfr checkpoints file ({FORMAT})")
        items = [Checkpoint(**{k: c[k] for k in Checkpoint.__dataclass_fields__}) for c in doc["checkpoints"]]
        pinned = doc.get("public_key")
    except (OSError, ValueError, TypeError, KeyError) as err:
        raise InputError(f"cannot read checkpoints file {path}: {err}") from err
    return (str(pinned) if pinned else None), items


# ---------------------------------------------------------------------- checking them
def signature_ok(cp: Checkpoint) -> bool:
    """Whether the checkpoint's signature is valid under the key it names (and the id is that key's)."""
    try:
        if key_id(cp.public_key) != cp.key_id:
            return False
        key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(cp.public_key))
        key.verify(bytes.fromhex(cp.signature), cp.message())
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def verify(checkpoints: Iterable[Checkpoint], records: Iterable[EventRecord], *,
           public_key: str | None) -> list[str]:
    """One line per checkpoint that fails: a bad signature, a key other than ``public_key`` (the
    installation's, or the one pinned in the file; ``None``: any key is taken as is), or a
    sequence number / hash no longer in ``records`` (the chain was rewritten at or before it)."""
    hashes = {r.seq: r.hash for r in records}
    problems = []
    for cp in checkpoints:
        where = f"checkpoint #{cp.seq} of {cp.at} ({cp.reason})"
        if public_key is not None and cp.public_key.lower() != public_key.lower():
            problems.append(f"{where}: signed by key {cp.key_id[:16]}..., not the installation's "
                            f"{key_id(public_key)[:16]}...")
        elif not signature_ok(cp):
            problems.append(f"{where}: the signature does not match (forged or altered)")
        elif cp.seq not in hashes:
            problems.append(f"{where}: event #{cp.seq} is not in the chain (cut off or rewritten)")
        elif hashes[cp.seq] != cp.head_hash:
            problems.append(f"{where}: event #{cp.seq} no longer has the signed hash {cp.head_hash[:16]}...: "
                            "the chain was rewritten at or before it")
    return problems
