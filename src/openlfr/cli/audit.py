"""``openlfr audit verify|export|checkpoints``: the hash-chained audit log, at the machine.
:func:`register` adds the group to the main app."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from openlfr.cli.jobs import BACKGROUND_HELP, announce
from openlfr.cli.store import acting, at_machine, open_store
from openlfr.cli.support import user_errors
from openlfr.errors import InputError, OpenLFRError

audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)


@audit_app.command("verify")
@user_errors
def audit_verify(
    export: Annotated[Optional[Path], typer.Option(help="Verify an exported file instead of the database.")] = None,
    head: Annotated[Optional[list[str]], typer.Option(
        help="An earlier head SEQ:HASH that must still be in the chain (repeat).")] = None,
    checkpoints: Annotated[Optional[Path], typer.Option(
        help="A checkpoints file (openlfr audit checkpoints, or GET /api/public/checkpoints) kept from "
             "earlier: every signed head in it must still be in the chain, signed by its pinned key.")] = None,
) -> None:
    """Recompute the hash chain; report the first broken event (exit 1 if broken; exit 2, creating
    nothing, when there is no store or it holds no audit log). With --checkpoints, also one
    line per checkpoint whose signature is bad, whose key is not the file's (or this
    installation's), or whose event is gone or has another hash: a rewrite (exit 1)."""
    from openlfr.audit import checkpoints as cps
    from openlfr.audit import verify, verify_export
    from openlfr.audit.chain import check_anchors, verify_records
    from openlfr.audit.export import read_export

    pinned, signed = cps.read_file(checkpoints) if checkpoints is not None else (None, [])
    anchors = []
    for item in head or []:
        seq, _, digest = item.partition(":")
        if not seq.isdigit() or len(digest) != 64:
            raise InputError(f"--head must be SEQ:HASH (64 hex digits), not {item!r}")
        anchors.append((int(seq), digest.lower()))
    records: list[Any] = []
    installation_key = None
    if export is None:
        result, store = _verify_existing_store(verify, anchors, records)
        installation_key = _installation_public_key() if checkpoints is not None else None
    elif checkpoints is not None:
        header, records = read_export(export)
        result, store = verify_records(records, int(header["head_seq"]), str(header["head_hash"])), None
        result = check_anchors(result, records, anchors) if result.ok else result
    else:
        result, store = verify_export(export, anchors), None
    typer.echo(result.message())
    if store is not None:
        typer.echo(store.message())
    bad = False
    if checkpoints is not None:
        problems = []
        if pinned and installation_key and pinned.lower() != installation_key:
            problems.append(f"the file's key {cps.key_id(pinned)[:16]}... is not this installation's signing key "
                            f"{cps.key_id(installation_key)[:16]}...")
        problems += cps.verify(signed, records, public_key=pinned or installation_key)
        for line in problems:
            typer.echo(f"CHECKPOINT FAILS: {line}")
        newest = f" (latest #{signed[-1].seq} of {signed[-1].at})" if signed else ""
        typer.echo(f"checkpoints: {len(signed)} checked{newest}, " + (f"{len(problems)} problem(s)" if problems
                   else "every one signed by the key and still in the chain"))
        bad = bool(problems)
    if bad or not result.ok or (store is not None and not store.ok):
        raise typer.Exit(1)


def _existing_blobs(engine: Any, *, folder_needed: bool = True) -> Any:
    """The configured store's blob store, opened with the keyring if there is one (``None``
    otherwise, or when its blob folder does not exist and ``folder_needed``), creating nothing."""
    from openlfr.config import get_settings
    from openlfr.store import BlobStore, DatabaseBlobStore, blob_backend
    from openlfr.store.keys import open_keyring

    folder = Path(get_settings().data_dir) / "blobs"
    try:
        if blob_backend(engine) == "database":
            return DatabaseBlobStore(engine, open_keyring(create=False))
        return BlobStore(folder, open_keyring(create=False)) if folder.is_dir() or not folder_needed else None
    except OpenLFRError:
        return None  # no key here: the blobs cannot be checked (the result says so)


def _installation_public_key() -> str | None:
    """This installation's checkpoint public key (hex), or ``None`` without a key (nothing created)."""
    from openlfr.audit.checkpoints import KEY_FILE_NAME, Signer
    from openlfr.store import make_engine
    from openlfr.store.settings import existing_database_url

    engine = make_engine(existing_database_url())
    try:
        blobs = _existing_blobs(engine, folder_needed=False)  # the key file lies beside the folder
        return Signer(blobs.secret(KEY_FILE_NAME), blobs.keyring).public_key() if blobs is not None else None
    except OpenLFRError:
        return None  # no keyring here: the file's own key is used
    finally:
        engine.dispose()


def _verify_existing_store(verify: Any, anchors: list[tuple[int, str]],
                           records: list[Any] | None = None) -> tuple[Any, Any]:
    """Verify the configured store's chain, then compare the store with it (with the
    encryption key, if there is one, to check the files), creating or migrating nothing.
    ``records``, when given, receives the chain's events (for the checkpoints)."""
    from sqlalchemy import func, inspect, select
    from sqlalchemy.exc import DBAPIError

    from openlfr.audit.consistency import check_store
    from openlfr.errors import NotFoundError
    from openlfr.store import make_engine, session_factory
    from openlfr.store.models import AuditEvent
    from openlfr.store.settings import existing_database_url

    url = existing_database_url()
    engine = make_engine(url)
    blobs = _existing_blobs(engine)
    try:
        if "audit_events" not in inspect(engine).get_table_names():
            raise NotFoundError(f"{engine.url.render_as_string(hide_password=True)} is not an openlfr store "
                                "(no audit log table)")
        with session_factory(engine)() as session:
            if session.execute(select(func.count()).select_from(AuditEvent)).scalar_one() == 0:
                raise NotFoundError("the store's audit log is empty: nothing to verify (a new, emptied or "
                                    "replaced store)")
            result = verify(session, anchors)
            if records is not None:
                from openlfr.audit.chain import load_records

                records.extend(load_records(session))
            return result, (check_store(session, blobs) if result.ok else None)
    except DBAPIError as err:
        raise NotFoundError(f"cannot read the store: {str(err.orig).splitlines()[0]}") from None
    finally:
        engine.dispose()


@audit_app.command("export")
@user_errors
def audit_export(path: Annotated[Path, typer.Argument(help="The JSON Lines file to write.")],
                 background: Annotated[bool, typer.Option(
                     "--background", help=BACKGROUND_HELP + " As a job the export acts for you, so it needs an "
                     "auditor logged in, and it is audited; on PostgreSQL the worker writes PATH on its own machine "
                     "(a relative PATH is taken from here).")] = False) -> None:
    """Write the chain head and every event (JSON Lines) for an outside auditor."""
    from openlfr.audit import export_chain

    if background:
        _export_job(path)
        return
    with at_machine() as ctx:
        result = export_chain(ctx.session, path, now=ctx.now())
    typer.echo(f"{result.count} events written to {path}; head #{result.head_seq} {result.head_hash}")
    if not result.ok:
        typer.echo(f"warning: {result.message()}", err=True)
        raise typer.Exit(1)


def _export_job(path: Path) -> None:
    """``audit export --background``: the export as a batch job of the logged-in auditor."""
    from openlfr.jobs import EXPORT, submit

    with acting("audit.export") as (gov, me):
        outcome = announce(submit(gov, me, EXPORT, {"path": str(path)}))
    if outcome is not None:
        typer.echo(f"{outcome['events']} events written to {outcome['path']}; head #{outcome['head_seq']} "
                   f"{outcome['head_hash']}")
        if not outcome["chain_ok"]:
            typer.echo(f"warning: {outcome['message']}", err=True)
            raise typer.Exit(1)


@audit_app.command("checkpoints")
@user_errors
def audit_checkpoints(path: Annotated[Path, typer.Argument(help="The JSON file to write.")]) -> None:
    """Write every signed checkpoint and the installation's public key (JSON) for an outside
    auditor: keep it, and give it to 'openlfr audit verify --checkpoints' on the next visit."""
    from openlfr.audit import checkpoints as cps

    with open_store() as gov, gov.reading() as ctx:
        doc = cps.export_checkpoints(ctx.session, gov.signer, path, now=ctx.now())
    items = doc["checkpoints"]
    latest = f"; latest #{items[-1]['seq']} {items[-1]['head_hash']}" if items else ""
    typer.echo(f"{len(items)} checkpoints written to {path}; key {doc['key_id'] or '(none yet)'}{latest}")


def register(app: typer.Typer) -> None:
    """Add ``openlfr audit`` to the main app."""
    app.add_typer(audit_app, name="audit")
