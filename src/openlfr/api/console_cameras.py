"""Console pages for cameras: the list (add a camera with its stream address), one camera's
edit form (address, place, region of interest and analysis settings) and the status page
(what each camera's worker last reported: state, frames analysed per second, last frame, gaps,
errors; never any imagery). Forms go through :func:`openlfr.api.console._act`, so a refusal
comes back as a message on the page."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response

from openlfr.api import defs
from openlfr.api.auth import Principal, require
from openlfr.api.console import _act, _page
from openlfr.api.deps import reading
from openlfr.governance import Role, cameras, parse
from openlfr.governance.schemas import CameraCreate
from openlfr.pipeline.settings import CameraSettings, parse_roi

router = APIRouter(include_in_schema=False)
OPS = Role.OPERATOR_ADMIN
#: settings edited on the camera's page as yes/no choices
_FLAGS = {name for name, f in CameraSettings.model_fields.items() if f.annotation in (bool, "bool")}


def _setting_rows(stored: dict[str, Any]) -> list[dict[str, Any]]:
    """Each analysis setting with its value now, its default and what it does (for the form)."""
    current = CameraSettings(**(stored or {}))
    rows = []
    for name, f in CameraSettings.model_fields.items():
        value, default = getattr(current, name), f.default
        if name == "roi":
            value = ",".join(str(v) for v in value) if value else ""
            default = ""
        rows.append({"name": name, "value": value, "default": default, "help": f.description or "",
                     "flag": name in _FLAGS, "changed": name in (stored or {})})
    return rows


@router.get("/console/cameras", response_class=HTMLResponse)
def cameras_page(request: Request, me: Principal = Depends(require(OPS))) -> HTMLResponse:
    """The organisation's cameras, their addresses (passwords masked) and settings; add one."""
    with reading(request) as ctx:
        cams = [defs.CameraOut.model_validate(c) for c in cameras.list_cameras(ctx, me.actor)]
    return _page(request, "cameras.html", me, cameras=cams)


@router.post("/console/cameras/add")
def camera_add(request: Request, name: str = Form(max_length=120), location: str = Form(max_length=2000),
               zone: str = Form("", max_length=120), stream_url: str = Form("", max_length=2000),
               me: Principal = Depends(require(OPS))) -> Response:
    """Register a camera with its stream address (checked against the organisation's networks
    or the recording folders)."""
    fields = {"name": name, "location": location, "zone": zone, "stream_url": stream_url}

    def add(ctx: Any) -> str:
        ctx.require(me.actor, {OPS}, "camera.add", "camera", name)  # invalid fields refused and audited
        cam = cameras.add_camera(ctx, me.actor, parse(CameraCreate, **fields))
        return f"camera {cam.name} added (id {cam.id}); set its analysis settings below"

    return _act(request, "/console/cameras", add)


@router.get("/console/cameras/status", response_class=HTMLResponse)
def status_page(request: Request, me: Principal = Depends(require(OPS, Role.REVIEWER, Role.AUDITOR))) -> HTMLResponse:
    """What each camera's worker last reported (no imagery)."""
    with reading(request) as ctx:
        rows = [defs.CameraStatusOut.of(h) for h in cameras.camera_status(ctx, me.actor)]
    return _page(request, "cameras_status.html", me, rows=rows)


@router.get("/console/cameras/{camera_id}", response_class=HTMLResponse)
def camera_page(camera_id: defs.Id, request: Request, me: Principal = Depends(require(OPS))) -> HTMLResponse:
    """One camera's edit form."""
    with reading(request) as ctx:
        cam = next((c for c in cameras.list_cameras(ctx, me.actor) if c.id == camera_id), None)
        if cam is None:
            return _page(request, "cameras_edit.html", me, camera=None, settings=[],
                         error=f"camera {camera_id} is not one of your organisation's")
        out = defs.CameraOut.model_validate(cam)
    return _page(request, "cameras_edit.html", me, camera=out, settings=_setting_rows(out.settings))


@router.post("/console/cameras/{camera_id}/edit")
async def camera_edit(camera_id: defs.Id, request: Request, me: Principal = Depends(require(OPS))) -> Response:
    """Save the edit form: only what differs from the camera's current values changes."""
    form = await request.form()
    text = {k: v for k, v in form.items() if isinstance(v, str)}
    back = f"/console/cameras/{camera_id}"

    def edit(ctx: Any) -> str:
        ctx.require(me.actor, {OPS}, "camera.update", "camera", camera_id)  # refusals audited before parsing
        fields: dict[str, Any] = {}
        for name in ("location", "zone"):
            if name in text:
                fields[name] = text[name]
        if text.get("remove_stream") == "on":
            fields["stream_url"] = ""
        elif text.get("stream_url", "").strip():  # blank: keep the address (it may hold a password)
            fields["stream_url"] = text["stream_url"]
        settings: dict[str, Any] = {}
        for name in CameraSettings.model_fields:
            raw = text.get(f"s_{name}")
            if raw is None:
                continue
            if name == "roi":
                settings[name] = parse_roi(raw)
            else:
                settings[name] = raw.strip() or None  # blank: back to the default
        if settings:
            fields["settings"] = settings
        cam = cameras.update_camera(ctx, me.actor, camera_id, fields)
        return f"camera {cam.name} saved"

    return _act(request, back, edit)
