"""``openlfr serve`` (the API and console under uvicorn) and ``openlfr admin create|password``.

:func:`register` adds them to the main command-line app.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer

from openlfr.cli_support import fail, user_errors

admin_app = typer.Typer(help="Console log-ins: the first administrator, passwords.", no_args_is_help=True)
Password = Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True,
                                       envvar="OPENLFR_ADMIN_PASSWORD", help="At least 10 characters.")]


def _gov(templates: bool = False):  # type: ignore[no-untyped-def]
    from openlfr.governance import Governance

    if templates:
        from openlfr.face.analyzer import enrolment_template

        return Governance(template_fn=enrolment_template)
    return Governance()


@admin_app.command("create")
@user_errors
def admin_create(name: str, password: Password,
                 organisation: Annotated[str, typer.Option("--org", help="Operator organisation.")] = "") -> None:
    """Create the first operator admin of a new store (refused once any user exists)."""
    from openlfr.api.bootstrap import create_first_admin

    create_first_admin(_gov(), name, password, organisation)
    typer.echo(f"created operator admin {name}; now run: openlfr serve")


@admin_app.command("password")
@user_errors
def admin_password(name: str, password: Password) -> None:
    """Set the console password of an existing user (for users made with ``openlfr user add``)."""
    from openlfr.api.bootstrap import set_user_password

    set_user_password(_gov(), name, password, actor=os.environ.get("OPENLFR_USER", "cli"))
    typer.echo(f"password set for {name}")


def serve(host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
          port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
          retention_sweep: Annotated[float, typer.Option(
              help="Seconds between retention sweeps while serving (expired agreements, ended deployments' "
                   "snapshots, alerts, crops, footage).")] = 300.0) -> None:
    """Serve the HTTP API and web console (SQLite and bundled models unless configured)."""
    import uvicorn

    from openlfr.api import create_app
    from openlfr.api.bootstrap import has_admin

    gov = _gov(templates=True)
    if not has_admin(gov):
        fail("no operator admin can log in yet. In a new store create the first one with:\n"
             "  openlfr admin create NAME --org 'Your organisation'\n"
             "or give an existing operator admin a password: openlfr admin password NAME")
    typer.echo(f"openlfr console on http://{host}:{port}/console  (public page: /transparency, API docs: /docs)")
    # open alert streams would otherwise hold a Ctrl-C until every browser disconnects
    uvicorn.run(create_app(gov, retention_sweep_s=retention_sweep), host=host, port=port, log_level="info", proxy_headers=False,
                timeout_graceful_shutdown=5)


def register(app: typer.Typer) -> None:
    """Add ``serve`` and ``admin`` to the main app."""
    app.command("serve")(serve)
    app.add_typer(admin_app, name="admin")
