"""``openlfr user add|list|deactivate|role|password``: the users of your own organisation,
managed by its admins, as the user logged in. :func:`register` adds the group to the main app."""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from openlfr.cli.args import UserName
from openlfr.cli.store import acting, as_user
from openlfr.cli.support import JsonOption, new_password, print_rows, user_errors
from openlfr.errors import InputError

user_app = typer.Typer(help="Users of your own organisation (its admins only).", no_args_is_help=True)
ROLES_HELP = "admin, supplier, operator_admin, authorising_officer, reviewer or auditor (as your organisation allows)"


def role_named(text: str) -> Any:
    """``text`` as a :class:`~openlfr.governance.Role`, or a clear error."""
    from openlfr.governance import Role

    try:
        return Role(text)
    except ValueError:
        raise InputError(f"--role must be one of {', '.join(r.value for r in Role)}, not {text!r}") from None


@user_app.command("add")
@user_errors
def user_add(
    name: UserName, role: Annotated[str, typer.Option(help=ROLES_HELP)],
    rank: Annotated[Optional[str], typer.Option(
        help="Police rank (police users; authorising officers need one).")] = None,
) -> None:
    """Add a user to your own organisation (you must be its admin); their password from the
    prompt, or OPENLFR_NEW_PASSWORD."""
    from openlfr.governance import parse, users
    from openlfr.governance.schemas import UserCreate

    with acting("user.create") as (gov, me):
        data = parse(UserCreate, name=name, role=role_named(role), rank=rank)
        secret = new_password(f"Password for {name}")
        with gov.transaction() as ctx:
            user = users.create_user(ctx, me, data, secret)
            typer.echo(f"user {user.id} {user.name} ({user.role}{', ' + user.rank if user.rank else ''}) "
                       f"of {user.organisation}")


@user_app.command("list")
@user_errors
def user_list(json_out: JsonOption = False) -> None:
    """The users of your organisation (an oversight body's auditors: everyone's)."""
    from openlfr.governance import users

    with as_user("user.list") as (ctx, me):
        print_rows([{"id": u.id, "name": u.name, "role": u.role, "rank": u.rank or "", "organisation": u.organisation,
               "active": u.active} for u in users.list_users(ctx, me)], json_out)


@user_app.command("deactivate")
@user_errors
def user_deactivate(name: UserName,
                    reason: Annotated[str, typer.Option(help="Why (recorded in the audit log).")]) -> None:
    """Offboard a user of your organisation: every session and token of theirs ends at once."""
    from openlfr.governance import users

    with as_user("user.deactivate") as (ctx, me):
        if not reason.strip():
            raise InputError("--reason is required to deactivate a user")
        users.deactivate(ctx, me, name, reason.strip())
        typer.echo(f"user {name} deactivated; their sessions and tokens are revoked")


@user_app.command("role")
@user_errors
def user_role(name: UserName, role: Annotated[str, typer.Option(help=ROLES_HELP)],
              rank: Annotated[Optional[str], typer.Option(help="Police rank.")] = None) -> None:
    """Change the role (and rank) of a user of your organisation; their sessions end."""
    from openlfr.governance import users

    with as_user("user.role") as (ctx, me):
        user = users.set_role(ctx, me, name, role_named(role), rank)
        typer.echo(f"user {user.name} is now {user.role}{', ' + user.rank if user.rank else ''}; "
                   f"their sessions and tokens are revoked")


@user_app.command("password")
@user_errors
def user_password(name: UserName) -> None:
    """Set a new password for a user of your organisation (prompt, or OPENLFR_NEW_PASSWORD); their sessions end."""
    from openlfr.governance import users

    with acting("user.password") as (gov, me):
        secret = new_password(f"New password for {name}")
        with gov.transaction() as ctx:
            users.reset_password(ctx, me, name, secret)
    typer.echo(f"password set for {name}; their sessions and tokens are revoked")


def register(app: typer.Typer) -> None:
    """Add ``openlfr user`` to the main app."""
    app.add_typer(user_app, name="user")
