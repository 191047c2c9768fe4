"""Who acts on the command line: ``openlfr login|logout|whoami|passwd``.

A command acts for a user only on a credential (:mod:`openlfr.cli.credentials`), exactly as
the HTTP API does: ``openlfr login NAME`` proves the password and saves a 12-hour token;
``OPENLFR_TOKEN`` overrides it (for scripts). :func:`register` adds these commands to the main app.
"""

from __future__ import annotations

import os
from contextlib import suppress
from typing import Annotated

import typer

from openlfr.cli.credentials import (CLI_LIFETIME, NOT_LOGGED_IN, TOKEN_ENV, NotLoggedIn, credentials_file, forget,
                                     read_file, remember, saved, store_key, verify)
from openlfr.cli.store import open_store
from openlfr.cli.support import new_password, password, user_errors
from openlfr.errors import OpenLFRError


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
    with open_store() as gov:
        result = auth.log_in(gov, name, secret, "cli", CLI_LIFETIME, cli_place())
        if result is not None:
            _, row, user = result
            who, role, org, expires = user.name, user.role, user.organisation, row.expires_at
        if result is None:  # the failure is in the audit log, under unverified:<name>
            raise NotLoggedIn(f"wrong name or password for {name!r}")
        earlier = read_file().get("stores", {}).get(store_key())
        if isinstance(earlier, dict) and earlier.get("token"):  # one credential per store: end the old one
            with suppress(OpenLFRError), gov.transaction() as ctx:
                auth.logout(ctx, Actor(str(earlier["token"]), str(earlier.get("name", ""))))
        remember(result[0].token, who, expires)
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
    with open_store() as gov, gov.transaction() as ctx:
        try:
            auth.logout(ctx, Actor(found.token, found.name))
        except PermissionDenied:
            valid = False
    if found.source != TOKEN_ENV:
        forget()
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
    with open_store() as gov, gov.transaction() as ctx:
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

    with open_store() as gov:
        me = verify(gov, "user.own_password")
        old = password("Current password")
        new = new_password()
        with gov.transaction() as ctx:
            name = users.change_own_password(ctx, me, old, new).name
    if not os.environ.get(TOKEN_ENV, "").strip():
        forget()
    typer.echo(f"password changed for {name}; every session of yours has ended: log in again with "
               f"openlfr login {name}")


def register(app: typer.Typer) -> None:
    """Add ``login``, ``logout``, ``whoami`` and ``passwd`` to the main app."""
    app.command("login")(login)
    app.command("logout")(logout)
    app.command("whoami")(whoami)
    app.command("passwd")(passwd)
