"""Console forms for operations that were API-only: agreements (offer; suspend, resume, end),
revoking a shared image, a requested deployment's threshold, a watchlist's entries (add with a
review date, remove with a reason), and one's own password.

Each form calls the same service as the JSON API with the caller's credential; the service
decides (role, organisation, state) and audits a refusal, which comes back as a one-line
message in the page (:func:`openlfr.api.console._act`). Inputs are checked after the caller,
so a refused input is audited too.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response

from openlfr.api import defs, views
from openlfr.api.auth import Principal, require
from openlfr.api.console import HOME, _act, _back, _page
from openlfr.api.console_alerts import status_of
from openlfr.api.deps import reading
from openlfr.errors import OpenLFRError
from openlfr.governance import (
    OrgKind,
    Role,
    agreements,
    deployments,
    parse,
    sharing,
    users,
    watchlists,
)
from openlfr.governance.grounds import WatchlistCategory
from openlfr.governance.organisations import list_organisations
from openlfr.governance.schemas import WatchlistAdd

router = APIRouter(include_in_schema=False)
SUP, OPS, OFFICER, AUDITOR = Role.SUPPLIER, Role.OPERATOR_ADMIN, Role.AUTHORISING_OFFICER, Role.AUDITOR
AGREEMENTS = "/console/agreements"


def _reason(ctx: Any, me: Principal, roles: set[Role], action: str, kind: str, object_id: int, text: str) -> str:
    """The reason of a form, checked after the caller (so that a missing one is refused and audited)."""
    ctx.require(me.actor, roles, action, kind, object_id)
    return parse(defs.ReasonIn, reason=text).reason


# --- agreements -----------------------------------------------------------------------------
@router.get(AGREEMENTS, response_class=HTMLResponse)
def agreements_page(request: Request, me: Principal = Depends(require(SUP, OPS, OFFICER, AUDITOR))) -> HTMLResponse:
    """The agreements the caller's organisation is party to, with what the caller may do to each."""
    with reading(request) as ctx:
        rows = agreements.list_agreements(ctx, me.actor)
        operators = [o.name for o in list_organisations(ctx) if o.kind != OrgKind.OVERSIGHT_BODY.value
                     and o.id != me.organisation_id]
    return _page(request, "agreements.html", me, agreements=rows, operators=operators,
                 categories=list(WatchlistCategory))


@router.post(AGREEMENTS)
def agreement_create(request: Request, operator: str = Form("", max_length=200),
                     purpose: str = Form("", max_length=2000), lawful_basis: str = Form("", max_length=2000),
                     valid_from: str = Form("", max_length=40), valid_until: str = Form("", max_length=40),
                     image_limit: str = Form("", max_length=12),
                     allowed_categories: list[str] = Form([], max_length=64),
                     allow_under_18: str = Form("", max_length=8), me: Principal = Depends(require(SUP))) -> Response:
    """A supplier offers an agreement (draft until an authorising officer of the force approves it)."""
    from openlfr.api.console import _aware

    fields = dict(operator=operator, purpose=purpose, lawful_basis=lawful_basis, valid_from=_aware(valid_from),
                  valid_until=_aware(valid_until), image_limit=image_limit, allowed_categories=allowed_categories,
                  allow_under_18=allow_under_18 == "on")

    def action(ctx: Any) -> str:
        row = agreements.create_from(ctx, me.actor, fields)
        return f"agreement {row.id} offered to {row.operator}: an authorising officer of {row.force} must approve it"

    return _act(request, AGREEMENTS, action)


@router.post("/console/agreements/{agreement_id}/suspend")
def agreement_suspend(agreement_id: defs.Id, request: Request, reason: str = Form("", max_length=2000),
                      me: Principal = Depends(require(SUP, OFFICER))) -> Response:
    """Pause sharing under an agreement (its images stay until it ends)."""
    def action(ctx: Any) -> str:
        why = _reason(ctx, me, {SUP, OFFICER}, "agreement.suspend", "agreement", agreement_id, reason)
        agreements.suspend(ctx, me.actor, agreement_id, why)
        return f"agreement {agreement_id} suspended: nothing more may be shared under it"

    return _act(request, AGREEMENTS, action)


@router.post("/console/agreements/{agreement_id}/resume")
def agreement_resume(agreement_id: defs.Id, request: Request,
                     me: Principal = Depends(require(SUP, OFFICER))) -> Response:
    """Lift a suspension."""
    return _act(request, AGREEMENTS, lambda ctx: (
        agreements.resume(ctx, me.actor, agreement_id), f"agreement {agreement_id} resumed")[1])


@router.post("/console/agreements/{agreement_id}/end")
def agreement_end(agreement_id: defs.Id, request: Request, reason: str = Form("", max_length=2000),
                  me: Principal = Depends(require(SUP, OFFICER, OPS))) -> Response:
    """End an agreement: every image shared under it is purged at once."""
    def action(ctx: Any) -> str:
        why = _reason(ctx, me, {SUP, OFFICER, OPS}, "agreement.end", "agreement", agreement_id, reason)
        agreements.end(ctx, me.actor, agreement_id, why)
        return f"agreement {agreement_id} ended: every image shared under it was purged"

    return _act(request, AGREEMENTS, action)


# --- the supplier withdraws an image ----------------------------------------------------------
@router.post("/console/images/{image_id}/revoke")
def image_revoke(image_id: defs.Id, request: Request, reason: str = Form("", max_length=2000),
                 me: Principal = Depends(require(SUP))) -> Response:
    """Withdraw one shared image: deleted everywhere at once; its ledger row is kept."""
    return _act(request, HOME[SUP], lambda ctx: (
        sharing.revoke_image(ctx, me.actor, image_id, reason), f"image {image_id} revoked and purged")[1])


# --- a requested deployment's threshold --------------------------------------------------------
@router.post("/console/deployments/{deployment_id}/threshold")
def deployment_threshold(deployment_id: defs.Id, request: Request, threshold: str = Form("", max_length=20),
                         me: Principal = Depends(require(OPS))) -> Response:
    """Change the threshold of a deployment still awaiting authorisation (set by hand: no longer calibrated)."""
    def action(ctx: Any) -> str:
        ctx.require(me.actor, {OPS}, "deployment.threshold", "deployment", deployment_id)
        value = parse(defs.ThresholdIn, threshold=threshold).threshold
        deployments.set_threshold(ctx, me.actor, deployment_id, value)
        return f"deployment {deployment_id}: threshold set to {value:g}"

    return _act(request, HOME[OPS], action)


# --- a watchlist and its entries ----------------------------------------------------------------
@router.get("/console/watchlists/{watchlist_id}", response_class=HTMLResponse)
def watchlist_page(watchlist_id: defs.Id, request: Request, me: Principal = Depends(require(OPS))) -> Response:
    """One watchlist of the caller's organisation: its entries (review dates), add and remove."""
    try:
        with reading(request) as ctx:
            found, entries = views.watchlist_entries(ctx, me.actor, watchlist_id)
            listed = {e.shared_image_id for e in entries if e.removed_at is None}
            images = [i for i in views.shared_with(ctx, me.organisation_id) if i.id not in listed]
            live = sum(1 for e in entries if e.removed_at is None)
    except OpenLFRError as err:
        page = _page(request, "watchlist.html", me, watchlist=None, page_error=str(err))
        page.status_code = status_of(err)
        return page
    return _page(request, "watchlist.html", me, watchlist=found, entries=entries, images=images, live=live)


@router.post("/console/watchlists/{watchlist_id}/entries")
def watchlist_add(watchlist_id: defs.Id, request: Request, shared_image_id: str = Form("", max_length=12),
                  label: str = Form("", max_length=120), reason: str = Form("", max_length=2000),
                  review_date: str = Form("", max_length=20), back: str = Form("", max_length=8),
                  me: Principal = Depends(require(OPS))) -> Response:
    """Put a shared image on a watchlist with its label, reason and review date."""
    def action(ctx: Any) -> str:
        # the caller first, so that an invalid field is refused and audited
        ctx.require(me.actor, {OPS}, "watchlist.add", "watchlist", watchlist_id)
        entry = watchlists.add_entry(ctx, me.actor, parse(
            WatchlistAdd, watchlist_id=watchlist_id, shared_image_id=shared_image_id, label=label, reason=reason,
            review_date=review_date))
        return f"entry {entry.id} added to watchlist {watchlist_id}, for review by {entry.review_date}"

    # the admin page's form comes back to the admin page; the watchlist page's to itself
    return _act(request, f"/console/watchlists/{watchlist_id}" if back == "list" else HOME[OPS], action)


@router.post("/console/watchlist-entries/{entry_id}/remove")
def watchlist_remove(entry_id: defs.Id, request: Request, reason: str = Form("", max_length=2000),
                     watchlist_id: str = Form("", max_length=12), me: Principal = Depends(require(OPS))) -> Response:
    """Take an entry off its watchlist (frozen deployment snapshots are not changed)."""
    def action(ctx: Any) -> str:
        why = _reason(ctx, me, {OPS}, "watchlist.remove", "watchlist_entry", entry_id, reason)
        watchlists.remove_entry(ctx, me.actor, entry_id, why)
        return f"entry {entry_id} removed"

    back = f"/console/watchlists/{watchlist_id}" if watchlist_id.isdigit() else HOME[OPS]
    return _act(request, back, action)


# --- one's own password ---------------------------------------------------------------------------
@router.get("/console/password", response_class=HTMLResponse)
def password_page(request: Request, me: Principal = Depends(require())) -> HTMLResponse:
    """Change one's own password."""
    return _page(request, "password.html", me)


@router.post("/console/password")
def password_change(request: Request, current: str = Form("", max_length=1000), new: str = Form("", max_length=1000),
                    me: Principal = Depends(require())) -> Response:
    """Check the current password, set the new one, end every session and token of the caller."""
    from openlfr.api.auth import SESSION_COOKIE
    from openlfr.api.deps import tx

    try:
        with tx(request) as ctx:
            users.change_own_password(ctx, me.actor, current, new)
    except OpenLFRError as err:
        return _back("/console/password", error=str(err))
    response = _back("/login", msg="password changed: every session ended; log in with the new password")
    response.delete_cookie(SESSION_COOKIE)
    return response
