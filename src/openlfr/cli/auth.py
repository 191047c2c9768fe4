"""Who acts on the command line, and the parties: ``openlfr login|logout|whoami|passwd``, and
the machine-local ``openlfr org register|token|list`` and ``openlfr enrol``.

A governance command acts for a user only on a credential, exactly as the HTTP API does:
``openlfr login NAME`` proves the password and saves a 12-hour ``cli`` token (never the
password) in the credentials file, mode 0600, under the store's database URL so that two
stores never share one; ``OPENLFR_TOKEN`` overrides the file (for scripts). Every command
checks the credential before it does anything (:func:`verify`); with none, or one that is
forged, expired or revoked, it is refused in one line, nothing changes, and the refusal is
in the audit log. There is no way to name a user instead.

Registering an organisation and issuing its one-time enrolment token are done at the
machine (they need the store, not a credential) and are audited under the machine's own
user (``machine:<os user>@<host>``). :func:`register` adds these commands to the main app.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from openlfr.cli.support import new_password, password, user_errors
from openlfr.errors import InputError, OpenLFRError

CLI_LIFETIME = timedelta(hours=12)
TOKEN_ENV = "OPENLFR_TOKEN"
FILE_ENV = "OPENLFR_CREDENTIALS_FILE"
NOT_LOGGED_IN = "log in first: openlfr login NAME (or set OPENLFR_TOKEN)"

org_app = typer.Typer(help="Organisations (machine-local): register one, issue its enrolment token, list them.",
                      no_args_is_help=True)
JsonOut = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


class NotLoggedIn(OpenLFRError):
    """A command that acts as a user was run without a credential."""


# ---------------------------------------------------------------- the credentials file
def credentials_file() -> Path:
    """``OPENLFR_CREDENTIALS_FILE``, or ``credentials.json`` in the user's openlfr config folder."""
    override = os.environ.get(FILE_ENV)
    if override:
        return Path(override).expanduser()
    from platformdirs import user_config_dir

    return Path(user_config_dir("openlfr", appauthor=False)) / "credentials.json"


def store_key() -> str:
    """The store a credential belongs to: its database URL (any password in it masked)."""
    from sqlalchemy.engine import make_url

    from openlfr.store import database_url

    url = database_url()
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL fails later, with a better message
        return url


def _read() -> dict[str, Any]:
    path = credentials_file()
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise InputError(f"cannot read the credentials file {path} ({err}); delete it and log in again") from None
    return data if isinstance(data, dict) else {}


def _write(data: dict[str, Any]) -> None:
    """Replace the credentials file atomically; it is created, and stays, readable by its owner only."""
    path = credentials_file()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=2, sort_keys=True)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with suppress(OSError):
            tmp.unlink()
        raise


def _remember(token: str, name: str, expires_at: Any) -> None:
    data = _read()
    data.setdefault("stores", {})[store_key()] = {"name": name, "token": token,
                                                  "expires_at": expires_at.isoformat()}
    _write(data)


def _forget() -> bool:
    """Drop this store's saved credential; whether there was one."""
    data = _read()
    if data.get("stores", {}).pop(store_key(), None) is None:
        return False
    _write(data)
    return True


@dataclass(frozen=True)
class Saved:
    """A credential found for this store, and where."""

    token: str
    name: str  # the name saved beside it (only a claim: the token decides who acts)
    source: str  # "OPENLFR_TOKEN" or the credentials file's path


def saved() -> Saved | None:
    """This store's credential: ``OPENLFR_TOKEN``, else the one in the credentials file, else ``None``."""
    token = os.environ.get(TOKEN_ENV, "").strip()
    if token:
        return Saved(token, "", TOKEN_ENV)
    entry = _read().get("stores", {}).get(store_key())
    if isinstance(entry, dict) and entry.get("token"):
        return Saved(str(entry["token"]), str(entry.get("name", "")), str(credentials_file()))
    return None


def verify(gov: Any, action: str) -> Any:
    """The :class:`~openlfr.governance.Actor` of the logged-in user, checked live against the
    store before a command does anything; else refused (audited as ``<action>.refused`` by
    ``unverified:<claimed name>``)."""
    from openlfr.governance import Actor

    found = saved()
    if found is None:
        with gov.transaction() as ctx:
            ctx.audit("unverified:-", f"{action}.refused", "-", "-", reason=f"no credential: {NOT_LOGGED_IN}")
        raise NotLoggedIn(NOT_LOGGED_IN)
    actor = Actor(found.token, found.name)
    with gov.transaction() as ctx:
        ctx.require(actor, None, action)
    return actor


@contextmanager
def governance(templates: Any = None) -> Iterator[Any]:
    """A :class:`~openlfr.governance.Governance` on the configured store, closed afterwards."""
    from openlfr.governance import Governance

    gov = Governance(template_fn=templates)
    try:
        yield gov
    finally:
        gov.close()


# ---------------------------------------------------------------- log in and out
def cli_place() -> str:
    """Where a command-line login comes from, for the login throttle: the machine user."""
    import getpass
    import socket

    try:
        who = getpass.getuser()
    except (KeyError, OSError):
        who = str(os.getuid()) if hasattr(os, "getuid") else "?"
    return f"cli:{who}@{socket.gethostname()}"


@user_errors
def login(name: Annotated[str, typer.Argument(help="Your user name.")]) -> None:
    """Log in: a 12-hour credential for this store, saved (mode 0600) in the credentials file
    (password from the prompt, or OPENLFR_PASSWORD for scripts)."""
    from openlfr.governance import Actor
    from openlfr.governance import login as auth

    secret = password(f"Password for {name}")
    with governance() as gov:
        result = auth.log_in(gov, name, secret, "cli", CLI_LIFETIME, cli_place())
        if result is not None:
            _, row, user = result
            who, role, org, expires = user.name, user.role, user.organisation, row.expires_at
        if result is None:  # the failure is in the audit log, under unverified:<name>
            raise NotLoggedIn(f"wrong name or password for {name!r}")
        earlier = _read().get("stores", {}).get(store_key())
        if isinstance(earlier, dict) and earlier.get("token"):  # one credential per store: end the old one
            with suppress(OpenLFRError), gov.transaction() as ctx:
                auth.logout(ctx, Actor(str(earlier["token"]), str(earlier.get("name", ""))))
        _remember(result[0].token, who, expires)
    typer.echo(f"logged in as {who} ({role.replace('_', ' ')} of {org}) until {expires:%Y-%m-%d %H:%M} UTC; "
               f"credential saved in {credentials_file()}")
    if os.environ.get(TOKEN_ENV):
        typer.echo(f"note: {TOKEN_ENV} is set and is used instead of this credential", err=True)


@user_errors
def logout() -> None:
    """Revoke the credential in use (the saved one, or OPENLFR_TOKEN's) and forget it."""
    from openlfr.governance import Actor, PermissionDenied
    from openlfr.governance import login as auth

    found = saved()
    if found is None:
        typer.echo("not logged in")
        return
    valid = True
    with governance() as gov, gov.transaction() as ctx:
        try:
            auth.logout(ctx, Actor(found.token, found.name))
        except PermissionDenied:
            valid = False
    if found.source != TOKEN_ENV:
        _forget()
    typer.echo("logged out: the credential is revoked" if valid else "the credential was no longer valid")
    if found.source == TOKEN_ENV:
        typer.echo(f"unset {TOKEN_ENV}", err=True)


@user_errors
def whoami() -> None:
    """Who the credential in use belongs to, and until when it is valid."""
    from openlfr.governance import credentials

    found = saved()
    if found is None:
        raise NotLoggedIn(NOT_LOGGED_IN)
    with governance() as gov, gov.transaction() as ctx:
        live = credentials.live_token(ctx.session, found.token, ctx.now())
        if live is None:
            raise NotLoggedIn("the credential is not valid: expired, revoked or unknown (log in again: "
                              "openlfr login NAME)")
        row, user = live
        rank = f", {user.rank.replace('_', ' ')}" if user.rank else ""
        typer.echo(f"{user.name}: {user.role.replace('_', ' ')}{rank} of {user.organisation} "
                   f"({user.org.kind.replace('_', ' ')}); credential from {found.source}, valid until "
                   f"{row.expires_at:%Y-%m-%d %H:%M} UTC")


@user_errors
def passwd() -> None:
    """Change your own password (the current one is checked); every session you hold ends,
    this one included (passwords from the prompt, or OPENLFR_PASSWORD and OPENLFR_NEW_PASSWORD)."""
    from openlfr.governance import users

    with governance() as gov:
        me = verify(gov, "user.own_password")
        old = password("Current password")
        new = new_password()
        with gov.transaction() as ctx:
            name = users.change_own_password(ctx, me, old, new).name
    if not os.environ.get(TOKEN_ENV, "").strip():
        _forget()
    typer.echo(f"password changed for {name}; every session of yours has ended: log in again with "
               f"openlfr login {name}")


# ---------------------------------------------------------------- organisations (machine-local)
def org_kind(text: str) -> Any:
    """``text`` as an :class:`~openlfr.governance.OrgKind`, or a clear error."""
    from openlfr.governance import OrgKind

    try:
        return OrgKind(text)
    except ValueError:
        raise InputError(f"--kind must be one of {', '.join(k.value for k in OrgKind)}, not {text!r}") from None


def _hand_out(enrolment: Any, kind: str, by: str) -> None:
    """Print a one-time enrolment token (stdout) with the loud notice of how to hand it over (stderr)."""
    typer.echo(f"enrolment token: {enrolment.token}")
    bar = "!" * 78
    typer.echo("\n".join([
        bar,
        f"! ONE-TIME ENROLMENT TOKEN for {enrolment.organisation} ({kind.replace('_', ' ')}): shown now, never again.",
        "! Whoever redeems it becomes that organisation's first ADMIN and manages its users.",
        "! Hand it OUT OF BAND (in person, or over a channel you trust) to that person alone;",
        "! never paste it into email or chat, and never redeem it yourself.",
        f"! They enrol with: openlfr enrol TOKEN NAME  (or the console's /enrol page); it expires "
        f"{enrolment.expires_at:%Y-%m-%d %H:%M} UTC.",
        f"! Recorded in the audit log as issued by {by}.",
        bar]), err=True)


@org_app.command("register")
@user_errors
def org_register(name: Annotated[str, typer.Argument(help="The organisation's name.")],
                 kind: Annotated[str, typer.Option(help="police_force, site_operator or oversight_body.")]) -> None:
    """Register an organisation on this machine and print its one-time enrolment token (once)."""
    from openlfr.governance import organisations, parse
    from openlfr.governance.schemas import OrganisationCreate

    data = parse(OrganisationCreate, name=name, kind=org_kind(kind))
    by = organisations.machine_user()
    with governance() as gov, gov.transaction() as ctx:
        org, enrolment = organisations.register(ctx, data, by)
        typer.echo(f"registered organisation {org.id} {org.name} ({org.kind.replace('_', ' ')})")
        kind_value = org.kind
    _hand_out(enrolment, kind_value, by)


@org_app.command("token")
@user_errors
def org_token(name: Annotated[str, typer.Argument(help="The organisation's name.")]) -> None:
    """Issue a new one-time enrolment token for an organisation (earlier unused ones stop working)."""
    from openlfr.governance import organisations

    by = organisations.machine_user()
    with governance() as gov, gov.transaction() as ctx:
        org = organisations.by_name(ctx, name)
        enrolment = organisations.issue_enrolment(ctx, org, by)
        kind_value = org.kind
    _hand_out(enrolment, kind_value, by)


@org_app.command("list")
@user_errors
def org_list(json_out: JsonOut = False) -> None:
    """Every organisation: its kind, whether it is the host, who registered it, when its first admin enrolled."""
    from sqlalchemy import func, select

    from openlfr.governance import organisations
    from openlfr.store.models import EnrolmentToken

    with governance() as gov, gov.transaction() as ctx:
        enrolled = dict(ctx.session.execute(select(EnrolmentToken.organisation_id, func.min(EnrolmentToken.used_at))
                                            .group_by(EnrolmentToken.organisation_id)).all())
        rows = [{"id": o.id, "name": o.name, "kind": o.kind, "host": o.is_host,
                 "registered": o.created_at.isoformat(), "registered_by": o.registered_by,
                 "first_admin_enrolled": enrolled[o.id].isoformat() if enrolled.get(o.id) else ""}
                for o in organisations.list_organisations(ctx)]
    if json_out:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    if not rows:
        typer.echo("(none)")
    for row in rows:
        typer.echo("  ".join(f"{k}={v}" for k, v in row.items()))


@user_errors
def enrol(token: Annotated[str, typer.Argument(help="The one-time enrolment token you were handed.")],
          name: Annotated[str, typer.Argument(help="Your user name.")],
          rank: Annotated[Optional[str], typer.Option(help="Police rank (police forces only).")] = None) -> None:
    """Become the first admin of your organisation with its one-time enrolment token (password
    from the prompt, or OPENLFR_NEW_PASSWORD)."""
    from openlfr.governance import organisations

    secret = new_password(f"Password for {name}")
    with governance() as gov, gov.transaction() as ctx:
        user = organisations.enrol(ctx, token, name, secret, rank)
        who, org = user.name, user.organisation
    typer.echo(f"enrolled {who} as an admin of {org}; log in with: openlfr login {who}")


def register(app: typer.Typer) -> None:
    """Add ``login``, ``logout``, ``whoami``, ``passwd``, ``org`` and ``enrol`` to the main app."""
    app.command("login")(login)
    app.command("logout")(logout)
    app.command("whoami")(whoami)
    app.command("passwd")(passwd)
    app.command("enrol")(enrol)
    app.add_typer(org_app, name="org")
