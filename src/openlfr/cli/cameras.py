"""``openlfr camera add|networks|signage|list|edit|status``: your organisation's cameras, their
signage checks, their address and analysis settings in the store, and what their workers last
reported, as the user logged in. :func:`register` adds the group to the main app."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from openlfr.cli.args import CameraRef, parse_day
from openlfr.cli.store import as_user
from openlfr.cli.support import JsonOption, fail, print_rows, user_errors
from openlfr.errors import InputError
from openlfr.pipeline.settings import parse_roi

camera_app = typer.Typer(help="Cameras and their signage checks.", no_args_is_help=True)


def parse_setting(text: str) -> tuple[str, Any]:
    """``name=value`` (the value as JSON where it parses, else text; ``name=default`` resets it)."""
    name, sep, raw = text.partition("=")
    if not sep or not name.strip():
        raise InputError(f"--set {text!r}: use NAME=VALUE (e.g. analyse_fps=4)")
    raw = raw.strip()
    if raw == "default":
        return name.strip(), None
    try:
        return name.strip(), json.loads(raw)
    except ValueError:
        return name.strip(), raw


@camera_app.command("add")
@user_errors
def camera_add(
    name: Annotated[str, typer.Argument(help="A name for the camera, unique in this installation.")],
    location: Annotated[str, typer.Option(help="Where it is and what it faces, e.g. 'North gate, facing the square'.")],
    zone: Annotated[str, typer.Option(
        help="The area it covers, e.g. 'public square' (optional): cameras sharing a zone raise one alert per "
             "pass between them; a camera without one is a zone of its own.")] = "",
    stream: Annotated[str, typer.Option(
        help="How to read it: an rtsp:// or http(s):// stream, a webcam (webcam:0), a video file or a folder of "
             "frames (optional; a camera without one is not run).")] = "",
) -> None:
    """Register a camera of your organisation (operator admin)."""
    from openlfr.governance import cameras, parse
    from openlfr.governance.schemas import CameraCreate

    with as_user("camera.add") as (ctx, me):
        data = parse(CameraCreate, name=name, location=location, zone=zone, stream_url=stream)
        typer.echo(f"camera {cameras.add_camera(ctx, me, data).id} {name}")


@camera_app.command("networks")
@user_errors
def camera_networks(networks: Annotated[list[str], typer.Argument(
        help="CIDR blocks your cameras stream from (e.g. 10.20.0.0/16); 'none' allows none.")]) -> None:
    """Set the networks your organisation's cameras may stream from (operator admin; audited)."""
    from openlfr.governance import cameras

    with as_user("camera.networks") as (ctx, me):
        kept = cameras.set_camera_networks(ctx, me, [] if networks == ["none"] else networks)
    typer.echo(f"camera networks: {', '.join(kept) or 'none (no network camera may run)'}")


@camera_app.command("signage")
@user_errors
def camera_signage(
    camera: CameraRef,
    text: Annotated[str, typer.Option(help="The notice's text (it must say that facial recognition is in use).")],
    deployment: Annotated[Optional[int], typer.Option(
        help="The deployment the check is for (a deployment starts only on checks recorded for it).")] = None,
    checked_on: Annotated[Optional[str], typer.Option(
        help="YYYY-MM-DD (default today; not after today, nor more than OPENLFR_SIGNAGE_BACKDATE_DAYS "
             "before).")] = None,
    photo: Annotated[Optional[Path], typer.Option(help="A JPEG or PNG photo of the notice (stored encrypted).")] = None,
) -> None:
    """Record a check of the public notice at a camera, for a deployment."""
    from openlfr.governance import cameras

    if photo is not None and not photo.is_file():
        fail(f"{photo} is not a file")
    raw = photo.read_bytes() if photo is not None else None
    with as_user("signage.record") as (ctx, me):
        ctx.require(me, None, "signage.record")  # first: an unknown camera is a refusal, audited
        camera_id = cameras.find_camera(ctx, camera).id
        day = parse_day(checked_on) if checked_on else ctx.now().date()
        row = cameras.record_signage_from(ctx, me, dict(camera_id=camera_id, text=text, checked_on=day,
                                                        deployment_id=deployment), raw)
        typer.echo(f"signage for camera {camera} checked on {day}"
                   + (f" for deployment {deployment}" if deployment is not None else "")
                   + (f", photo sha256 {row.photo_sha256[:16]}..." if row.photo_sha256 else ""))


@camera_app.command("list")
@user_errors
def camera_list(json_out: JsonOption = False) -> None:
    """Your organisation's cameras with their latest current signage check."""
    from openlfr.governance import cameras

    with as_user("camera.list") as (ctx, me):
        today = ctx.now().date()
        rows = []
        for c in cameras.list_cameras(ctx, me):
            sign = cameras.current_signage(ctx, c.id, today)
            rows.append({"id": c.id, "name": c.name, "location": c.location,
                         "signage": sign.checked_on.isoformat() if sign else "NONE CURRENT"})
        print_rows(rows, json_out)


@user_errors
def camera_edit(
    camera: Annotated[str, typer.Argument(help="The camera's id or name.")],
    stream: Annotated[Optional[str], typer.Option(
        help="New stream address: rtsp://..., http(s)://..., a recording under OPENLFR_CAMERA_FILE_ROOTS, "
             "webcam:N; '' removes it.")] = None,
    location: Annotated[Optional[str], typer.Option(help="New description of where it is.")] = None,
    zone: Annotated[Optional[str], typer.Option(
        help="New zone (a group of cameras, for reports; cameras sharing a zone raise one alert per pass "
             "between them; applies from the camera's next start).")] = None,
    setting: Annotated[Optional[list[str]], typer.Option(
        "--set", help="An analysis setting NAME=VALUE (repeat; NAME=default resets it), e.g. analyse_fps=4, "
                      "min_face_size=60, loop=true; see docs/pipeline.md.")] = None,
    roi: Annotated[Optional[str], typer.Option(
        help="Region of interest LEFT,TOP,RIGHT,BOTTOM in pixels, or none for the whole frame.")] = None,
) -> None:
    """Change a camera's address, place or analysis settings (operator admin of its organisation;
    audited, passwords in addresses masked)."""
    from openlfr.governance import Role, cameras

    with as_user("camera.update") as (ctx, me):
        ctx.require(me, {Role.OPERATOR_ADMIN}, "camera.update", "camera", camera)  # refusals audited first
        row = cameras.find_camera(ctx, camera)
        fields: dict[str, Any] = {k: v for k, v in (("stream_url", stream), ("location", location), ("zone", zone))
                                  if v is not None}
        values = dict(parse_setting(s) for s in setting or [])
        if roi is not None:
            values["roi"] = parse_roi(roi)
        if values:
            fields["settings"] = values
        row = cameras.update_camera(ctx, me, row.id, fields)
        typer.echo(f"camera {row.id} {row.name}: location={row.location!r} zone={row.zone!r} "
                   f"stream={cameras.mask_address(row.stream_url) or '(none)'} "
                   f"settings={json.dumps(row.settings or {}) if row.settings else 'defaults'}")


@user_errors
def camera_status(json_out: JsonOption = False) -> None:
    """What each camera's worker last reported: state, frames analysed per second, last frame,
    latest gap and error (operator admins, reviewers, auditors)."""
    from openlfr.governance import cameras

    with as_user("camera.status") as (ctx, me):
        rows = []
        for h in cameras.camera_status(ctx, me):
            st, gap = h.status, (h.gaps[0] if h.gaps else None)
            rows.append({"id": h.camera.id, "name": h.camera.name, "state": h.state,
                         "fps": st.fps if st else 0.0, "frames_analysed": st.frames_analysed if st else 0,
                         "last_frame_at": st.last_frame_at.isoformat(timespec="seconds") if st and st.last_frame_at
                         else "-",
                         "latest_gap": f"{gap.started_at.isoformat(timespec='seconds')} {gap.reason}" if gap else "-",
                         "error": (st.error if st else "") or "-"})
        print_rows(rows, json_out)


camera_app.command("edit")(camera_edit)
camera_app.command("status")(camera_status)


def register(app: typer.Typer) -> None:
    """Add ``openlfr camera`` to the main app."""
    app.add_typer(camera_app, name="camera")
