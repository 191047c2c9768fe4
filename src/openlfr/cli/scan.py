"""``openlfr scan``: search a recording in a started retrospective deployment, as the user
logged in. :func:`register` adds it to the main app."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from openlfr.cli.credentials import saved, verify
from openlfr.cli.jobs import BACKGROUND_HELP, announce
from openlfr.cli.store import open_store
from openlfr.cli.support import JsonOption, print_json, progress, user_errors


@user_errors
def scan(
    video: Annotated[str, typer.Argument(help="Recorded video file to search.")],
    deployment: Annotated[Optional[int], typer.Option(
        "--deployment", help="The started retrospective deployment the search runs in (required).")] = None,
    camera: Annotated[Optional[str], typer.Option(
        help="The deployment's camera whose footage this is, by name or id (default: its only camera).")] = None,
    fps: Annotated[Optional[float], typer.Option(help="Frames analysed per second of video (default 5).")] = None,
    background: Annotated[bool, typer.Option(
        "--background", help=BACKGROUND_HELP + " The worker must read VIDEO at the same path; its alerts are "
                                               "stored as a search's are.")] = False,
    json_out: JsonOption = False,
) -> None:
    """Search a recording in a started retrospective deployment, as the user logged in.

    Only an operator admin or reviewer of the deployment's organisation may
    search, while its window is open; the file's SHA-256 is audited. Matches
    become alerts of the deployment, stored with their encrypted crop for its
    reviewers: one line each as it is committed, then a summary line (with --json, one
    JSON object per line). Progress goes to stderr: a bar on a terminal, else a line every
    10 s (OPENLFR_PROGRESS_SECONDS). A refused search stores nothing but the audited refusal.
    """
    from openlfr.governance import Actor
    from openlfr.scan import SearchResult, SearchStopped, format_time, search_recording

    def show(event) -> None:  # noqa: ANN001
        if json_out:
            print_json({"alert": event.alert_id, "time": format_time(event.video_time),
                                         "video_time": event.video_time, "score": event.score, "label": event.label,
                                         "deployment": event.deployment_id, "camera": event.camera_id,
                                         "track": event.track_id, "at": event.at}, line=True)
        else:
            sys.stdout.write(f"{format_time(event.video_time)}\talert {event.alert_id}\t{event.score:.3f}\t"
                             f"{event.label}\n")
            sys.stdout.flush()

    bars: list = []  # the progress display, while the search runs
    seen = [0]  # alerts so far

    def on_alert(event) -> None:  # noqa: ANN001
        seen[0] += 1
        show(event)

    def on_frame(read: int, expected: int | None) -> None:
        bars[0].update(read, note=f"{seen[0]} alert{'' if seen[0] == 1 else 's'}", total=expected)

    def summary(result: SearchResult) -> None:
        if bars:
            n = len(result.alerts)
            bars[0].done(f"{n} alert{'s' if n != 1 else ''} in {result.analysed} frames analysed"
                         + (" (stopped early)" if result.stopped else ""))
        _summary(video, {"frames_analysed": result.analysed, "people_passes": result.passes,
                         "tracks": result.tracks, "deployment": result.grant.deployment_id,
                         "camera": result.grant.camera_name, "sha256": result.grant.sha256,
                         "alerts": len(result.alerts)}, None,
                 result.stopped, json_out)

    with open_store() as gov:
        found = saved()  # OPENLFR_TOKEN, else this store's credential from 'openlfr login'
        # none: refused and audited here; a token that is not valid is refused (and audited) by the search's rule
        actor = Actor(found.token, found.name) if found is not None else verify(gov, "search.start")
        if background:
            _submit(gov, actor, video, deployment, camera, fps, json_out)
            return
        with progress("scanned", None, "frames") as bar:
            bars.append(bar)
            try:
                result = search_recording(gov, actor, deployment, video, camera, fps=fps, on_alert=on_alert,
                                          on_frame=on_frame)
            except SearchStopped as err:
                summary(err.result)
                raise
            summary(result)


def _submit(gov: Any, actor: Any, video: str, deployment: int | None, camera: str | None, fps: float | None,
            json_out: bool) -> None:
    """``scan --background``: the search as a batch job; on SQLite it ran inline, and its summary is printed."""
    from openlfr.jobs import SEARCH, submit

    done = announce(submit(gov, actor, SEARCH, {"deployment": deployment, "camera": camera, "path": video,
                                                "fps": fps}), json_out)
    if done is None:
        return
    _summary(video, done, list(done["alerts"]), "", json_out)


def _summary(video: str, done: dict[str, Any], alert_ids: list[int] | None, stopped: str, json_out: bool) -> None:
    """A search's summary line (its alerts were shown one by one, or, for a job, are listed by id);
    ``stopped``: why the search stopped early ("": it did not)."""
    n = len(alert_ids) if alert_ids is not None else done["alerts"]
    if json_out:
        fields = {k: done[k] for k in ("frames_analysed", "people_passes", "tracks", "deployment", "camera",
                                       "sha256")}
        extra = {"alert_ids": alert_ids} if alert_ids is not None else {"stopped": stopped or None}
        print_json({"summary": {**fields, "alerts": n, **extra}}, line=True)
        return
    ids = f": {', '.join(map(str, alert_ids))}" if alert_ids else ""
    sys.stdout.write(f"searched {Path(video).name} in deployment {done['deployment']} (camera {done['camera']}): "
                     f"{done['frames_analysed']} frames analysed, {done['people_passes']} people passes, "
                     f"{n} alert(s){ids}{' (stopped early)' if stopped else ''}\n")
    sys.stdout.flush()


def register(app: typer.Typer) -> None:
    """Add ``openlfr scan`` to the main app."""
    app.command("scan")(scan)
