"""``openlfr serve``: the HTTP API and web console under uvicorn, and the cameras of the live
deployments. :func:`register` adds it to the main app.

It loads :mod:`openlfr.api` inside the command, when it runs: the command line sits beside the
HTTP layer, not on it.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from openlfr.cli.admin import host_admin_can_log_in
from openlfr.cli.store import open_store
from openlfr.cli.support import fail, user_errors


@user_errors
def serve(host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
          port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
          retention_sweep: Annotated[float, typer.Option(
              help="Seconds between retention sweeps while serving (expired agreements, ended deployments' "
                   "snapshots, alerts, crops, footage).")] = 300.0,
          cameras: Annotated[bool, typer.Option(
              "--cameras/--no-cameras",
              help="Also be this machine's host agent: claim the camera leases of the live deployments (and "
                   "of those going live later) up to OPENLFR_CAPACITY, one supervised worker process each, their "
                   "alerts streamed to the reviewers' queues. --no-cameras: the console and API only (run the "
                   "cameras with 'openlfr run --host-id H').")] = True) -> None:
    """Serve the HTTP API and web console, and run the cameras of the live deployments
    (SQLite and bundled models unless configured). Ctrl-C stops both cleanly."""
    import uvicorn

    from openlfr.api import create_app  # the HTTP layer: loaded only to serve it
    from openlfr.logs import uvicorn_log_config
    from openlfr.pipeline.events import EventBus

    with open_store(with_templates=True) as gov:
        if not host_admin_can_log_in(gov):
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
                        log_config=uvicorn_log_config(), proxy_headers=False, timeout_graceful_shutdown=5)
        finally:
            if service is not None:
                typer.echo("stopping the cameras...", err=True)
                service.stop()  # (workers flush their counters; the leases are given back)
                for job, outcome, _ in service.outcomes():
                    typer.echo(f"camera {job.camera_name} (deployment {job.deployment_id}): {outcome}", err=True)


def _start_cameras(gov: Any, bus: Any) -> Any:
    """This machine's host agent (:class:`~openlfr.pipeline.host.HostAgent`) on a background
    thread of this process (its workers in their own processes); status lines on stderr."""
    from openlfr.pipeline.events import StatusEvent
    from openlfr.pipeline.host import HostAgent
    from openlfr.pipeline.worker import StoreConfig

    def show(event: object) -> None:
        if isinstance(event, StatusEvent):
            typer.echo(f"camera {event.camera_id}: {event.kind} {event.detail}", err=True)

    bus.on_event(show)
    service = HostAgent(gov, StoreConfig.from_settings(), bus, service=True).start()
    running = service.describe()
    if running:
        typer.echo(f"cameras: running {len(running)} of the live deployments (host {service.host_id}): "
                   + ", ".join(f"{c['camera']} (deployment {c['deployment']})" for c in running)
                   + "; their status: /console/cameras/status")
    else:
        typer.echo(f"cameras: host {service.host_id} holds no camera yet: a deployment going live is picked up "
                   "within seconds")
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
    """Add ``openlfr serve`` to the main app."""
    app.command("serve")(serve)
