"""Console forms for operations that were API-only: agreements, revoking images, thresholds,
watchlist entries, one's own password. Each works for the right role; a wrong role is refused
(403 with the reason); bad input and a refused party come back as one line in the page, with
nothing stored and the refusal audited."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, select

from apikit import PASSWORD, WARRANT_REF, Site, actor, console_login, organisation, png
from govkit import grounds
from openlfr.governance import OrgKind, Role, deployments, parse, sharing, users
from openlfr.governance.schemas import DeploymentRequest, ShareImage, UserCreate
from openlfr.store.models import (
    Agreement,
    AuditEvent,
    Deployment,
    SharedImage,
    WatchlistEntry,
)


@contextmanager
def browser(site: Site, name: str, password: str = PASSWORD) -> Iterator[tuple[httpx.Client, str]]:
    """A cookie session like a browser's, and its CSRF token."""
    with httpx.Client(base_url=site.url, timeout=10) as c:
        assert console_login(c, name, password).status_code == 303
        yield c, c.get("/api/auth/me").json()["csrf_token"]


def _refusals(site: Site, action: str) -> int:
    with site.gov.transaction() as ctx:
        return ctx.session.execute(select(func.count()).select_from(AuditEvent)
                                   .where(AuditEvent.action == f"{action}.refused")).scalar_one()


def _get(site: Site, model: type, row_id: int) -> object:
    with site.gov.transaction() as ctx:
        row = ctx.session.get(model, row_id)
        ctx.session.expunge(row)
        return row


@pytest.fixture(scope="module")
def images(site: Site) -> list[int]:
    """Two images the force's supplier shared with the estate (not on any watchlist yet), and
    an operator admin of another site operator."""
    met = actor(site.gov, "met")
    with site.gov.transaction() as ctx:
        ids = [sharing.share_image(ctx, met, ShareImage(
            agreement_id=site.agreement_id, category="wanted_by_court", warrant_ref=WARRANT_REF, reason="warrant",
            subject_ref=f"S-FORMS-{i}", image_date=date(2026, 1, 1)), png(7700 + i)).id for i in range(2)]
    organisation(site.gov, "Quayside Ltd", OrgKind.SITE_OPERATOR, "quay-admin",
                 staff={"quay-ops": (Role.OPERATOR_ADMIN, None)})
    return ids


# --- agreements -----------------------------------------------------------------------------
def _agreements(site: Site) -> int:
    with site.gov.transaction() as ctx:
        return ctx.session.execute(select(func.count()).select_from(Agreement)).scalar_one()


OFFER = {"operator": "Estate Ltd", "purpose": "find missing people at risk", "lawful_basis": "DPA 2018 s.35",
         "valid_from": "2033-01-01T00:00", "valid_until": "2033-06-30T00:00", "image_limit": "5",
         "allowed_categories": ["missing_at_risk"]}


def test_agreement_offer_and_lifecycle(site: Site) -> None:
    before = _agreements(site)
    with browser(site, "admin") as (c, csrf):  # an operator admin may not offer one
        r = c.post("/console/agreements", data=OFFER | {"csrf_token": csrf})
        assert r.status_code == 403 and "needs role supplier" in r.text and _agreements(site) == before
    with browser(site, "met") as (c, csrf):
        refused = _refusals(site, "agreement.create")
        r = c.post("/console/agreements", data=OFFER | {"csrf_token": csrf, "allowed_categories": []},
                   follow_redirects=True)
        assert "invalid input: allowed_categories" in r.text and _agreements(site) == before
        assert _refusals(site, "agreement.create") == refused + 1
        r = c.post("/console/agreements", data=OFFER | {"csrf_token": csrf, "valid_until": "2032-01-01T00:00"},
                   follow_redirects=True)
        assert "valid_until must be after valid_from" in r.text and _agreements(site) == before
        r = c.post("/console/agreements", data=OFFER | {"csrf_token": csrf}, follow_redirects=True)
        assert "offered to Estate Ltd" in r.text and _agreements(site) == before + 1
        new = max(int(x["id"]) for x in c.get("/api/agreements").json())
        assert f'data-agreement="{new}"' in r.text
        # a draft cannot be suspended: refused in the page
        r = c.post(f"/console/agreements/{new}/suspend", data={"csrf_token": csrf, "reason": "pause"},
                   follow_redirects=True)
        assert "only an active one can be suspended" in r.text and _get(site, Agreement, new).status == "draft"
    with browser(site, "officer") as (c, csrf):
        assert "approve" in c.get("/console/agreements").text
        c.post(f"/console/agreements/{new}/approve", data={"csrf_token": csrf})
        assert _get(site, Agreement, new).status == "active"
        r = c.post(f"/console/agreements/{new}/suspend", data={"csrf_token": csrf, "reason": " "},
                   follow_redirects=True)
        assert "invalid input: reason" in r.text and _get(site, Agreement, new).status == "active"
        r = c.post(f"/console/agreements/{new}/suspend", data={"csrf_token": csrf, "reason": "review of the terms"},
                   follow_redirects=True)
        assert f"agreement {new} suspended" in r.text and _get(site, Agreement, new).status == "suspended"
    with browser(site, "reviewer") as (c, csrf):
        assert c.post(f"/console/agreements/{new}/resume", data={"csrf_token": csrf}).status_code == 403
        assert _get(site, Agreement, new).status == "suspended"
    with browser(site, "met") as (c, csrf):
        r = c.post(f"/console/agreements/{new}/resume", data={"csrf_token": csrf}, follow_redirects=True)
        assert f"agreement {new} resumed" in r.text and _get(site, Agreement, new).status == "active"
    with browser(site, "admin") as (c, csrf):  # the operator side may end it
        r = c.post(f"/console/agreements/{new}/end", data={"csrf_token": csrf, "reason": "no longer needed"},
                   follow_redirects=True)
        assert f"agreement {new} ended" in r.text and _get(site, Agreement, new).status == "ended"


# --- revoking an image -------------------------------------------------------------------------
def test_supplier_revokes_an_image(site: Site, images: list[int]) -> None:
    image = images[1]
    with browser(site, "officer") as (c, csrf):
        assert c.post(f"/console/images/{image}/revoke", data={"csrf_token": csrf, "reason": "x"}).status_code == 403
    with browser(site, "met") as (c, csrf):
        assert f'data-image="{image}"' in c.get("/console/supplier").text
        refused = _refusals(site, "image.revoke")
        r = c.post(f"/console/images/{image}/revoke", data={"csrf_token": csrf, "reason": ""}, follow_redirects=True)
        assert "a reason for revoking is required" in r.text and _get(site, SharedImage, image).deleted_at is None
        assert _refusals(site, "image.revoke") == refused + 1
        r = c.post(f"/console/images/{image}/revoke", data={"csrf_token": csrf, "reason": "warrant withdrawn"},
                   follow_redirects=True)
        assert f"image {image} revoked" in r.text and _get(site, SharedImage, image).deleted_at is not None
        again = c.post(f"/console/images/{image}/revoke", data={"csrf_token": csrf, "reason": "again"},
                       follow_redirects=True)
        assert "already deleted" in again.text


# --- a requested deployment's threshold -----------------------------------------------------------
def test_threshold_before_authorisation(site: Site) -> None:
    now = datetime.now(UTC)
    with site.gov.transaction() as ctx:
        live = ctx.session.get(Deployment, site.deployment_id)
        wl, cam = live.watchlist_id, site.camera_id
    with site.gov.transaction() as ctx:
        dep = deployments.request(ctx, actor(site.gov, "admin"), parse(
            DeploymentRequest, purpose="threshold form test", watchlist_id=wl, camera_ids=[cam],
            start=now + timedelta(days=40), end=now + timedelta(days=40, hours=4), threshold=0.6, **grounds())).id
    with browser(site, "officer") as (c, csrf):
        r = c.post(f"/console/deployments/{dep}/threshold", data={"csrf_token": csrf, "threshold": "0.7"})
        assert r.status_code == 403 and "needs role operator_admin" in r.text
    with browser(site, "admin") as (c, csrf):
        assert f'action="/console/deployments/{dep}/threshold"' in c.get("/console/admin").text
        refused = _refusals(site, "deployment.threshold")
        r = c.post(f"/console/deployments/{dep}/threshold", data={"csrf_token": csrf, "threshold": "1.5"},
                   follow_redirects=True)
        assert "invalid input: threshold" in r.text and _get(site, Deployment, dep).threshold == 0.6
        assert _refusals(site, "deployment.threshold") == refused + 1
        r = c.post(f"/console/deployments/{site.deployment_id}/threshold",
                   data={"csrf_token": csrf, "threshold": "0.5"}, follow_redirects=True)
        assert "its threshold is locked" in r.text
        r = c.post(f"/console/deployments/{dep}/threshold", data={"csrf_token": csrf, "threshold": "0.7"},
                   follow_redirects=True)
        assert f"deployment {dep}: threshold set to 0.7" in r.text and _get(site, Deployment, dep).threshold == 0.7


# --- watchlist entries ------------------------------------------------------------------------------
def _entries(site: Site) -> int:
    with site.gov.transaction() as ctx:
        return ctx.session.execute(select(func.count()).select_from(WatchlistEntry)).scalar_one()


def test_watchlist_entries_add_and_remove(site: Site, images: list[int]) -> None:
    with site.gov.transaction() as ctx:
        wl = ctx.session.get(Deployment, site.deployment_id).watchlist_id
    fields = {"shared_image_id": str(images[0]), "label": "Subject Forms", "reason": "warrant WR-9 for robbery",
              "review_date": (date.today() + timedelta(days=30)).isoformat(), "back": "list"}
    before = _entries(site)
    with browser(site, "reviewer") as (c, csrf):
        assert c.post(f"/console/watchlists/{wl}/entries", data=fields | {"csrf_token": csrf}).status_code == 403
        assert c.get(f"/console/watchlists/{wl}").status_code == 403
    with browser(site, "quay-ops") as (c, csrf):  # another operator's admin: not theirs
        page = c.get(f"/console/watchlists/{wl}")
        assert page.status_code == 404 and "no watchlist" in page.text and "Subject Forms" not in page.text
        r = c.post(f"/console/watchlists/{wl}/entries", data=fields | {"csrf_token": csrf}, follow_redirects=True)
        assert "Quayside Ltd" in r.text and "cannot" in r.text and _entries(site) == before
    with browser(site, "admin") as (c, csrf):
        refused = _refusals(site, "watchlist.add")
        r = c.post(f"/console/watchlists/{wl}/entries", data=fields | {"csrf_token": csrf, "review_date": "someday"},
                   follow_redirects=True)
        assert "invalid input: review_date" in r.text and _entries(site) == before
        assert f'<option value="{images[0]}">' in r.text
        assert _refusals(site, "watchlist.add") == refused + 1
        assert str(r.url).endswith(f"/console/watchlists/{wl}") or f"/console/watchlists/{wl}?" in str(r.url)
        r = c.post(f"/console/watchlists/{wl}/entries", data=fields | {"csrf_token": csrf}, follow_redirects=True)
        assert "added to watchlist" in r.text and _entries(site) == before + 1
        entry = max(int(x) for x in re.findall(r'data-entry="(\d+)"', r.text))
        assert "Subject Forms" in r.text and fields["review_date"] in r.text and "S-FORMS-0" in r.text
        assert f'<option value="{images[0]}">' not in r.text  # listed: no longer offered
        r = c.post(f"/console/watchlist-entries/{entry}/remove",
                   data={"csrf_token": csrf, "reason": "", "watchlist_id": str(wl)}, follow_redirects=True)
        assert "invalid input: reason" in r.text and _get(site, WatchlistEntry, entry).removed_at is None
    with browser(site, "quay-ops") as (c, csrf):
        r = c.post(f"/console/watchlist-entries/{entry}/remove", data={"csrf_token": csrf, "reason": "mine now"},
                   follow_redirects=True)
        assert "cannot remove entry" in r.text and _get(site, WatchlistEntry, entry).removed_at is None
    with browser(site, "admin") as (c, csrf):
        r = c.post(f"/console/watchlist-entries/{entry}/remove",
                   data={"csrf_token": csrf, "reason": "arrested", "watchlist_id": str(wl)}, follow_redirects=True)
        assert f"entry {entry} removed" in r.text and _get(site, WatchlistEntry, entry).removed_at is not None


# --- one's own password -------------------------------------------------------------------------------
def test_own_password(site: Site) -> None:
    with site.gov.transaction() as ctx:
        users.create_user(ctx, actor(site.gov, "met-admin"), UserCreate(name="pw-changer", role=Role.SUPPLIER),
                          PASSWORD)
    new = "another long password"
    with browser(site, "pw-changer") as (c, csrf):
        assert "Change your password" in c.get("/console/password").text
        r = c.post("/console/password", data={"csrf_token": csrf, "current": "wrong one", "new": new},
                   follow_redirects=True)
        assert "the current password is wrong" in r.text
        r = c.post("/console/password", data={"csrf_token": csrf, "current": PASSWORD, "new": "short"},
                   follow_redirects=True)
        assert "a password needs at least 10 characters" in r.text
        assert c.get("/console/supplier").status_code == 200  # still logged in: nothing changed
        r = c.post("/console/password", data={"csrf_token": csrf, "current": PASSWORD, "new": new},
                   follow_redirects=True)
        assert "password changed" in r.text
        assert c.get("/console/supplier").status_code == 303  # every session ended
    with httpx.Client(base_url=site.url) as c:
        assert console_login(c, "pw-changer", PASSWORD).status_code != 303
    with browser(site, "pw-changer", new) as (c, _):
        assert c.get("/console/supplier").status_code == 200
