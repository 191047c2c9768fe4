"""``openlfr admin create|break-glass``: the host organisation at this machine.

Both commands act at the machine, without any user's credential, and are audited under the
machine's own user (``machine:<os user>@<host>``): ``create`` makes the host organisation (the
one that runs this installation) and its first admin, on an empty store only; ``break-glass``
resets the password of one of the host's own users when no admin of the host can log in —
never another organisation's. :func:`register` adds the group to the main app.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from openlfr.cli.orgs import org_kind
from openlfr.cli.store import open_store
from openlfr.cli.support import new_password, user_errors

admin_app = typer.Typer(help="The host organisation at this machine: its first admin, and break-glass.",
                        no_args_is_help=True)


def host_admin_can_log_in(gov: Any) -> bool:
    """Whether an active admin of the host organisation has a password to log in with."""
    from sqlalchemy import select

    from openlfr.governance import Role
    from openlfr.store.models import Credential
    from openlfr.store.models import Organisation, User

    with gov.transaction() as ctx:
        return ctx.session.execute(
            select(User.id).join(Credential, Credential.user_id == User.id)
            .join(Organisation, Organisation.id == User.organisation_id)
            .where(Organisation.is_host.is_(True), User.role == Role.ADMIN.value, User.active.is_(True))
        ).first() is not None


@admin_app.command("create")
@user_errors
def admin_create(
    name: Annotated[str, typer.Argument(help="The first admin's user name.")],
    organisation: Annotated[str, typer.Option("--org", help="The host organisation (the one running this machine).")],
    kind: Annotated[str, typer.Option(help="site_operator, police_force or oversight_body.")] = "site_operator",
) -> None:
    """First run, on an empty store: register the host organisation and create its first admin
    (password from the prompt, or OPENLFR_NEW_PASSWORD)."""
    from sqlalchemy import select

    from openlfr.governance import RuleViolation, organisations
    from openlfr.store.models import User

    org_type = org_kind(kind)
    by = organisations.machine_user()
    with open_store() as gov:
        with gov.transaction() as ctx:  # refuse before asking for a password (the service checks again)
            if ctx.session.execute(select(User.id)).first() is not None:
                raise RuleViolation("this store already has users: their organisations' admins add more "
                                    "('openlfr user add' when logged in); 'openlfr admin create' is for an empty store")
        secret = new_password(f"Password for {name}")
        with gov.transaction() as ctx:
            user = organisations.create_host_admin(ctx, organisation, org_type, name, secret, by)
            who, org = user.name, user.organisation
    typer.echo(f"created the host organisation {org} ({org_type.value.replace('_', ' ')}) and its admin {who} "
               f"(recorded as {by}); next: openlfr login {who}, then openlfr serve")


@admin_app.command("break-glass")
@user_errors
def admin_break_glass(
    name: Annotated[str, typer.Argument(help="A user of the host organisation.")],
    reason: Annotated[str, typer.Option(help="Why (recorded in the audit log).")],
) -> None:
    """Reset the password of a user of the HOST organisation from this machine, when no admin can
    (loud, audited; every session of that user ends). Never works for another organisation's users."""
    from openlfr.governance import organisations

    by = organisations.machine_user()
    bar = "!" * 78
    typer.echo("\n".join([
        bar,
        f"! BREAK-GLASS: resetting the password of {name} without any admin's credential.",
        f"! This is recorded in the audit log as done by {by}, with your reason, and is",
        "! visible to every auditor. Every session and token the user holds is revoked.",
        "! It works only for users of the host organisation; use it only when no admin can log in.",
        bar]), err=True)
    secret = new_password(f"New password for {name}")
    with open_store() as gov, gov.transaction() as ctx:
        user = organisations.break_glass(ctx, name, secret, reason, by)
        who, org = user.name, user.organisation
    typer.echo(f"break-glass: the password of {who} ({org}) was reset and all their sessions revoked; "
               f"recorded in the audit log as {by}")


def register(app: typer.Typer) -> None:
    """Add ``openlfr admin`` to the main app."""
    app.add_typer(admin_app, name="admin")
