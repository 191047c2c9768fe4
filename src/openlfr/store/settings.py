"""Where the governance store lives: database URL, blob folder and key file, as the settings
say (:class:`openlfr.config.StoreSettings`: ``OPENLFR_DATABASE_URL``, ``OPENLFR_KEY_FILE``),
with the embedded defaults ``sqlite:///<data_dir>/openlfr.db`` and ``<data_dir>/key``; blobs
kept as files (the default on SQLite, see :func:`openlfr.store.db_blobs.blob_backend`) are
always in ``<data_dir>/blobs``.

Everything under the data directory is private to its owner: folders are created 0700 and
files 0600 (:func:`private_dir`, :func:`write_private`).
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from openlfr.config import get_settings

def private_dir(path: Path) -> Path:
    """Create ``path`` (and any missing parents) with mode 0700; tighten it to 0700 if it already
    exists with group or other bits and belongs to this user. Returns ``path``."""
    path = Path(path)
    missing = []
    probe = path
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    for folder in reversed(missing):  # every folder made here is 0700, not only the last
        folder.mkdir(mode=0o700, exist_ok=True)
    if not missing:
        path.mkdir(mode=0o700, exist_ok=True)  # an error if it is a file
    try:
        st = path.stat()
        if st.st_mode & 0o077 and st.st_uid == os.geteuid():
            os.chmod(path, stat.S_IMODE(st.st_mode) & 0o700)
    except OSError:  # pragma: no cover - a folder we may use but not change (not ours)
        pass
    return path


def tighten_file(path: Path) -> None:
    """Drop group and other permission bits from an existing file of this user (no error if
    it is missing or not ours)."""
    try:
        st = os.stat(path)
        if st.st_mode & 0o077 and st.st_uid == os.geteuid():
            os.chmod(path, stat.S_IMODE(st.st_mode) & 0o700)
    except OSError:
        pass


def fsync_dir(folder: Path) -> None:
    """Make a rename or new file in ``folder`` durable (best effort where not supported)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def write_private(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Write ``data`` to ``path`` atomically with mode 0600: a temporary file beside it
    (created 0600, fsynced when ``durable``), then a rename. A reader sees the old or the new
    content, never a partial file; a crash leaves at most a stray ``.*.tmp`` file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        fsync_dir(path.parent)


def data_dir() -> Path:
    """The openlfr data directory (``OPENLFR_DATA_DIR``), created 0700 if missing."""
    return private_dir(Path(get_settings().data_dir))


def database_url() -> str:
    """The configured URL (``OPENLFR_DATABASE_URL``) or the SQLite file in the data directory."""
    url = get_settings().store.database_url
    if url:
        return url
    return f"sqlite:///{data_dir() / 'openlfr.db'}"


def existing_database_url() -> str:
    """The configured store's URL if it already exists (a SQLite file that is not empty), else
    a :class:`~openlfr.errors.NotFoundError`. Creates nothing: for checks such as
    ``openlfr audit verify``, where a mistyped data directory must not become a new store."""
    from openlfr.errors import NotFoundError

    settings = get_settings()
    if settings.store.database_url:
        return settings.store.database_url
    path = Path(settings.data_dir) / "openlfr.db"
    if not path.is_file():
        raise NotFoundError(f"no openlfr store at {path}: check OPENLFR_DATA_DIR (nothing was created)")
    if path.stat().st_size == 0:
        raise NotFoundError(f"the store at {path} is empty (0 bytes): it holds no audit log to verify")
    return f"sqlite:///{path}"


def blob_dir() -> Path:
    """Folder of encrypted blobs kept as files: ``<data_dir>/blobs``."""
    return data_dir() / "blobs"


def eval_cache_dir() -> Path:
    """Default folder of sealed evaluation caches: ``<data_dir>/eval-cache``."""
    return data_dir() / "eval-cache"


def key_file() -> Path:
    """The keyring file: the configured one (``OPENLFR_KEY_FILE``) or ``<data_dir>/key``."""
    configured = get_settings().store.key_file
    if configured:
        return Path(configured).expanduser()
    return data_dir() / "key"
