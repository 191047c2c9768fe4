"""Encryption keys and sealed files: a keyring with one primary key, AES-256-GCM, rotation.

**Keyring file** (``OPENLFR_KEY_FILE``, default ``<data_dir>/key``, mode 0600), JSON::

    {"format": "openlfr-keyring/1",
     "primary": "3f2a9c1e",
     "keys": [{"id": "3f2a9c1e", "key": "<base64, 32 bytes>", "created": "2025-01-01T00:00:00+00:00"},
              {"id": "a07b55d2", "key": "...", "created": "...", "retired": "..."}],
     "rotation": null}

A key's id is the first 4 bytes (8 hex digits) of ``SHA-256("openlfr key id\\0" + key)``, so
ids are checked when the file is read. Outside a rotation the ring holds the primary key
alone; during one it also holds the retired keys and ``rotation`` says what is under way
(``{"to": <new id>, "from": [<old ids>], "started": ...}``). The file of earlier versions
(one line: the base64 key) is still read, as a ring of that one key. ``OPENLFR_KEY``
(base64, in the environment) overrides the file with a single fixed key that cannot be rotated.

**Sealed file** (blobs and evaluation caches alike)::

    b"OLFR2" + key id (4 bytes) + nonce (12 bytes) + AES-256-GCM ciphertext and tag

with the file's name (a blob's id) as associated data, so a file renamed to another name
fails to open. Files of earlier versions, ``b"OLFR1" + nonce + ciphertext``, are still read
(every key of the ring is tried); a rotation rewrites them in the new form.

**Rotation** (:func:`begin_rotation`, :func:`reseal_tree`, :func:`finish_rotation`, run by
``openlfr key rotate``) loses nothing if killed at any moment: the keyring is first replaced
atomically by one with a new primary key and the old keys retired; each sealed file not
under the primary is then rewritten (temporary file 0600, fsync, rename); only when every
file is done is the ring replaced by the primary key alone. A rerun after a crash finds the
rotation pending in the file and finishes it rather than starting another. Blobs kept in the
database (PostgreSQL) are sealed the same way, a row's id as the associated data, and resealed
row by row in the same window (:meth:`openlfr.store.db_blobs.DatabaseBlobStore.reseal`).
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import hashlib
import json
import os
import secrets
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from openlfr.errors import OpenLFRError
from openlfr.store.settings import fsync_dir, key_file, tighten_file, write_private

KEY_ENV = "OPENLFR_KEY"  # named in messages: the key itself is read through the settings
FORMAT = "openlfr-keyring/1"
MAGIC_V1 = b"OLFR1"  # + nonce + ciphertext (no key id: earlier versions)
MAGIC_V2 = b"OLFR2"  # + key id + nonce + ciphertext
ID_LEN = 4
NONCE_LEN = 12
KEY_LEN = 32
ROTATE_TMP = ".rotate-tmp"


class EncryptionKeyError(OpenLFRError):
    """The encryption key is missing, malformed or does not open a sealed file."""


def key_id(key: bytes) -> str:
    """The short public id of a key (8 hex digits)."""
    return hashlib.sha256(b"openlfr key id\x00" + key).hexdigest()[: 2 * ID_LEN]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def is_sealed(head: bytes) -> bool:
    """Whether bytes start like a sealed file (either version)."""
    return head[:5] in (MAGIC_V1, MAGIC_V2)


@dataclass(frozen=True)
class _State:
    keys: dict[str, bytes]  # id -> key, primary first
    primary: str
    rotation: dict[str, Any] | None = None
    created: dict[str, str] = field(default_factory=dict)
    retired_at: dict[str, str] = field(default_factory=dict)
    stamp: tuple[int, int, int] | None = None


def _parse(text: str, where: str) -> _State:
    body = text.strip()
    if not body:
        raise EncryptionKeyError(f"key file {where} is empty")
    if not body.startswith("{"):  # earlier versions: one base64 key
        try:
            key = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError) as err:
            raise EncryptionKeyError(f"key file {where} does not hold a 32-byte base64 key") from err
        if len(key) != KEY_LEN:
            raise EncryptionKeyError(f"key file {where} does not hold a 32-byte base64 key")
        return _State({key_id(key): key}, key_id(key))
    try:
        doc = json.loads(body)
        if doc.get("format") != FORMAT:
            raise EncryptionKeyError(f"key file {where}: unknown format {doc.get('format')!r}")
        keys: dict[str, bytes] = {}
        created: dict[str, str] = {}
        retired: dict[str, str] = {}
        for entry in doc["keys"]:
            key = base64.b64decode(entry["key"], validate=True)
            if len(key) != KEY_LEN or key_id(key) != entry["id"]:
                raise EncryptionKeyError(f"key file {where}: key {entry['id']!r} is damaged (wrong length or id)")
            keys[entry["id"]] = key
            created[entry["id"]] = entry.get("created", "")
            if entry.get("retired"):
                retired[entry["id"]] = entry["retired"]
        primary = doc["primary"]
        rotation = doc.get("rotation")
    except (ValueError, KeyError, TypeError, binascii.Error) as err:
        raise EncryptionKeyError(f"key file {where} is not a valid openlfr keyring ({err})") from err
    if primary not in keys:
        raise EncryptionKeyError(f"key file {where}: primary key {primary!r} is missing")
    ordered = {primary: keys[primary], **{k: v for k, v in keys.items() if k != primary}}
    return _State(ordered, primary, rotation, created, retired)


class Keyring:
    """The keys that seal and open files: one primary (sealing), others only opening.

    A ring read from a file notices when the file is replaced (a rotation by another
    process) and reloads it before sealing, and before giving up on a file it cannot open.
    """

    def __init__(self, state: _State, path: Path | None = None, source: str = "static") -> None:
        self._state = state
        self.path = path
        self.source = source  # "file", "env" or "static"
        self._aeads: dict[bytes, AESGCM] = {}

    # ------------------------------------------------------------------ building
    @classmethod
    def single(cls, key: bytes, source: str = "static") -> Keyring:
        """A fixed ring of one key."""
        if len(key) != KEY_LEN:
            raise EncryptionKeyError("the encryption key must be 32 bytes")
        return cls(_State({key_id(key): key}, key_id(key)), None, source)

    @classmethod
    def from_file(cls, path: Path, *, create: bool = True) -> Keyring:
        """The ring in ``path``; a new one (one random key, mode 0600) if it is missing and
        ``create`` is set. Two processes creating it at once end up with the same key."""
        path = Path(path)
        if not path.exists():
            if not create:
                raise EncryptionKeyError(f"no key file at {path}")
            _create(path)
        tighten_file(path)
        stamp = _stamp(path)
        try:
            text = path.read_text()
        except OSError as err:
            raise EncryptionKeyError(f"key file {path} cannot be read: {err}") from err
        state = _parse(text, str(path))
        return cls(_State(state.keys, state.primary, state.rotation, state.created, state.retired_at, stamp),
                   path, "file")

    def refresh(self) -> bool:
        """Reload the file if another process replaced it; whether anything changed."""
        if self.path is None:
            return False
        stamp = _stamp(self.path)
        if stamp is None or stamp == self._state.stamp:
            return False
        try:
            state = _parse(self.path.read_text(), str(self.path))
        except (OSError, EncryptionKeyError):
            return False  # keep the keys we have rather than lose them to a bad read
        self._state = _State(state.keys, state.primary, state.rotation, state.created, state.retired_at, stamp)
        return True

    # ------------------------------------------------------------------ facts
    @property
    def primary(self) -> str:
        """Id of the key that seals."""
        return self._state.primary

    @property
    def primary_key(self) -> bytes:
        """The key that seals."""
        return self._state.keys[self._state.primary]

    @property
    def ids(self) -> list[str]:
        """Every key id, primary first."""
        return list(self._state.keys)

    @property
    def retired(self) -> list[str]:
        """Ids of the keys kept only to open files not yet resealed."""
        return [k for k in self._state.keys if k != self._state.primary]

    @property
    def rotation(self) -> dict[str, Any] | None:
        """The rotation under way, or ``None``."""
        return self._state.rotation

    def has(self, kid: str) -> bool:
        """Whether the ring holds key ``kid``."""
        return kid in self._state.keys

    def dumps(self) -> bytes:
        """The ring as the JSON keyring file."""
        s = self._state
        keys = []
        for kid, key in s.keys.items():
            entry = {"id": kid, "key": base64.b64encode(key).decode(), "created": s.created.get(kid, "")}
            if kid in s.retired_at:
                entry["retired"] = s.retired_at[kid]
            keys.append(entry)
        doc = {"format": FORMAT, "primary": s.primary, "keys": keys, "rotation": s.rotation}
        return (json.dumps(doc, indent=1) + "\n").encode()

    def save(self, path: Path | None = None) -> None:
        """Replace the keyring file atomically (temporary file 0600, fsync, rename)."""
        target = Path(path or self.path or "")
        if not str(target):
            raise EncryptionKeyError("this keyring has no file to be saved to")
        write_private(target, self.dumps(), durable=True)
        self.path = target
        self.source = "file"
        self._state = _State(self._state.keys, self._state.primary, self._state.rotation, self._state.created,
                             self._state.retired_at, _stamp(target))

    # ------------------------------------------------------------------ sealing
    def _aead(self, key: bytes) -> AESGCM:
        aead = self._aeads.get(key)
        if aead is None:
            aead = self._aeads[key] = AESGCM(key)
        return aead

    def seal(self, data: bytes, aad: bytes) -> bytes:
        """``data`` encrypted under the primary key, bound to ``aad`` (the file's name)."""
        self.refresh()
        s = self._state
        nonce = secrets.token_bytes(NONCE_LEN)
        return MAGIC_V2 + bytes.fromhex(s.primary) + nonce + self._aead(s.keys[s.primary]).encrypt(nonce, data, aad)

    def open(self, sealed: bytes, aad: bytes, what: str = "file") -> bytes:
        """Decrypt what :meth:`seal` (or an earlier version) wrote; :class:`EncryptionKeyError`
        if it is not sealed, was sealed under a key the ring lacks, or was tampered with."""
        try:
            return self._open(sealed, aad, what)
        except EncryptionKeyError:
            if is_sealed(sealed) and self.refresh():
                return self._open(sealed, aad, what)
            raise

    def _open(self, sealed: bytes, aad: bytes, what: str) -> bytes:
        keys = self._state.keys
        if sealed.startswith(MAGIC_V2):
            head = len(MAGIC_V2)
            kid = sealed[head : head + ID_LEN].hex()
            nonce = sealed[head + ID_LEN : head + ID_LEN + NONCE_LEN]
            body = sealed[head + ID_LEN + NONCE_LEN :]
            key = keys.get(kid)
            if key is None:
                raise EncryptionKeyError(f"{what} cannot be decrypted: wrong key or tampered file "
                                         f"(sealed under key {kid}, which is not in the keyring)")
            try:
                return self._aead(key).decrypt(nonce, body, aad)
            except InvalidTag as err:
                raise EncryptionKeyError(f"{what} cannot be decrypted: wrong key or tampered file") from err
        if sealed.startswith(MAGIC_V1):
            nonce, body = sealed[len(MAGIC_V1) : len(MAGIC_V1) + NONCE_LEN], sealed[len(MAGIC_V1) + NONCE_LEN :]
            for key in keys.values():
                try:
                    return self._aead(key).decrypt(nonce, body, aad)
                except InvalidTag:
                    continue
            raise EncryptionKeyError(f"{what} cannot be decrypted: wrong key or tampered file")
        raise EncryptionKeyError(f"{what} is not an openlfr encrypted file")

    def is_current(self, sealed: bytes) -> bool:
        """Whether ``sealed`` is already under the primary key (nothing for a rotation to do)."""
        return sealed.startswith(MAGIC_V2) and sealed[len(MAGIC_V2) : len(MAGIC_V2) + ID_LEN].hex() == self.primary


def _create(path: Path) -> None:
    """Write a new one-key ring to ``path`` unless another process got there first."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = secrets.token_bytes(KEY_LEN)
    ring = Keyring(_State({key_id(key): key}, key_id(key), None, {key_id(key): _now()}))
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(ring.dumps())
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)  # atomic and exclusive: a complete file, or the other's
        except FileExistsError:
            pass
        except OSError:  # pragma: no cover - a file system without hard links
            try:
                fd2 = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass
            else:
                with os.fdopen(fd2, "wb") as fh:
                    fh.write(ring.dumps())
                    fh.flush()
                    os.fsync(fh.fileno())
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)


def env_key() -> bytes | None:
    """The fixed key of the settings (``OPENLFR_KEY``, base64), or ``None`` when none is set."""
    from openlfr.config import get_settings

    secret = get_settings().store.key
    if secret is None or not secret.get_secret_value():
        return None
    try:
        key = base64.b64decode(secret.get_secret_value(), validate=True)
    except (binascii.Error, ValueError) as err:
        raise EncryptionKeyError(f"{KEY_ENV} is not valid base64") from err
    if len(key) != KEY_LEN:
        raise EncryptionKeyError(f"{KEY_ENV} must decode to 32 bytes, got {len(key)}")
    return key


def open_keyring(path: Path | None = None, *, create: bool = True) -> Keyring:
    """The configured ring: ``OPENLFR_KEY`` if set, else the file at ``path`` (default
    ``OPENLFR_KEY_FILE`` or ``<data_dir>/key``), created on first use."""
    key = env_key()
    if key is not None:
        return Keyring.single(key, source="env")
    return Keyring.from_file(path or key_file(), create=create)


def load_or_create_key(key_file_path: Path) -> bytes:
    """The 32-byte primary key from ``OPENLFR_KEY`` (base64) or ``key_file_path``, created if missing."""
    return open_keyring(key_file_path).primary_key


# ---------------------------------------------------------------------- sealed files
def write_sealed(path: Path, data: bytes, ring: Keyring | None = None, *, durable: bool = True) -> None:
    """Seal ``data`` (associated data: the file's name) and write it atomically, mode 0600."""
    path = Path(path)
    write_private(path, (ring or open_keyring()).seal(data, path.name.encode()), durable=durable)


def read_sealed(path: Path, ring: Keyring | None = None) -> bytes:
    """Open a file written by :func:`write_sealed` (or a blob: same format)."""
    path = Path(path)
    return (ring or open_keyring()).open(path.read_bytes(), path.name.encode(), str(path))


# ---------------------------------------------------------------------- rotation
@contextmanager
def rotation_lock(path: Path) -> Iterator[None]:
    """Hold ``<key file>.lock`` (one rotation at a time; released by the kernel if killed)."""
    lock = path.with_name(path.name + ".lock")
    lock.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            raise EncryptionKeyError(f"another key rotation is running (it holds {lock})") from err
        yield
    finally:
        os.close(fd)


def begin_rotation(path: Path) -> tuple[Keyring, bool]:
    """The ring to rotate to, and whether it is a pending rotation being resumed (call it
    holding :func:`rotation_lock`).

    With no rotation pending, a new primary key is made and the ring is saved (atomically)
    with the old keys retired, before any file is touched."""
    for stray in path.parent.glob(f".{path.name}.*.tmp"):  # keys half-written by a killed rotation
        stray.unlink(missing_ok=True)
    ring = Keyring.from_file(path, create=False)
    if ring.rotation is not None:
        return ring, True
    new = secrets.token_bytes(KEY_LEN)
    while ring.has(key_id(new)):  # pragma: no cover - a 32-bit id collision
        new = secrets.token_bytes(KEY_LEN)
    nid, now, s = key_id(new), _now(), ring._state
    keys = {nid: new, **s.keys}
    created = {**s.created, nid: now}
    retired = {**s.retired_at, **{k: now for k in s.keys if k not in s.retired_at}}
    rotation = {"to": nid, "from": list(s.keys), "started": now}
    pending = Keyring(_State(keys, nid, rotation, created, retired), path, "file")
    pending.save()
    return pending, False


def finish_rotation(ring: Keyring) -> Keyring:
    """Drop the retired keys: the ring becomes the primary key alone (saved atomically)."""
    s = ring._state
    final = Keyring(_State({s.primary: s.keys[s.primary]}, s.primary, None, {s.primary: s.created.get(s.primary, "")}),
                    ring.path, "file")
    final.save()
    return final


def sealed_files(roots: Iterable[Path]) -> Iterator[Path]:
    """Every sealed file under ``roots`` (by its first bytes), each once, symbolic links and
    temporary files skipped."""
    seen: set[tuple[int, int]] = set()
    for root in roots:
        for folder, dirs, files in os.walk(root):
            dirs.sort()
            for name in sorted(files):
                if name.endswith((".tmp", ROTATE_TMP)):
                    continue
                path = Path(folder) / name
                try:
                    st = path.lstat()
                    if not path.is_file() or path.is_symlink() or (st.st_dev, st.st_ino) in seen:
                        continue
                    seen.add((st.st_dev, st.st_ino))
                    with open(path, "rb") as fh:
                        head = fh.read(len(MAGIC_V2))
                except OSError:
                    continue
                if is_sealed(head):
                    yield path


def reseal_file(ring: Keyring, path: Path) -> str:
    """Rewrite one sealed file under the primary key: ``"current"`` (nothing to do),
    ``"resealed"``, ``"unreadable"`` (no key of the ring opens it: left as it is) or
    ``"gone"`` (deleted meanwhile)."""
    try:
        with open(path, "rb") as fh:
            sealed = fh.read(len(MAGIC_V2) + ID_LEN)
            if ring.is_current(sealed):
                return "current"
            sealed += fh.read()
    except FileNotFoundError:
        return "gone"
    aad = path.name.encode()
    try:
        data = ring.open(sealed, aad, str(path))
    except EncryptionKeyError:
        return "unreadable"
    tmp = path.with_name(path.name + ROTATE_TMP)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(ring.seal(data, aad))
            fh.flush()
            os.fsync(fh.fileno())
        if not path.exists():  # deleted while we worked (retention): do not bring it back
            tmp.unlink(missing_ok=True)
            return "gone"
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return "resealed"


def reseal_tree(ring: Keyring, roots: Iterable[Path],
                progress: Callable[[Path, str], None] | None = None) -> Counter[str]:
    """Reseal every sealed file under ``roots`` with the ring's primary key, repeating the
    sweep until one finds nothing left to do (files written meanwhile under an old key are
    caught too). Stray temporary files of an interrupted rotation are removed first. Returns
    the outcome counts of the first sweep plus anything resealed later."""
    roots = [Path(r) for r in roots if Path(r).exists()]
    for root in roots:
        for stray in root.rglob(f"*{ROTATE_TMP}"):
            stray.unlink(missing_ok=True)
    totals: Counter[str] = Counter()
    first = True
    while True:
        counts: Counter[str] = Counter()
        touched: set[Path] = set()
        for path in sealed_files(roots):
            outcome = reseal_file(ring, path)
            counts[outcome] += 1
            if outcome == "resealed":
                touched.add(path.parent)
            if progress is not None:
                progress(path, outcome)
        for folder in touched:  # the renames survive a power cut before the old key is dropped
            fsync_dir(folder)
        if first:
            totals = counts
            first = False
        else:
            totals["resealed"] += counts["resealed"]
        if not counts["resealed"]:
            return totals
