"""``openlfr run``: start the cameras of the live deployments and stream their alerts.

One supervised worker process per camera; alerts are printed as JSON lines on stdout once
committed to the store; worker status goes to stderr. SIGINT/SIGTERM shut down cleanly
(workers flush their counters). :func:`register` adds the command to the main app.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from openlfr.errors import InputError, OpenLFRError


def run(
    camera: Annotated[Optional[list[str]], typer.Option("--camera", help="Only these cameras (by name).")] = None,
    settings_file: Annotated[Optional[Path], typer.Option(
        "--settings", help="JSON file: {camera name or \"*\": {setting: value}} (see docs/pipeline.md).")] = None,
    analyse_fps: Annotated[Optional[float], typer.Option(help="Frames analysed per second (all cameras).")] = None,
    paced: Annotated[bool, typer.Option(help="Play recorded sources at real time, as a camera would.")] = False,
) -> None:
    """Run live facial recognition on the cameras of every deployment that is live now."""
    from openlfr.governance import Governance
    from openlfr.pipeline.events import AlertEvent, EventBus, StatusEvent
    from openlfr.pipeline.settings import CameraSettings
    from openlfr.pipeline.worker import StoreConfig, Supervisor, jobs_for_live_deployments

    try:
        settings: dict[str, dict[str, Any]] = {}
        if settings_file is not None:
            try:
                settings = json.loads(settings_file.read_text())
            except (OSError, ValueError) as err:
                raise InputError(f"{settings_file}: {err}") from err
        if analyse_fps is not None:
            settings.setdefault("*", {})["analyse_fps"] = analyse_fps
        for name, values in settings.items():
            try:
                CameraSettings(**values)
            except ValueError as err:
                raise InputError(f"settings for {name!r}: {str(err).splitlines()[0]}") from err
        gov = Governance()
        store = StoreConfig.from_environment()
        jobs = jobs_for_live_deployments(gov, settings, camera, paced)
        gov.close()
    except OpenLFRError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from err
    if not jobs:
        typer.echo("no live deployment has a camera with a stream address: nothing to run", err=True)
        raise typer.Exit(0)

    bus = EventBus()

    def show(event: object) -> None:
        if isinstance(event, AlertEvent):
            sys.stdout.write(json.dumps({"alert": event.as_dict()}) + "\n")
            sys.stdout.flush()
        elif isinstance(event, StatusEvent):
            typer.echo(f"camera {event.camera_id}: {event.kind} {event.detail}", err=True)

    bus.on_event(show)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    typer.echo(f"running {len(jobs)} camera(s): " + ", ".join(f"{j.camera_name} ({j.source})" for j in jobs), err=True)
    Supervisor(jobs, store, bus).run(stop)
    typer.echo("stopped", err=True)


def register(app: typer.Typer) -> None:
    """Add ``openlfr run`` to the main command line."""
    app.command("run")(run)


def main() -> None:
    """Run ``openlfr run`` on its own (``python -m openlfr.cli_pipeline``)."""
    app = typer.Typer(add_completion=False)
    register(app)

    @app.callback()
    def _root() -> None:  # keep "run" as a sub-command
        pass

    app()


if __name__ == "__main__":
    main()
