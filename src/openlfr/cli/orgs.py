"""The parties, at the machine: ``openlfr org register|token|list``, and ``openlfr enrol``
(an organisation's first admin redeems its one-time enrolment token).

Registering an organisation and issuing its one-time enrolment token are done at the
machine (they need the store, not a credential) and are audited under the machine's own
user (``machine:<os user>@<host>``). :func:`register` adds these commands to the main app.
"""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from openlfr.cli.store import open_store
from openlfr.cli.support import JsonOption, new_password, print_rows, user_errors
from openlfr.errors import InputError

org_app = typer.Typer(help="Organisations (machine-local): register one, issue its enrolment token, list them.",
                      no_args_is_help=True)


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
    with open_store() as gov, gov.transaction() as ctx:
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
    with open_store() as gov, gov.transaction() as ctx:
        org = organisations.by_name(ctx, name)
        enrolment = organisations.issue_enrolment(ctx, org, by)
        kind_value = org.kind
    _hand_out(enrolment, kind_value, by)


@org_app.command("list")
@user_errors
def org_list(json_out: JsonOption = False) -> None:
    """Every organisation: its kind, whether it is the host, who registered it, when its first admin enrolled."""
    from sqlalchemy import func, select

    from openlfr.governance import organisations
    from openlfr.store.models import EnrolmentToken

    with open_store() as gov, gov.transaction() as ctx:
        enrolled = dict(ctx.session.execute(select(EnrolmentToken.organisation_id, func.min(EnrolmentToken.used_at))
                                            .group_by(EnrolmentToken.organisation_id)).all())
        rows = [{"id": o.id, "name": o.name, "kind": o.kind, "host": o.is_host,
                 "registered": o.created_at.isoformat(), "registered_by": o.registered_by,
                 "first_admin_enrolled": enrolled[o.id].isoformat() if enrolled.get(o.id) else ""}
                for o in organisations.list_organisations(ctx)]
    print_rows(rows, json_out)


@user_errors
def enrol(token: Annotated[str, typer.Argument(help="The one-time enrolment token you were handed.")],
          name: Annotated[str, typer.Argument(help="Your user name.")],
          rank: Annotated[Optional[str], typer.Option(help="Police rank (police forces only).")] = None) -> None:
    """Become the first admin of your organisation with its one-time enrolment token (password
    from the prompt, or OPENLFR_NEW_PASSWORD)."""
    from openlfr.governance import organisations

    secret = new_password(f"Password for {name}")
    with open_store() as gov, gov.transaction() as ctx:
        user = organisations.enrol(ctx, token, name, secret, rank)
        who, org = user.name, user.organisation
    typer.echo(f"enrolled {who} as an admin of {org}; log in with: openlfr login {who}")


def register(app: typer.Typer) -> None:
    """Add ``enrol`` and ``org`` to the main app."""
    app.command("enrol")(enrol)
    app.add_typer(org_app, name="org")
