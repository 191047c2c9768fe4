"""``openlfr serve`` (the API and console under uvicorn) and the machine-local
``openlfr admin create|break-glass``.

Both ``admin`` commands act at the machine, without any user's credential, and are audited
under the machine's own user (``machine:<os user>@<host>``): ``create`` makes the host
organisation (the one that runs this installation) and its first admin, on an empty store
only; ``break-glass`` resets the password of one of the host's own users when no admin of
the host can log in — never another organisation's. :func:`register` adds them to the main app.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from openlfr.cli.auth import governance, org_kind
from openlfr.cli.support import fail, new_password, user_errors

admin_app = typer.Typer(help="The host organisation at this machine: its first admin, and break-glass.",
                        no_args_is_help=True)


def host_admin_can_log_in(gov: Any) -> bool:
    """Whether an active admin of the host organisation has a password to log in with."""
    from sqlalchemy import select

    from openlfr.governance import Role
    from openlfr.store.api_models import Credential
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
    with governance() as gov:
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
    with governance() as gov, gov.transaction() as ctx:
        user = organisations.break_glass(ctx, name, secret, reason, by)
        who, org = user.name, user.organisation
    typer.echo(f"break-glass: the password of {who} ({org}) was reset and all their sessions revoked; "
               f"recorded in the audit log as {by}")


def serve(host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
          port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
          retention_sweep: Annotated[float, typer.Option(
              help="Seconds between retention sweeps while serving (expired agreements, ended deployments' "
                   "snapshots, alerts, crops, footage).")] = 300.0,
          cameras: Annotated[bool, typer.Option(
              "--cameras/--no-cameras",
              help="Also run the cameras of every live deployment (one supervised worker process each; the "
                   "store is checked again every 30 s), their alerts streamed to the reviewers' queues. "
                   "--no-cameras: the console and API only (run the cameras with 'openlfr run').")] = True) -> None:
    """Serve the HTTP API and web console, and run the cameras of the live deployments
    (SQLite and bundled models unless configured). Ctrl-C stops both cleanly."""
    import uvicorn

    from openlfr.api import create_app
    from openlfr.face.analyzer import enrolment_template
    from openlfr.governance import Governance
    from openlfr.pipeline.events import EventBus

    gov = Governance(template_fn=enrolment_template)
    if not host_admin_can_log_in(gov):
        gov.close()
        fail("no admin of the host organisation can log in, so nobody could manage this installation.\n"
             "  On a new, empty store create the host and its first admin:\n"
             "    openlfr admin create NAME --org 'Your organisation' [--kind site_operator]\n"
             "  If the host's admins exist but cannot log in, reset one's password at this machine:\n"
             "    openlfr admin break-glass NAME --reason 'why'")
    bus = EventBus()
    service = _start_cameras(gov, bus) if cameras else None
    typer.echo(f"openlfr console on http://{host}:{port}/console  (public page: /transparency, API docs: /docs)")
    typer.echo(f"next: {_hint(gov, host, port, service)}")
    try:
        # open alert streams would otherwise hold a Ctrl-C until every browser disconnects
        uvicorn.run(create_app(gov, bus=bus, retention_sweep_s=retention_sweep), host=host, port=port,
                    log_level="info", proxy_headers=False, timeout_graceful_shutdown=5)
    finally:
        if service is not None:
            typer.echo("stopping the cameras...", err=True)
            service.stop()
            for job, outcome, _ in service.outcomes():
                typer.echo(f"camera {job.camera_name} (deployment {job.deployment_id}): {outcome}", err=True)


def _start_cameras(gov: Any, bus: Any) -> Any:
    """The cameras of the live deployments, on a background thread of this process (their
    workers in their own processes); status lines on stderr."""
    from openlfr.pipeline.events import StatusEvent
    from openlfr.pipeline.service import CameraService
    from openlfr.pipeline.worker import StoreConfig

    def show(event: object) -> None:
        if isinstance(event, StatusEvent):
            typer.echo(f"camera {event.camera_id}: {event.kind} {event.detail}", err=True)

    bus.on_event(show)
    service = CameraService(gov, StoreConfig.from_environment(), bus).start()
    running = service.describe()
    if running:
        typer.echo(f"cameras: running {len(running)} of the live deployments: "
                   + ", ".join(f"{c['camera']} (deployment {c['deployment']})" for c in running)
                   + "; their status: /console/cameras/status")
    else:
        typer.echo("cameras: no live deployment has a camera with a stream address yet (checked again every 30 s)")
    return service


def _hint(gov: Any, host: str, port: int, service: Any) -> str:
    """The next step: the demo's reviewers when the store holds the demo, else the console."""
    from openlfr.cli.demo import demo_state, next_step
    from openlfr.errors import OpenLFRError

    try:
        demo = demo_state(gov)
    except OpenLFRError:
        demo = None
    if demo is not None and demo["live"] and service is not None and service.running:
        return next_step(host, port)
    return f"log in at http://{host}:{port}/login"


def register(app: typer.Typer) -> None:
    """Add ``serve`` and ``admin`` to the main app."""
    app.command("serve")(serve)
    app.add_typer(admin_app, name="admin")
