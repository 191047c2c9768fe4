"""Erasure keys: per-alert and per-request keys that seal personal data, destroyed to erase it.

Personal data that must outlive nothing but its purpose is sealed (AES-256-GCM) under a
random key of its own: an alert's crop, notes and audit details under ``alert:<id>``, a
request's requester, evidence and photo under ``request:<id>``. The key is stored as an
encrypted blob (so a key rotation reseals it like any other blob). **Erasing** destroys the
key: the blob is deleted after the commit and the row keeps only when and why. The sealed
ciphertext may stay where it is, in audit events above all: the hash chain covers the
ciphertext, so it still verifies, while nobody, holding the database, its backups or the
store key, can read what it held.

Sealed text is written ``sealed:<ref>:<base64 of nonce + ciphertext>``, the ref bound in as
associated data, so a value moved to another subject's row fails to open.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from openlfr.errors import NotFoundError
from openlfr.governance.context import SCRUB_AFTER_COMMIT, Ctx
from openlfr.store.keys import EncryptionKeyError
from openlfr.store.models import ErasureKey, MediaItem

#: what a reader is shown in place of sealed data whose key was destroyed
ERASED = "[erased]"
#: the prefix of sealed bytes (crops) and of sealed text
BYTES_MAGIC = b"OLFRK1"
TEXT_PREFIX = "sealed:"
_NONCE = 12
_CACHE = "openlfr.erasure_keys"  # Session.info: ref -> key bytes (or None: destroyed) for this transaction


def alert_ref(alert_id: int) -> str:
    """The erasure key reference of one alert."""
    return f"alert:{int(alert_id)}"


def request_ref(request_id: int) -> str:
    """The erasure key reference of one request (its requester's data)."""
    return f"request:{int(request_id)}"


def _cache(ctx: Ctx) -> dict[str, bytes | None]:
    return ctx.session.info.setdefault(_CACHE, {})


def create_key(ctx: Ctx, ref: str) -> bytes:
    """A new key for ``ref`` (in the caller's transaction); an existing live key is returned as is."""
    current = key_of(ctx, ref)
    if current is not None:
        return current
    if ctx.session.get(ErasureKey, ref) is not None:
        raise EncryptionKeyError(f"the erasure key {ref} was destroyed; nothing new may be sealed under it")
    key = secrets.token_bytes(32)
    ctx.session.add(ErasureKey(ref=ref, blob=ctx.blobs.put(key), created_at=ctx.now()))
    ctx.session.flush()
    _cache(ctx)[ref] = key
    return key


def key_of(ctx: Ctx, ref: str) -> bytes | None:
    """The live key of ``ref``, or None when it was destroyed or never made."""
    cache = _cache(ctx)
    if ref in cache:
        return cache[ref]
    row = ctx.session.get(ErasureKey, ref)
    key = None
    if row is not None and row.blob is not None:
        try:
            key = ctx.blobs.get(row.blob)
        except NotFoundError:  # destroyed by a transaction committed after this one read the row
            key = None
    cache[ref] = key
    return key


def is_destroyed(ctx: Ctx, ref: str) -> bool:
    """Whether ``ref`` had a key that was destroyed (erased)."""
    row = ctx.session.get(ErasureKey, ref)
    return row is not None and row.destroyed_at is not None


def destroy_key(ctx: Ctx, ref: str, reason: str) -> bool:
    """Destroy ``ref``'s key (its blob is deleted when the transaction commits). Returns whether
    there was a live key. The caller audits the erasure."""
    row = ctx.session.get(ErasureKey, ref)
    _cache(ctx)[ref] = None
    ctx.session.info[SCRUB_AFTER_COMMIT] = True  # leave no old page of the erased rows in SQLite's log
    if row is None:
        # never had one (an alert stored before erasure keys existed): record the destruction
        # anyway, so nothing can be sealed under it later
        ctx.session.add(ErasureKey(ref=ref, blob=None, created_at=ctx.now(), destroyed_at=ctx.now(),
                                   destroyed_reason=reason))
        ctx.session.flush()
        return False
    if row.destroyed_at is not None:
        return False
    if row.blob is not None:
        ctx.blobs.delete(row.blob)
    row.blob, row.destroyed_at, row.destroyed_reason = None, ctx.now(), reason
    return True


def seal_bytes(ctx: Ctx, ref: str, data: bytes) -> bytes:
    """``data`` sealed under ``ref``'s key (made if needed)."""
    key = create_key(ctx, ref)
    nonce = secrets.token_bytes(_NONCE)
    return BYTES_MAGIC + nonce + AESGCM(key).encrypt(nonce, data, ref.encode())


def is_sealed_bytes(data: bytes) -> bool:
    """Whether ``data`` was written by :func:`seal_bytes`."""
    return data.startswith(BYTES_MAGIC)


def open_bytes(ctx: Ctx, ref: str, sealed: bytes) -> bytes | None:
    """What :func:`seal_bytes` sealed, or None when the key was destroyed. Bytes that were never
    sealed (written before erasure keys existed) are returned unchanged."""
    if not is_sealed_bytes(sealed):
        return sealed
    key = key_of(ctx, ref)
    if key is None:
        return None
    body = sealed[len(BYTES_MAGIC):]
    try:
        return AESGCM(key).decrypt(body[:_NONCE], body[_NONCE:], ref.encode())
    except InvalidTag as err:
        raise EncryptionKeyError(f"data sealed under {ref} cannot be opened: tampered or moved") from err


def media_bytes(ctx: Ctx, item: MediaItem) -> bytes:
    """The plain bytes of a crop or footage item (opened under its alert's key);
    :class:`NotFoundError` when it was deleted or erased."""
    if item.blob is None:
        raise NotFoundError(f"the {item.kind} of media item {item.id} was deleted (retention over, or erased)")
    data = ctx.blobs.get(item.blob)
    if item.alert_id is None:
        return data
    opened = open_bytes(ctx, alert_ref(item.alert_id), data)
    if opened is None:
        raise NotFoundError(f"the {item.kind} of alert {item.alert_id} was erased")
    return opened


def seal_text(ctx: Ctx, ref: str, text: str) -> str:
    """``text`` sealed under ``ref``'s key, as text (``""`` stays ``""``: nothing to hide)."""
    if text == "":
        return ""
    key = create_key(ctx, ref)
    nonce = secrets.token_bytes(_NONCE)
    body = base64.b64encode(nonce + AESGCM(key).encrypt(nonce, text.encode(), ref.encode())).decode()
    return f"{TEXT_PREFIX}{ref}:{body}"


def is_sealed_text(value: Any) -> bool:
    """Whether ``value`` is text written by :func:`seal_text`."""
    return isinstance(value, str) and value.startswith(TEXT_PREFIX) and value.count(":") >= 3


def open_text(ctx: Ctx, value: str | None) -> str | None:
    """The plain text of a value :func:`seal_text` wrote, :data:`ERASED` when its key is gone;
    any other value (plain text written before sealing, None) unchanged."""
    if not is_sealed_text(value):
        return value
    assert value is not None
    _, kind, ident, body = value.split(":", 3)
    ref = f"{kind}:{ident}"
    key = key_of(ctx, ref)
    if key is None:
        return ERASED
    raw = base64.b64decode(body)
    try:
        return AESGCM(key).decrypt(raw[:_NONCE], raw[_NONCE:], ref.encode()).decode()
    except InvalidTag as err:
        raise EncryptionKeyError(f"text sealed under {ref} cannot be opened: tampered or moved") from err


def seal_fields(ctx: Ctx, ref: str, fields: Mapping[str, Any]) -> dict[str, str]:
    """An audit-details part holding ``fields`` sealed under ``ref``: ``{"key": ref, "sealed": ...}``."""
    return {"key": ref, "sealed": seal_text(ctx, ref, json.dumps(dict(fields), sort_keys=True, default=str))}


def open_fields(ctx: Ctx, part: Any) -> dict[str, Any] | None:
    """The fields :func:`seal_fields` sealed, or None when erased (or not such a part)."""
    if not isinstance(part, Mapping) or not is_sealed_text(part.get("sealed")):
        return None
    text = open_text(ctx, part["sealed"])
    if text is None or text == ERASED:
        return None
    return json.loads(text)


__all__ = [
    "ERASED", "alert_ref", "create_key", "destroy_key", "is_destroyed", "is_sealed_bytes", "is_sealed_text",
    "key_of", "media_bytes", "open_bytes", "open_fields", "open_text", "request_ref", "seal_bytes", "seal_fields",
    "seal_text",
]
