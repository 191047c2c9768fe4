"""Agreements, sharing, the force's ledger and central view, watchlists, cameras and signage,
deployments.

Each route checks the caller's role before calling the service with the caller's credential
(``me.actor``); the service checks it again with the finer rules (own organisation, rank,
requester is not authoriser, ...) and scopes every list to what the caller's organisation may see.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request

from openlfr.api import defs, upload, views
from openlfr.api.auth import Principal, require
from openlfr.api.deps import reading, tx
from openlfr.governance import Role, parse
from openlfr.governance import agreements, cameras, central, deployments, sharing, watchlists
from openlfr.governance.schemas import (
    AgreementCreate, CameraCreate, CameraUpdate, DeploymentRequest, SignageCreate, WatchlistAdd, WatchlistCreate,
)

router = APIRouter(prefix="/api")
SUP, OPS, OFFICER, REVIEWER, AUDITOR = (Role.SUPPLIER, Role.OPERATOR_ADMIN, Role.AUTHORISING_OFFICER,
                                        Role.REVIEWER, Role.AUDITOR)
STAFF = (SUP, OPS, OFFICER, AUDITOR)
FORCE_VIEWERS = (SUP, OFFICER, AUDITOR)
ForceName = Query(None, max_length=200, description="the police force (oversight bodies' auditors must name one)")


# --- agreements ---------------------------------------------------------------------------
@router.get("/agreements", response_model=list[defs.AgreementOut], tags=["agreements"])
def list_agreements(request: Request, me: Principal = Depends(require(*STAFF))) -> list[defs.AgreementOut]:
    """The agreements the caller's organisation is party to (an oversight body's auditors: all)."""
    with reading(request) as ctx:
        return [defs.AgreementOut.model_validate(a) for a in agreements.list_agreements(ctx, me.actor)]


@router.post("/agreements", response_model=defs.AgreementOut, status_code=201, tags=["agreements"])
def create_agreement(body: AgreementCreate, request: Request,
                     me: Principal = Depends(require(SUP))) -> defs.AgreementOut:
    """The supplier offers an agreement to an operator (draft until approved)."""
    with tx(request) as ctx:
        return defs.AgreementOut.model_validate(agreements.create(ctx, me.actor, body))


@router.post("/agreements/{agreement_id}/approve", response_model=defs.AgreementOut, tags=["agreements"])
def approve_agreement(agreement_id: defs.Id, request: Request,
                      me: Principal = Depends(require(OFFICER))) -> defs.AgreementOut:
    """An authorising officer approves a draft agreement."""
    with tx(request) as ctx:
        return defs.AgreementOut.model_validate(agreements.approve(ctx, me.actor, agreement_id))


@router.post("/agreements/{agreement_id}/suspend", response_model=defs.AgreementOut, tags=["agreements"])
def suspend_agreement(agreement_id: defs.Id, body: defs.ReasonIn, request: Request,
                      me: Principal = Depends(require(SUP, OFFICER))) -> defs.AgreementOut:
    """Pause sharing under an agreement."""
    with tx(request) as ctx:
        return defs.AgreementOut.model_validate(agreements.suspend(ctx, me.actor, agreement_id, body.reason))


@router.post("/agreements/{agreement_id}/resume", response_model=defs.AgreementOut, tags=["agreements"])
def resume_agreement(agreement_id: defs.Id, request: Request,
                     me: Principal = Depends(require(SUP, OFFICER))) -> defs.AgreementOut:
    """Lift a suspension."""
    with tx(request) as ctx:
        return defs.AgreementOut.model_validate(agreements.resume(ctx, me.actor, agreement_id))


@router.post("/agreements/{agreement_id}/end", response_model=defs.AgreementOut, tags=["agreements"])
def end_agreement(agreement_id: defs.Id, body: defs.ReasonIn, request: Request,
                  me: Principal = Depends(require(SUP, OFFICER, OPS))) -> defs.AgreementOut:
    """End an agreement and purge every image shared under it."""
    with tx(request) as ctx:
        return defs.AgreementOut.model_validate(agreements.end(ctx, me.actor, agreement_id, body.reason))


# --- sharing and ledger -------------------------------------------------------------------
@router.post("/images", response_model=defs.SharedImageOut, status_code=201, tags=["sharing"],
             openapi_extra=upload.SHARE_FORM_SCHEMA)
async def share_image(request: Request, me: Principal = Depends(require(SUP))) -> defs.SharedImageOut:
    """Share one image under an agreement (multipart upload: ``file`` and the fields below).

    The credential is checked before the body is read; the image goes through the image gate
    (JPEG/PNG by content, at most ``OPENLFR_MAX_IMAGE_PIXELS``, re-encoded without metadata)
    and its face is found in a worker thread, then one short transaction stores it.
    """
    limit = request.app.state.settings.max_upload_bytes
    form, raw = await upload.read_share_form(request, limit)
    fields: dict[str, Any] = {**form, "under_18": form.get("under_18", "false").lower() in ("true", "1", "on", "yes")}
    from starlette.concurrency import run_in_threadpool

    def work() -> defs.SharedImageOut:
        prepared = sharing.prepare_image(request.app.state.gov.template_fn, raw, label="the uploaded image")
        with tx(request) as ctx:  # the fields are checked after the caller: a refusal is audited
            return defs.SharedImageOut.model_validate(sharing.share_image_from(ctx, me.actor, fields, prepared))

    return await run_in_threadpool(work)


@router.post("/images/{image_id}/revoke", response_model=defs.SharedImageOut, tags=["sharing"])
def revoke_image(image_id: defs.Id, body: defs.ReasonIn, request: Request,
                 me: Principal = Depends(require(SUP))) -> defs.SharedImageOut:
    """The supplier withdraws one image (purged at once)."""
    with tx(request) as ctx:
        return defs.SharedImageOut.model_validate(sharing.revoke_image(ctx, me.actor, image_id, body.reason))


@router.get("/ledger", response_model=list[defs.LedgerRowOut], tags=["sharing"])
def ledger(request: Request, force: str | None = ForceName,
           me: Principal = Depends(require(*FORCE_VIEWERS))) -> list[defs.LedgerRowOut]:
    """Every image a police force has shared under any of its agreements, whoever in the force
    shared it, live or purged (the caller's own force; an oversight auditor names one)."""
    with tx(request) as ctx:  # the view is audited (ledger.view)
        rows = sharing.force_ledger(ctx, me.actor, force)
        return [defs.LedgerRowOut(status=r.status, **r.__dict__) for r in rows]


@router.get("/force", response_model=defs.ForceOut, tags=["sharing"])
def force_view(request: Request, force: str | None = ForceName,
               me: Principal = Depends(require(*FORCE_VIEWERS))) -> defs.ForceOut:
    """The force's central view: every agreement it is party to, every image it shared with
    the watchlists, deployments and alerts that used it, and those deployments and alerts
    (the caller's own force; an oversight auditor names one). No image bytes."""
    with tx(request) as ctx:  # the view is audited (force.view)
        return views.force_out(central.force_view(ctx, me.actor, force), ctx)


# --- watchlists ---------------------------------------------------------------------------
@router.get("/watchlists", response_model=list[defs.WatchlistOut], tags=["watchlists"])
def list_watchlists(request: Request,
                    me: Principal = Depends(require(OPS, OFFICER, AUDITOR))) -> list[defs.WatchlistOut]:
    """Watchlists with their number of active entries."""
    with reading(request) as ctx:
        return [defs.WatchlistOut(id=w.id, name=w.name, criteria=w.criteria, categories=list(w.categories or []),
                                  size_cap=w.size_cap,
                                  entries=len(watchlists.active_entries(ctx, w.id)))
                for w in watchlists.list_watchlists(ctx, me.actor)]


@router.post("/watchlists", response_model=defs.WatchlistOut, status_code=201, tags=["watchlists"])
def create_watchlist(body: WatchlistCreate, request: Request,
                     me: Principal = Depends(require(OPS))) -> defs.WatchlistOut:
    """A new, empty watchlist."""
    with tx(request) as ctx:
        w = watchlists.create_watchlist(ctx, me.actor, body)
        return defs.WatchlistOut(id=w.id, name=w.name, criteria=w.criteria, categories=list(w.categories),
                                 size_cap=w.size_cap, entries=0)


@router.post("/watchlists/{watchlist_id}/entries", response_model=defs.EntryOut, status_code=201, tags=["watchlists"])
def add_entry(watchlist_id: defs.Id, body: defs.EntryIn, request: Request,
              me: Principal = Depends(require(OPS))) -> defs.EntryOut:
    """Put a shared image on the watchlist."""
    data = parse(WatchlistAdd, **(body.model_dump() | {"watchlist_id": watchlist_id}))
    with tx(request) as ctx:
        return defs.EntryOut.model_validate(watchlists.add_entry(ctx, me.actor, data))


@router.post("/watchlists/{watchlist_id}/retemplate", response_model=defs.RetemplateOut, tags=["watchlists"])
def retemplate_watchlist(watchlist_id: defs.Id, request: Request,
                         me: Principal = Depends(require(OPS))) -> defs.RetemplateOut:
    """Re-make every template on the watchlist with the server's face model (audited per image);
    the model runs before the transaction, so no lock is held while it does."""
    prepared = watchlists.prepare_retemplate(request.app.state.gov, me.actor, watchlist_id)
    with tx(request) as ctx:
        return defs.RetemplateOut(**watchlists.retemplate(ctx, me.actor, watchlist_id, prepared))


@router.post("/watchlist-entries/{entry_id}/remove", response_model=defs.EntryOut, tags=["watchlists"])
def remove_entry(entry_id: defs.Id, body: defs.ReasonIn, request: Request,
                 me: Principal = Depends(require(OPS))) -> defs.EntryOut:
    """Take an entry off its watchlist."""
    with tx(request) as ctx:
        return defs.EntryOut.model_validate(watchlists.remove_entry(ctx, me.actor, entry_id, body.reason))


# --- cameras and signage ------------------------------------------------------------------
@router.get("/cameras", response_model=list[defs.CameraOut], tags=["cameras"])
def list_cameras(request: Request,
                 me: Principal = Depends(require(OPS, OFFICER, REVIEWER, AUDITOR))) -> list[defs.CameraOut]:
    """Every camera."""
    with reading(request) as ctx:
        return [defs.CameraOut.model_validate(c) for c in cameras.list_cameras(ctx, me.actor)]


@router.post("/cameras", response_model=defs.CameraOut, status_code=201, tags=["cameras"])
def add_camera(body: CameraCreate, request: Request, me: Principal = Depends(require(OPS))) -> defs.CameraOut:
    """Register a camera."""
    with tx(request) as ctx:
        return defs.CameraOut.model_validate(cameras.add_camera(ctx, me.actor, body))


@router.get("/cameras/status", response_model=list[defs.CameraStatusOut], tags=["cameras"])
def camera_status(request: Request,
                  me: Principal = Depends(require(OPS, REVIEWER, AUDITOR))) -> list[defs.CameraStatusOut]:
    """Each camera's worker as it last reported: running or not, frames analysed per second, when
    it last had a frame, its latest gaps and its last error (no imagery)."""
    with reading(request) as ctx:
        return [defs.CameraStatusOut.of(h) for h in cameras.camera_status(ctx, me.actor)]


@router.patch("/cameras/{camera_id}", response_model=defs.CameraOut, tags=["cameras"])
def update_camera(camera_id: defs.Id, body: CameraUpdate, request: Request,
                  me: Principal = Depends(require(OPS))) -> defs.CameraOut:
    """Change a camera's location, zone, stream address or analysis settings (only the fields
    given; a setting given as null goes back to its default). Audited, addresses masked."""
    with tx(request) as ctx:
        return defs.CameraOut.model_validate(cameras.update_camera(ctx, me.actor, camera_id, body))


@router.put("/camera-networks", response_model=defs.CameraNetworksOut, tags=["cameras"])
def set_camera_networks(body: defs.CameraNetworksIn, request: Request,
                        me: Principal = Depends(require(OPS))) -> defs.CameraNetworksOut:
    """Set the networks (CIDR) your organisation's cameras may stream from; an empty list allows
    none. Camera addresses are checked against them when registered and each time a worker opens
    one. Audited with the old and new lists."""
    with tx(request) as ctx:
        return defs.CameraNetworksOut(networks=cameras.set_camera_networks(ctx, me.actor, body.networks))


@router.post("/cameras/{camera_id}/signage", response_model=defs.SignageOut, status_code=201, tags=["cameras"])
def record_signage(camera_id: defs.Id, body: defs.SignageIn, request: Request,
                   me: Principal = Depends(require(OPS))) -> defs.SignageOut:
    """Record a check of the public notice at a camera, for a deployment (a deployment starts only
    on checks recorded for it). The text must say that facial recognition is in use; the date may
    not be after today nor more than ``OPENLFR_SIGNAGE_BACKDATE_DAYS`` before it. To attach a
    photo of the notice, use ``POST /api/cameras/{camera_id}/signage/photo``."""
    data = parse(SignageCreate, **(body.model_dump() | {"camera_id": camera_id}))
    with tx(request) as ctx:
        return defs.SignageOut.model_validate(cameras.record_signage(ctx, me.actor, data))


@router.post("/cameras/{camera_id}/signage/photo", response_model=defs.SignageOut, status_code=201, tags=["cameras"],
             openapi_extra=upload.SIGNAGE_FORM_SCHEMA)
async def record_signage_with_photo(camera_id: defs.Id, request: Request,
                                    me: Principal = Depends(require(OPS))) -> defs.SignageOut:
    """Record a signage check with a photo of the notice (multipart upload: ``file`` and the fields
    of ``POST /api/cameras/{camera_id}/signage``). The photo goes through the image gate and is
    stored encrypted; its SHA-256 is kept with the record."""
    form, raw = await upload.read_signage_form(request, request.app.state.settings.max_upload_bytes)
    fields: dict[str, Any] = dict(form)
    if not fields.get("deployment_id"):
        fields.pop("deployment_id", None)  # a check of the camera alone
    fields["camera_id"] = camera_id
    from starlette.concurrency import run_in_threadpool

    def work() -> defs.SignageOut:
        with tx(request) as ctx:  # the fields are checked after the caller: a refusal is audited
            return defs.SignageOut.model_validate(cameras.record_signage_from(ctx, me.actor, fields, raw))

    return await run_in_threadpool(work)


# --- deployments --------------------------------------------------------------------------
@router.get("/deployments", response_model=list[defs.DeploymentOut], tags=["deployments"])
def list_deployments(request: Request,
                     me: Principal = Depends(require(OPS, OFFICER, REVIEWER, AUDITOR))) -> list[defs.DeploymentOut]:
    """Every deployment."""
    with reading(request) as ctx:
        return [views.deployment_out(d, ctx) for d in deployments.list_deployments(ctx, me.actor)]


@router.post("/deployments", response_model=defs.DeploymentOut, status_code=201, tags=["deployments"])
def request_deployment(body: DeploymentRequest, request: Request,
                       me: Principal = Depends(require(OPS, OFFICER))) -> defs.DeploymentOut:
    """Ask for a deployment, with a threshold or a target false-alert rate (calibrated on the
    cohort in ``OPENLFR_CALIBRATION_COHORT``; refused with 409 where none is configured)."""
    from openlfr.evaluation.cohort import configured_calibrator

    calibrate = configured_calibrator() if body.target_false_alert_rate is not None else None
    with tx(request) as ctx:
        return views.deployment_out(deployments.request(ctx, me.actor, body, calibrate), ctx)


@router.post("/deployments/{deployment_id}/authorise", response_model=defs.DeploymentOut, tags=["deployments"])
def authorise_deployment(deployment_id: defs.Id, body: defs.AuthoriseIn, request: Request,
                         me: Principal = Depends(require(OFFICER))) -> defs.DeploymentOut:
    """Authorise (an officer of the supplying force, of the required rank, never the requester):
    freezes the watchlist snapshot; may require that only police reviewers confirm its alerts."""
    from openlfr.evaluation.cohort import configured_floor

    floor_fn = configured_floor()
    with tx(request) as ctx:
        return views.deployment_out(deployments.authorise(
            ctx, me.actor, deployment_id, body.note, require_police_review=body.require_police_review,
            threshold_reason=body.threshold_reason, floor_fn=floor_fn))


@router.post("/deployments/{deployment_id}/refuse", response_model=defs.DeploymentOut, tags=["deployments"])
def refuse_deployment(deployment_id: defs.Id, body: defs.ReasonIn, request: Request,
                      me: Principal = Depends(require(OFFICER))) -> defs.DeploymentOut:
    """Refuse a requested deployment, with the reason (an officer of a supplying force, of the
    rank needed to authorise it, never the requester)."""
    with tx(request) as ctx:
        return views.deployment_out(deployments.refuse(ctx, me.actor, deployment_id, body.reason))


@router.post("/deployments/{deployment_id}/retro-review", response_model=defs.DeploymentOut, tags=["deployments"])
def retro_review_deployment(deployment_id: defs.Id, body: defs.RetroReviewIn, request: Request,
                            me: Principal = Depends(require(OFFICER))) -> defs.DeploymentOut:
    """Review an urgent authority afterwards (an officer of the same force, of the usual rank,
    not the one who authorised it): upheld, or ended at once. Unreviewed by its due time, the
    deployment is ended by the sweep."""
    with tx(request) as ctx:
        return views.deployment_out(deployments.retro_review(ctx, me.actor, deployment_id, body.outcome, body.note))


@router.post("/deployments/{deployment_id}/start", response_model=defs.DeploymentOut, tags=["deployments"])
def start_deployment(deployment_id: defs.Id, request: Request,
                     me: Principal = Depends(require(OPS, OFFICER))) -> defs.DeploymentOut:
    """Go live (inside the window, with current signage)."""
    with tx(request) as ctx:
        return views.deployment_out(deployments.start(ctx, me.actor, deployment_id))


@router.post("/deployments/{deployment_id}/end", response_model=defs.DeploymentOut, tags=["deployments"])
def end_deployment(deployment_id: defs.Id, body: defs.NoteIn, request: Request,
                   me: Principal = Depends(require(OPS, OFFICER))) -> defs.DeploymentOut:
    """End a live deployment or cancel one not yet live."""
    with tx(request) as ctx:
        return views.deployment_out(deployments.end(ctx, me.actor, deployment_id, body.note))


@router.post("/deployments/{deployment_id}/threshold", response_model=defs.DeploymentOut, tags=["deployments"])
def set_threshold(deployment_id: defs.Id, body: defs.ThresholdIn, request: Request,
                  me: Principal = Depends(require(OPS))) -> defs.DeploymentOut:
    """Change the threshold before authorisation."""
    with tx(request) as ctx:
        return views.deployment_out(deployments.set_threshold(ctx, me.actor, deployment_id, body.threshold))
