"""``openlfr camera edit`` and ``openlfr camera status``: a camera's address and analysis
settings in the store, and what its worker last reported. :func:`register` adds them to the
``camera`` group of :mod:`openlfr.cli.governance`."""

from __future__ import annotations

import json
from typing import Annotated, Any, Optional

import typer

from openlfr.cli.support import print_rows
from openlfr.cli.support import user_errors as _errors
from openlfr.errors import InputError


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


def parse_roi(text: str) -> list[int] | None:
    """``left,top,right,bottom`` in pixels, or ``none`` for the whole frame."""
    if text.strip().lower() in ("none", "full", ""):
        return None
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != 4:
        raise InputError(f"--roi {text!r}: use LEFT,TOP,RIGHT,BOTTOM in pixels (e.g. 0,200,1919,1079) or none")
    return values


@_errors
def camera_edit(
    camera: Annotated[str, typer.Argument(help="The camera's id or name.")],
    stream: Annotated[Optional[str], typer.Option(
        help="New stream address: rtsp://..., http(s)://..., a recording under OPENLFR_CAMERA_FILE_ROOTS, "
             "webcam:N; '' removes it.")] = None,
    location: Annotated[Optional[str], typer.Option(help="New description of where it is.")] = None,
    zone: Annotated[Optional[str], typer.Option(help="New zone (a group of cameras, for reports).")] = None,
    setting: Annotated[Optional[list[str]], typer.Option(
        "--set", help="An analysis setting NAME=VALUE (repeat; NAME=default resets it), e.g. analyse_fps=4, "
                      "min_face_size=60, loop=true; see docs/pipeline.md.")] = None,
    roi: Annotated[Optional[str], typer.Option(
        help="Region of interest LEFT,TOP,RIGHT,BOTTOM in pixels, or none for the whole frame.")] = None,
) -> None:
    """Change a camera's address, place or analysis settings (operator admin of its organisation;
    audited, passwords in addresses masked)."""
    from openlfr.cli.governance import _as_user
    from openlfr.governance import Role, cameras

    with _as_user("camera.update") as (ctx, me):
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


@_errors
def camera_status(json_out: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
    """What each camera's worker last reported: state, frames analysed per second, last frame,
    latest gap and error (operator admins, reviewers, auditors)."""
    from openlfr.cli.governance import _as_user
    from openlfr.governance import cameras

    with _as_user("camera.status") as (ctx, me):
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


def register(camera_app: typer.Typer) -> None:
    """Add ``edit`` and ``status`` to the ``camera`` command group."""
    camera_app.command("edit")(camera_edit)
    camera_app.command("status")(camera_status)
