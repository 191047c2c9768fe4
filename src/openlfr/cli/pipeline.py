"""``openlfr run``: this machine's host agent for the cameras of the live deployments.

A :class:`~openlfr.pipeline.host.HostAgent` claims camera leases and runs one supervised worker
process per camera; alerts are printed as JSON lines on stdout once committed to the store;
worker status goes to stderr. SIGINT/SIGTERM shut down cleanly (workers flush their counters,
leases are given back). :func:`register` adds the command to the main app.
"""

from __future__ import annotations

import signal
import threading
from typing import Annotated, Any, Optional

import typer

from openlfr.cli.store import open_store
from openlfr.cli.support import fail, print_json, progress, user_errors
from openlfr.errors import InputError


@user_errors
def run(
    camera: Annotated[Optional[list[str]], typer.Option("--camera", help="Only these cameras (by name or id).")] = None,
    analyse_fps: Annotated[Optional[float], typer.Option(
        help="Frames analysed per second, for every camera (overrides each camera's own setting, "
             "which 'openlfr camera edit --set analyse_fps=N' changes).")] = None,
    paced: Annotated[bool, typer.Option(
        help="Play recorded sources at real time, as a camera would (every camera; a camera's own "
             "'paced' setting does this for it alone).")] = False,
    host_id: Annotated[Optional[str], typer.Option(
        "--host-id", help="Run as the host agent H, a service until SIGTERM or Ctrl-C: it claims camera leases of "
                          "the deployments live now and of those going live later, up to --capacity, and gives "
                          "up the cameras of deployments that end (docs/pipeline.md, docs/scale.md). Without it: "
                          "host OPENLFR_HOST_ID, else this machine's host name, claiming once and exiting when "
                          "its cameras are done.")] = None,
    capacity: Annotated[Optional[int], typer.Option(
        min=0, help="Most cameras this host analyses at once; 0: no limit. Default OPENLFR_CAPACITY (0).")] = None,
) -> None:
    """Run live facial recognition on the cameras of the deployments that are live now.

    Each camera is analysed with its own settings from the store (see 'openlfr camera edit'),
    in a worker process of its own, under a lease that no other host can hold at the same time.
    Without --host-id: every free camera (or those of --camera) once; exits when they are done,
    1 when any camera failed (one line per camera on stderr), 2 when there is nothing to run.
    With --host-id: a service (see --host-id)."""
    from openlfr.pipeline.events import AlertEvent, EventBus, StatusEvent
    from openlfr.pipeline.host import HostAgent
    from openlfr.pipeline.settings import CameraSettings
    from openlfr.pipeline.worker import StoreConfig, jobs_for_live_deployments

    service = host_id is not None
    settings: dict[str, dict[str, Any]] = {}
    if analyse_fps is not None:
        settings["*"] = {"analyse_fps": analyse_fps}
        try:
            CameraSettings(**settings["*"])
        except ValueError as err:
            raise InputError(f"--analyse-fps: {str(err).splitlines()[-1].strip()}") from err
    store = StoreConfig.from_settings()
    with open_store() as gov:
        jobs = jobs_for_live_deployments(gov, settings, camera, paced)
    for job in jobs:  # a camera's stored settings, checked again before any worker starts
        try:
            CameraSettings(**job.settings)
        except ValueError as err:
            raise InputError(f"settings of camera {job.camera_name!r}: {str(err).splitlines()[0]}") from err
    if not jobs and not service:
        which = f" named {', '.join(camera)}" if camera else ""
        fail(f"nothing to run: no live deployment has a camera{which} with a stream address "
             "(see 'openlfr deployment list' and 'openlfr camera list')")

    bus = EventBus()
    alerts = [0]

    def show(event: object) -> None:
        if isinstance(event, AlertEvent):
            alerts[0] += 1
            print_json({"alert": event.as_dict()}, line=True)
        elif isinstance(event, StatusEvent):
            typer.echo(f"camera {event.camera_id}: {event.kind} {event.detail}", err=True)

    bus.on_event(show)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with open_store() as gov:
        agent = HostAgent(gov, store, bus, host_id, capacity, service=service, cameras=camera, settings=settings,
                          paced=paced)
        try:
            agent.start()
            held = agent.describe()
            typer.echo(f"host {agent.host_id}: running {len(held)} camera(s)"
                       + (": " + ", ".join(f"{c['camera']} ({c['source']})" for c in held) if held else "")
                       + ("; a service until SIGTERM (capacity "
                          + (str(agent.capacity) if agent.capacity else "unlimited") + ")" if service else ""),
                       err=True)
            with open_store() as watch:  # reads the workers' status rows (every few seconds) for the progress line
                with progress("analysed", None, "frames") as shown:
                    def report() -> None:
                        while not stop.wait(min(5.0, shown.every_s)):
                            ids = agent.held_cameras()
                            frames, running = frames_analysed(watch, ids)
                            shown.update(frames, note=f"{alerts[0]} alert(s), {running} of {len(ids)} camera(s) "
                                                      "running")

                    reporter = threading.Thread(target=report, name="run-progress", daemon=True)
                    reporter.start()
                    while not stop.wait(0.25):
                        if agent.done:
                            break
                    agent.stop()
                    stop.set()
                    reporter.join(10)
                    ids = sorted(agent.started())
                    frames, _ = frames_analysed(watch, ids)
                    shown.done(f"stopped: {alerts[0]} alert(s) in {frames} frames analysed on {len(ids)} camera(s)")
        finally:
            agent.stop()  # (a second stop is a no-op: nothing is held any more)
    for job, outcome, codes in agent.outcomes():
        typer.echo(f"camera {job.camera_name} (deployment {job.deployment_id}): {outcome}"
                   + (f" (exit codes {codes})" if outcome == "failed" else ""), err=True)
    if agent.failed():
        raise typer.Exit(1)


def frames_analysed(gov: Any, camera_ids: list[int]) -> tuple[int, int]:
    """(frames analysed, cameras running) from the cameras' status rows, as their workers last
    wrote them (every few seconds); (0, 0) while the store cannot be read."""
    from sqlalchemy import select

    from openlfr.store.models import CameraStatus

    try:
        with gov.transaction() as ctx:
            query = select(CameraStatus).where(CameraStatus.camera_id.in_(camera_ids))
            rows = list(ctx.session.execute(query).scalars())
    except Exception:  # a busy or unreachable store: the next report will say
        return 0, 0
    return sum(r.frames_analysed for r in rows), sum(1 for r in rows if r.state == "running")


def register(app: typer.Typer) -> None:
    """Add ``openlfr run`` to the main command line."""
    app.command("run")(run)
