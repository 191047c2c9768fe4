"""``openlfr key``: the encryption keyring (status, rotation).

``openlfr key rotate`` makes a new primary key, reseals every sealed file under the data
directory (the store's blobs, the evaluation caches, anything else sealed), any ``--dir``
given and, where the blobs live in the database (PostgreSQL), every row of its ``blobs``
table, then drops the old keys. It is audited (``key.rotate.start`` and
``key.rotate.done`` in the hash-chained audit log, with counts) and can be killed at any
moment: run it again and it finishes the pending rotation instead of starting another.
A key given in ``OPENLFR_KEY`` is refused: it is not ours to replace.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from openlfr.cli.store import open_store
from openlfr.cli.support import JsonOption, print_json, user_errors
from openlfr.store.db_blobs import DatabaseBlobStore
from openlfr.store.keys import (
    KEY_ENV,
    EncryptionKeyError,
    Keyring,
    begin_rotation,
    env_key,
    finish_rotation,
    reseal_tree,
    rotation_lock,
    sealed_files,
)
from openlfr.store.settings import blob_dir, data_dir, eval_cache_dir, key_file

key_app = typer.Typer(help="The encryption keyring: status and rotation.", no_args_is_help=True)

START, DONE = "key.rotate.start", "key.rotate.done"
OBJECT_TYPE = "keyring"


@dataclass
class RotationResult:
    """What one ``openlfr key rotate`` did."""

    key_file: str
    old_keys: list[str]
    new_key: str
    resumed: bool
    files: int = 0
    resealed: int = 0
    already: int = 0
    unreadable: int = 0
    gone: int = 0
    unreadable_files: list[str] = field(default_factory=list)


def _roots(extra: Iterable[Path]) -> list[Path]:
    roots: list[Path] = []
    for root in [data_dir(), blob_dir(), eval_cache_dir(), *extra]:
        root = Path(root).expanduser().resolve()
        if not any(root == r or r in root.parents for r in roots):
            roots = [r for r in roots if root not in r.parents] + [root]
    return roots


def _audited(gov: Any, action: str, rotation: str) -> bool:
    from sqlalchemy import select

    from openlfr.store.models import AuditEvent

    with gov.sessions() as session:
        found = session.execute(select(AuditEvent.seq).where(
            AuditEvent.action == action, AuditEvent.object_type == OBJECT_TYPE,
            AuditEvent.object_id == rotation).limit(1)).first()
    return found is not None


def _audit(gov: Any, action: str, rotation: str, **details: Any) -> None:
    from openlfr.governance.organisations import machine_user

    with gov.transaction() as ctx:
        ctx.audit(machine_user(), action, OBJECT_TYPE, rotation, **details)


def rotate_store(extra_dirs: Iterable[Path] = (), progress: Callable[[Path, str], None] | None = None,
                 gov: Any = None) -> RotationResult:
    """Rotate the configured key file's key and reseal every sealed file (see module docstring).

    ``gov`` (a :class:`~openlfr.governance.Governance`) is where the audit events go: by
    default the configured store's."""
    if env_key() is not None:
        raise EncryptionKeyError(f"the key comes from {KEY_ENV} in the environment and cannot be rotated here; "
                                 "move it to a key file (OPENLFR_KEY_FILE) to rotate it with openlfr")
    path = key_file()
    if not path.exists():
        raise EncryptionKeyError(f"no key file at {path}: there is nothing to rotate")
    roots = _roots(extra_dirs)
    with ExitStack() as stack:
        if gov is None:  # the configured store: its audit log is opened (and migrated) before the keyring is touched
            gov = stack.enter_context(open_store())
        with rotation_lock(path):
            ring, resumed = begin_rotation(path)
            rotation = ring.rotation or {}
            new_id = str(rotation.get("to", ring.primary))
            old = [str(k) for k in rotation.get("from", ring.retired)]
            result = RotationResult(str(path), old, new_id, resumed)
            # blobs in the database are rows to reseal; blobs in files are in the folders above
            rows = gov.blob_store if isinstance(gov.blob_store, DatabaseBlobStore) else None
            if not _audited(gov, START, new_id):
                files = list(sealed_files(roots))
                pending = sum(1 for f in files if not _is_current(ring, f))
                stored, stale = rows.pending(ring) if rows is not None else (0, 0)
                _audit(gov, START, new_id, old_keys=old, new_key=new_id, files=len(files) + stored,
                       to_reseal=pending + stale, resumed=resumed, folders=[str(r) for r in roots],
                       database_blobs=stored)
            counts = reseal_tree(ring, roots, _collect(result, progress))
            if rows is not None:
                counts.update(rows.reseal(ring, _collect(result, progress)))
            result.resealed, result.already = counts["resealed"], counts["current"]
            result.unreadable, result.gone = counts["unreadable"], counts["gone"]
            result.files = result.resealed + result.already + result.unreadable
            if not _audited(gov, DONE, new_id):
                _audit(gov, DONE, new_id, old_keys=old, new_key=new_id, files=result.files,
                       resealed=result.resealed, already=result.already, unreadable=result.unreadable,
                       unreadable_files=result.unreadable_files[:20], resumed=resumed)
            finish_rotation(ring)
    return result


def _is_current(ring: Keyring, path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return ring.is_current(fh.read(9))
    except OSError:
        return True


def _collect(result: RotationResult, progress: Callable[[Path, str], None] | None) -> Callable[[Path, str], None]:
    def hook(path: Path, outcome: str) -> None:
        if outcome == "unreadable" and str(path) not in result.unreadable_files:
            result.unreadable_files.append(str(path))
        if progress is not None:
            progress(path, outcome)

    return hook


@key_app.command("rotate")
@user_errors
def rotate(
    folder: Annotated[Optional[list[Path]], typer.Option(
        "--dir", help="Another folder of sealed files to reseal (repeat); the data directory is always done.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Replace the encryption key and reseal every blob and evaluation cache under the new one."""
    result = rotate_store(folder or [])
    if as_json:
        print_json(asdict(result))
    else:
        if result.resumed:
            typer.echo(f"resumed the interrupted rotation to key {result.new_key}")
        typer.echo(f"key rotated: {', '.join(result.old_keys)} -> {result.new_key}; {result.files} sealed files, "
                   f"{result.resealed} resealed now, {result.already} already under the new key")
    if result.unreadable:
        typer.echo(f"warning: {result.unreadable} sealed files open with no key of the keyring and were left as "
                   f"they are (damaged, or sealed under another key): {', '.join(result.unreadable_files[:5])}",
                   err=True)


@key_app.command("status")
@user_errors
def status(as_json: JsonOption = False) -> None:
    """Where the key comes from, the primary key's id and any rotation left unfinished (no key material)."""
    if env_key() is not None:
        ring = Keyring.single(env_key() or b"", source="env")
        info: dict[str, Any] = {"source": KEY_ENV, "key_file": None, "primary": ring.primary, "retired": [],
                                "rotation": None}
    else:
        path = key_file()
        if not path.exists():
            raise EncryptionKeyError(f"no key file at {path} yet (it is made on first use)")
        ring = Keyring.from_file(path, create=False)
        info = {"source": "file", "key_file": str(path), "primary": ring.primary, "retired": ring.retired,
                "rotation": ring.rotation}
    if as_json:
        print_json(info)
        return
    typer.echo(f"key: {info['key_file'] or KEY_ENV + ' (environment)'}; primary {info['primary']}")
    if info["rotation"]:
        typer.echo(f"rotation to {info['rotation'].get('to')} unfinished (retired: {', '.join(info['retired'])}); "
                   "run 'openlfr key rotate' to finish it")


def register(app: typer.Typer) -> None:
    """Add ``openlfr key`` to the main app."""
    app.add_typer(key_app, name="key")
