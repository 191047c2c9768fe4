"""Parties that cannot act for each other, over real HTTP and the console.

The estate (a site operator, which hosts the installation), the Met (a police force) and
the ICO (an oversight body) each manage their own users; a second force (Kent) shows that a
force's records are its own. Every refusal leaves nothing changed and is audited under the
verified user, or as ``unverified:`` where the credential proves nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select, update

from apikit import (
    ESTATE, FORCE, LABELS, OVERSIGHT, PASSWORD, Site, actor, console_login, grounds_json, organisation, png, register,
)
from openlfr.governance import OrgKind, Role, agreements, parse
from openlfr.governance.credentials import token_digest
from openlfr.governance.schemas import AgreementCreate
from openlfr.store.models import (
    Agreement,
    Alert,
    AlertReview,
    ApiToken,
    AuditEvent,
    Camera,
    Credential,
    Deployment,
    EnrolmentToken,
    Organisation,
    SharedImage,
    User,
    Watchlist,
    WatchlistEntry,
)

KENT = "Kent Police"


# --- helpers ---------------------------------------------------------------------------------
def state(site: Site) -> dict:
    """Everything a refused action must leave as it was."""
    with site.gov.transaction() as ctx:
        s = ctx.session

        def rows(*cols):  # noqa: ANN002, ANN202
            return sorted(tuple(r) for r in s.execute(select(*cols)).all())

        return {
            "users": rows(User.name, User.role, User.rank, User.active, User.organisation_id),
            "passwords": rows(Credential.user_id, Credential.password_hash),
            "organisations": rows(Organisation.id, Organisation.name),
            "enrolments": rows(EnrolmentToken.id, EnrolmentToken.used_at),
            "agreements": rows(Agreement.id, Agreement.status, Agreement.approved_by_id),
            "images": rows(SharedImage.id, SharedImage.deleted_at),
            "watchlists": rows(Watchlist.id), "entries": rows(WatchlistEntry.id),
            "cameras": rows(Camera.id),
            "deployments": rows(Deployment.id, Deployment.status, Deployment.authorised_by_id,
                                Deployment.police_review_required),
            "alerts": rows(Alert.id, Alert.review_outcome), "reviews": rows(AlertReview.id),
            # logging in adds tokens; a refused action must revoke none
            "revoked": sorted(s.execute(select(ApiToken.id).where(ApiToken.revoked_at.is_not(None))).scalars()),
        }


def audit_seq(site: Site) -> int:
    with site.gov.transaction() as ctx:
        return ctx.session.execute(select(AuditEvent.seq).order_by(AuditEvent.seq.desc()).limit(1)).scalar_one()


def events_after(site: Site, seq: int) -> list[AuditEvent]:
    with site.gov.transaction() as ctx:
        return list(ctx.session.execute(select(AuditEvent).where(AuditEvent.seq > seq).order_by(AuditEvent.seq))
                    .scalars())


def is_active(site: Site, name: str) -> bool:
    with site.gov.transaction() as ctx:
        return ctx.session.execute(select(User.active).where(User.name == name)).scalar_one()


@contextmanager
def browser(site: Site, name: str, password: str = PASSWORD) -> Iterator[tuple[httpx.Client, str]]:
    """A cookie session like a browser's, and its CSRF token."""
    with httpx.Client(base_url=site.url, timeout=10) as c:
        assert console_login(c, name, password).status_code == 303
        yield c, c.get("/api/auth/me").json()["csrf_token"]


def new_user(site: Site, admin: str, name: str, role: str, rank: str | None = None) -> None:
    """``admin`` adds a user to their own organisation through the API."""
    with site.client(admin) as c:
        r = c.post("/api/users", json={"name": name, "role": role, "rank": rank, "password": PASSWORD})
    assert r.status_code == 201, r.text


def agreement_body(operator: str, start_days: float, days: float = 20) -> dict:
    start = datetime.now(UTC) + timedelta(days=start_days)
    return {"operator": operator, "purpose": "locate people wanted on warrant", "lawful_basis": "DPA 2018 s.35",
            "valid_from": start.isoformat(), "valid_until": (start + timedelta(days=days)).isoformat(),
            "image_limit": 5, "allowed_categories": ["wanted_by_court"]}


@pytest.fixture(scope="module")
def kent(site: Site) -> Site:
    """A second police force with its own admin, supplier, superintendent and reviewer, and an
    agreement with the estate (its officer approved it)."""
    organisation(site.gov, KENT, OrgKind.POLICE_FORCE, "kent-admin", staff={
        "kent-sup": (Role.SUPPLIER, None), "kent-officer": (Role.AUTHORISING_OFFICER, "chief_superintendent"),
        "kent-reviewer": (Role.REVIEWER, None)})
    now = datetime.now(UTC)
    supplier, officer = actor(site.gov, "kent-sup"), actor(site.gov, "kent-officer")
    with site.gov.transaction() as ctx:
        row = agreements.create(ctx, supplier, parse(
            AgreementCreate, operator=ESTATE, purpose="Kent's own agreement", lawful_basis="DPA 2018 s.35",
            valid_from=now, valid_until=now + timedelta(days=10), image_limit=3,
            allowed_categories=["wanted_by_court"]))
        agreements.approve(ctx, officer, row.id)
        site.tokens["kent-agreement"] = str(row.id)
    for name in ("kent-admin", "kent-sup", "kent-officer", "kent-reviewer"):
        site.tokens[name] = site.login(name)
    return site


# --- the public list of organisations, and enrolment -----------------------------------------
def test_organisations_are_public_and_name_no_users(site: Site) -> None:
    with site.client() as c:
        orgs = c.get("/api/organisations").json()
        page = c.get("/transparency").text
    by_name = {o["name"]: o for o in orgs}
    assert by_name[ESTATE]["kind"] == "site_operator" and by_name[ESTATE]["host"] is True
    assert by_name[FORCE]["kind"] == "police_force" and by_name[FORCE]["host"] is False
    assert by_name[OVERSIGHT]["kind"] == "oversight_body" and by_name[FORCE]["enrolled_at"]
    assert set(by_name[FORCE]) == {"name", "kind", "host", "created_at", "enrolled_at"}
    for secret in ("estate-admin", "met-admin", "reviewer2", "superintendent", "test-setup"):
        assert secret not in str(orgs) and secret not in page
    assert FORCE in page and "runs this installation" in page


def test_enrol_through_the_api_once(site: Site) -> None:
    token = register(site.gov, "Thames Wharf Ltd", OrgKind.SITE_OPERATOR)
    before = audit_seq(site)
    with site.client() as c:
        r = c.post("/api/enrol", json={"token": token, "name": "wharf-admin", "password": PASSWORD})
        assert r.status_code == 201, r.text
        assert r.json()["role"] == "admin" and r.json()["organisation"] == "Thames Wharf Ltd"
        again = c.post("/api/enrol", json={"token": token, "name": "wharf-admin2", "password": PASSWORD})
        assert again.status_code == 403 and "already used" in again.json()["detail"]
        # a rank is for police only; a made-up token proves nothing
        guessed = c.post("/api/enrol", json={"token": "enrol-guessed", "name": "x", "password": PASSWORD})
        assert guessed.status_code == 403
    with site.bearer(site.login("wharf-admin")) as c:
        assert c.get("/api/auth/me").json()["organisation"] == "Thames Wharf Ltd"
        assert [u["name"] for u in c.get("/api/users").json()] == ["wharf-admin"]
    refused = [(e.actor, e.action) for e in events_after(site, before) if e.action == "org.enrol.refused"]
    assert ("unverified:wharf-admin2", "org.enrol.refused") in refused
    assert ("unverified:x", "org.enrol.refused") in refused


def test_enrol_through_the_console(site: Site) -> None:
    token = register(site.gov, "Greater Police", OrgKind.POLICE_FORCE)
    form = {"token": token, "name": "greater-admin", "password": PASSWORD, "rank": "chief_constable"}
    with httpx.Client(base_url=site.url, timeout=10) as c:
        assert c.post("/enrol", data=form).status_code == 403  # no pre-session CSRF token
        page = c.get("/enrol")
        assert page.status_code == 200 and 'name="token"' in page.text
        csrf = c.cookies.get("openlfr_enrol_csrf", path="/enrol")
        r = c.post("/enrol", data=form | {"csrf_token": csrf})
        assert r.status_code == 303 and r.headers["location"].startswith("/login?msg=")
        assert "greater-admin" in c.get(r.headers["location"]).text
        c.get("/enrol")
        csrf = c.cookies.get("openlfr_enrol_csrf", path="/enrol")
        r = c.post("/enrol", data=form | {"csrf_token": csrf, "name": "someone-else"}, follow_redirects=True)
        assert "already used" in r.text
        assert console_login(c, "greater-admin").headers["location"] == "/console/users"
        assert "chief constable" in c.get("/console/users").text


def test_enrolment_is_rate_limited(tmp_path) -> None:
    from apikit import build_store, make_gov, serve
    from openlfr.api import ApiSettings, create_app

    gov = make_gov(tmp_path)
    build_store(gov)
    app = create_app(gov, settings=ApiSettings(login_attempts=2, login_window_seconds=60))
    with serve(app) as url, httpx.Client(base_url=url) as c:
        codes = [c.post("/api/enrol", json={"token": f"enrol-guess-{i}", "name": "x", "password": PASSWORD})
                 .status_code for i in range(3)]
    gov.close()
    assert codes == [403, 403, 429]


# --- (a) an admin manages its own organisation's users only ---------------------------------
def test_estate_admin_cannot_touch_police_users_through_the_api(site: Site) -> None:
    before, seq = state(site), audit_seq(site)
    with site.client("estate-admin") as c:
        listed = [u["name"] for u in c.get("/api/users").json()]
        assert "admin" in listed and "reviewer" in listed and "met" not in listed and "officer" not in listed
        for path, body in [("/api/users/officer/deactivate", {"reason": "take over"}),
                           ("/api/users/met/role", {"role": "reviewer"}),
                           ("/api/users/officer/password", {"password": "a password I now know"})]:
            r = c.post(path, json=body)
            assert r.status_code == 403 and "Met Police" in r.json()["detail"], (path, r.text)
        # nor make police roles in a site operator
        for body in [{"name": "ea-supplier", "role": "supplier"},
                     {"name": "ea-officer", "role": "authorising_officer", "rank": "superintendent"}]:
            r = c.post("/api/users", json=body | {"password": PASSWORD})
            assert r.status_code == 403 and "site operator cannot have" in r.json()["detail"], r.text
        # the organisation is always the admin's own: naming another is not even accepted
        r = c.post("/api/users", json={"name": "ea-met", "role": "reviewer", "password": PASSWORD,
                                       "organisation": FORCE})
        assert r.status_code == 422
    with site.client("officer") as c:
        assert c.get("/api/auth/me").status_code == 200  # the officer's token still works
    assert state(site) == before
    refused = {(e.actor, e.action) for e in events_after(site, seq)}
    assert {("estate-admin", "user.deactivate.refused"), ("estate-admin", "user.role.refused"),
            ("estate-admin", "user.password.refused"), ("estate-admin", "user.create.refused")} <= refused
    # and the force's admin cannot touch the estate's users either
    with site.client("met-admin") as c:
        assert c.post("/api/users/reviewer/deactivate", json={"reason": "x"}).status_code == 403
    assert is_active(site, "reviewer")


def test_estate_admin_cannot_touch_police_users_through_the_console(site: Site) -> None:
    before = state(site)
    with browser(site, "estate-admin") as (c, csrf):
        page = c.get("/console/users").text
        assert 'data-user="reviewer"' in page and 'data-user="officer"' not in page
        assert 'value="supplier"' not in page and 'value="authorising_officer"' not in page
        for path, form in [("/console/users/deactivate", {"name": "officer", "reason": "take over"}),
                           ("/console/users/role", {"name": "met", "role": "reviewer"}),
                           ("/console/users/password", {"name": "officer", "password": "a password I now know"}),
                           ("/console/users", {"name": "ea-supplier", "role": "supplier", "password": PASSWORD}),
                           ("/console/users", {"name": "ea-officer", "role": "authorising_officer",
                                               "rank": "superintendent", "password": PASSWORD})]:
            assert c.post(path, data=form).status_code == 403  # without the CSRF token: refused outright
            r = c.post(path, data=form | {"csrf_token": csrf})
            assert r.status_code == 303 and "error=" in r.headers["location"], (path, r.headers["location"])
            shown = c.get(r.headers["location"]).text
            assert "Met Police" in shown or "cannot have" in shown
    assert state(site) == before


def test_admin_manages_own_users_through_the_console(site: Site) -> None:
    with browser(site, "estate-admin") as (c, csrf):
        r = c.post("/console/users", data={"name": "new-reviewer", "role": "reviewer", "password": PASSWORD,
                                           "csrf_token": csrf}, follow_redirects=True)
        assert "new-reviewer added as reviewer of Estate Ltd" in r.text
        r = c.post("/console/users/role", data={"name": "new-reviewer", "role": "auditor", "csrf_token": csrf},
                   follow_redirects=True)
        assert "now auditor" in r.text
        r = c.post("/console/users/password", data={"name": "new-reviewer", "password": "another long password",
                                                    "csrf_token": csrf}, follow_redirects=True)
        assert "reset" in r.text
    with browser(site, "new-reviewer", "another long password") as (c, _):
        assert c.get("/api/auth/me").json()["role"] == "auditor"
    with browser(site, "estate-admin") as (c, csrf):
        r = c.post("/console/users/deactivate", data={"name": "new-reviewer", "reason": "left", "csrf_token": csrf},
                   follow_redirects=True)
        assert "deactivated" in r.text
    assert not is_active(site, "new-reviewer")


def test_own_password_change_revokes_own_tokens(site: Site) -> None:
    new_user(site, "estate-admin", "changer", "reviewer")
    token = site.login("changer")
    with site.bearer(token) as c:
        assert c.post("/api/auth/password", json={"old": "wrong password!", "new": "brand new password"}) \
            .status_code == 403
        assert c.post("/api/auth/password", json={"old": PASSWORD, "new": "brand new password"}).status_code == 204
        assert c.get("/api/auth/me").status_code == 401
    assert site.login("changer", "brand new password")


# --- (b) one admin cannot complete the King's Cross chain ------------------------------------
def test_the_one_admin_chain_is_impossible(site: Site) -> None:
    """Acting only with the estate admin's credentials, every step that would let one
    organisation's administrator supply, approve, share, list, authorise and verify on its
    own is refused, and nothing changes."""
    alert_id = site.raise_alert()
    before, seq = state(site), audit_seq(site)
    ag = agreement_body(ESTATE, 400)
    today = datetime.now(UTC).date()
    steps: list[tuple[str, str, dict | None, tuple[int, ...]]] = [
        # become (or make) the police side of the chain
        ("POST", "/api/users", {"name": "ea-supplier", "role": "supplier", "password": PASSWORD}, (403,)),
        ("POST", "/api/users", {"name": "ea-officer", "role": "authorising_officer", "rank": "commissioner",
                                "password": PASSWORD}, (403,)),
        ("POST", "/api/users", {"name": "ea-met-reviewer", "role": "reviewer", "password": PASSWORD,
                                "organisation": FORCE}, (422,)),
        ("POST", "/api/users/estate-admin/role", {"role": "supplier"}, (403,)),
        ("POST", "/api/users/estate-admin/role", {"role": "authorising_officer", "rank": "superintendent"}, (403,)),
        ("POST", "/api/users/officer/password", {"password": "the estate knows this one"}, (403,)),
        ("POST", "/api/users/met/password", {"password": "the estate knows this one"}, (403,)),
        ("POST", "/api/users/officer/role", {"role": "reviewer"}, (403,)),
        ("POST", "/api/enrol", {"token": "enrol-guessed-token", "name": "ea-police", "password": PASSWORD}, (403,)),
        # make and approve an agreement, share images
        ("POST", "/api/agreements", ag, (403,)),
        ("POST", f"/api/agreements/{site.agreement_id}/approve", {}, (403,)),
        ("POST", "/api/images", None, (403,)),
        # build the watchlist and the deployment, authorise and start it
        ("POST", "/api/watchlists", {"name": "ea-list", "criteria": "anyone", "size_cap": 5}, (403,)),
        ("POST", "/api/watchlists/1/entries", {"shared_image_id": 1, "label": "x", "reason": "x",
                                               "review_date": str(today + timedelta(days=3))}, (403,)),
        ("POST", "/api/deployments", {"purpose": "x", "watchlist_id": 1, "camera_ids": [site.camera_id],
                                      "start": datetime.now(UTC).isoformat(),
                                      "end": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
                                      "threshold": 0.5, **grounds_json()}, (403,)),
        ("POST", f"/api/deployments/{site.deployment_id}/authorise", {"note": "ok"}, (403,)),
        ("POST", f"/api/deployments/{site.deployment_id}/start", {}, (403,)),
        # verify an alert, read the force's records
        ("POST", f"/api/alerts/{alert_id}/review", {"decision": "confirm", "note": "it is him"}, (403,)),
        ("GET", f"/api/alerts/{alert_id}", None, (403,)),
        ("GET", "/api/force", None, (403,)),
        ("GET", "/api/ledger", None, (403,)),
    ]
    with site.client("estate-admin") as c:
        for method, path, body, expected in steps:
            if path == "/api/images":
                r = c.post(path, data={"agreement_id": str(site.agreement_id), "category": "wanted_by_court",
                                       "warrant_ref": "WA-2029-00123", "reason": "x", "subject_ref": "S-EA-1",
                                       "image_date": str(today)},
                           files={"file": ("a.png", png(4242), "image/png")})
            elif method == "GET":
                r = c.get(path)
            else:
                r = c.post(path, json=body)
            assert r.status_code in expected, f"{method} {path}: {r.status_code} {r.text}"
    assert state(site) == before
    events = events_after(site, seq)
    assert events and all(e.action.endswith(".refused") for e in events), [(e.actor, e.action) for e in events]
    # every refusal is on the estate admin's own verified name (the guessed enrolment: unverified)
    assert {e.actor for e in events} == {"estate-admin", "unverified:ea-police"}


def test_the_one_admin_chain_is_impossible_in_the_console(site: Site) -> None:
    """The same chain through the console, as a person at the estate would try it: its user
    admin makes the police users, its operator admin approves, shares and authorises its own
    deployment. Every police step is refused; all it can make is a request nobody authorised."""
    before, seq = state(site), audit_seq(site)
    today = datetime.now(UTC)
    with browser(site, "estate-admin") as (c, csrf):
        for form in ({"name": "ea-supplier", "role": "supplier", "password": PASSWORD},
                     {"name": "ea-officer", "role": "authorising_officer", "rank": "commissioner",
                      "password": PASSWORD}):
            r = c.post("/console/users", data=form | {"csrf_token": csrf})
            assert r.status_code == 303 and "error=" in r.headers["location"], r.headers
    with browser(site, "admin") as (c, csrf):
        assert c.post(f"/console/agreements/{site.agreement_id}/approve", data={"csrf_token": csrf}).status_code == 403
        r = c.post("/console/images", data={"csrf_token": csrf, "agreement_id": str(site.agreement_id),
                                            "category": "wanted_by_court", "warrant_ref": "WA-2029-00123",
                                            "reason": "x", "subject_ref": "S-EA-1", "image_date": str(today.date())},
                   files={"file": ("a.png", png(4343), "image/png")})
        assert r.status_code == 403
        with site.gov.transaction() as ctx:
            wl = ctx.session.execute(select(Watchlist.id)).scalars().first()
        r = c.post("/console/deployments", data={
            "csrf_token": csrf, "purpose": "our own deployment", "watchlist_id": str(wl),
            "camera_ids": str(site.camera_id), "start": (today + timedelta(days=30)).isoformat(timespec="minutes"),
            "end": (today + timedelta(days=31)).isoformat(timespec="minutes"), "threshold": "0.5",
            **grounds_json()})
        assert r.status_code == 303 and "msg=" in r.headers["location"], r.headers  # a request is all it can make
        with site.gov.transaction() as ctx:
            mine = ctx.session.execute(select(Deployment.id).order_by(Deployment.id.desc())).scalars().first()
        for verb in ("authorise", "start"):  # refused by the services: an error shown in the page
            r = c.post(f"/console/deployments/{mine}/{verb}", data={"csrf_token": csrf})
            assert r.status_code == 303 and "error=" in r.headers["location"], (verb, r.headers)
    after = state(site)
    new_deps = [d for d in after["deployments"] if d not in before["deployments"]]
    assert new_deps == [(mine, "requested", None, False)]
    assert {k: v for k, v in after.items() if k != "deployments"} == {k: v for k, v in before.items()
                                                                      if k != "deployments"}
    refused = [e for e in events_after(site, seq) if e.action.endswith(".refused")]
    assert {e.actor for e in refused} == {"estate-admin", "admin"} and len(refused) >= 5
    with site.client("admin") as c:  # leave the shared site as it was
        assert c.post(f"/api/deployments/{mine}/end", json={"note": "test over"}).status_code == 200


# --- (c) rank ------------------------------------------------------------------------------
def test_an_officer_below_superintendent_cannot_approve(site: Site) -> None:
    register(site.gov, "Docklands Ltd", OrgKind.SITE_OPERATOR)
    new_user(site, "met-admin", "inspector-1", "authorising_officer", rank="inspector")
    inspector = site.login("inspector-1")
    with site.client("met") as c:
        ag = c.post("/api/agreements", json=agreement_body("Docklands Ltd", 1)).json()
    assert ag["status"] == "draft" and ag["force"] == FORCE and ag["operator"] == "Docklands Ltd"
    before = state(site)
    with site.bearer(inspector) as c:
        r = c.post(f"/api/agreements/{ag['id']}/approve")
        assert r.status_code == 403 and "superintendent" in r.json()["detail"]
        r = c.post(f"/api/deployments/{site.deployment_id}/authorise", json={"note": "ok"})
        assert r.status_code == 403 and "superintendent" in r.json()["detail"]
    assert state(site) == before
    with site.client("officer") as c:
        assert c.post(f"/api/agreements/{ag['id']}/approve").json()["status"] == "active"


# --- (d) the force's central view --------------------------------------------------------------
def test_force_view_is_force_wide_and_holds_no_other_force(kent: Site) -> None:
    site = kent
    start = audit_seq(site)
    register(site.gov, "Riverside Ltd", OrgKind.SITE_OPERATOR)
    new_user(site, "met-admin", "met-sup2", "supplier")
    with site.bearer(site.login("met-sup2")) as c:
        other = c.post("/api/agreements", json=agreement_body("Riverside Ltd", 2)).json()
    kent_ag = int(site.tokens["kent-agreement"])
    site.raise_alert()
    with site.client("met") as c:
        view = c.get("/api/force").json()
        assert c.get("/api/force", params={"force": KENT}).status_code == 403
        ledger = c.get("/api/ledger").json()
    ids = {a["id"] for a in view["agreements"]}
    assert view["force"] == FORCE and other["id"] in ids and site.agreement_id in ids and kent_ag not in ids
    assert {a["force"] for a in view["agreements"]} == {FORCE}
    image = next(i for i in view["images"] if i["agreement_id"] == site.agreement_id)
    assert {u["kind"] for u in image["uses"]} >= {"watchlist", "deployment", "alert"}
    assert site.deployment_id in {d["id"] for d in view["deployments"]} and view["alerts"]
    assert all("template" not in k and "blob" not in k for i in view["images"] for k in i)
    assert {r["image_id"] for r in ledger} == {i["image_id"] for i in view["images"]}
    with site.client("kent-sup") as c:
        kent_view = c.get("/api/force").json()
    assert [a["id"] for a in kent_view["agreements"]] == [kent_ag] and kent_view["images"] == []
    # the oversight body's auditor names the force; the officer sees the same as the supplier
    with site.client("dpo") as c:
        assert c.get("/api/force").status_code == 422
        assert {a["id"] for a in c.get("/api/force", params={"force": FORCE}).json()["agreements"]} == ids
        assert [a["id"] for a in c.get("/api/force", params={"force": KENT}).json()["agreements"]] == [kent_ag]
    with site.client("officer") as c:
        assert {a["id"] for a in c.get("/api/force").json()["agreements"]} == ids
    # the console page, linked from the supplier's page
    with browser(site, "met") as (c, _):
        assert 'href="/console/force"' in c.get("/console/supplier").text
        page = c.get("/console/force").text
    assert f'data-agreement="{other["id"]}"' in page and f'data-agreement="{kent_ag}"' not in page
    assert "Kent's own agreement" not in page and "Riverside Ltd" in page
    # each view is in the audit log, at the API's door and the console's (one audited in a read
    # that is then discarded would be missing here)
    seen = [(e.actor, e.action) for e in events_after(site, start)]
    # force.view: /api/force and /console/force; ledger.view: those two (the central view holds the
    # ledger), /api/ledger and /console/supplier
    assert seen.count(("met", "force.view")) == 2 and seen.count(("met", "ledger.view")) == 4, seen[-12:]


# --- (e) two reviewers, and police review ------------------------------------------------------
def test_a_single_reviewer_cannot_verify_in_the_console(site: Site) -> None:
    alert_id = site.raise_alert()
    with browser(site, "reviewer") as (c, csrf):
        form = {"decision": "confirm", "note": "same face", "csrf_token": csrf}
        r = c.post(f"/console/alerts/{alert_id}/review", data=form, follow_redirects=True)
        assert "confirmed once" in r.text
        r = c.post(f"/console/alerts/{alert_id}/review", data=form, follow_redirects=True)
        assert "different reviewer" in r.text and "confirmed once" in r.text
    with site.gov.transaction() as ctx:
        assert ctx.session.get(Alert, alert_id).review_outcome is None


@contextmanager
def police_review(site: Site) -> Iterator[None]:
    with site.gov.transaction() as ctx:
        ctx.session.get(Deployment, site.deployment_id).police_review_required = True
    try:
        yield
    finally:  # the site is shared by the session's tests
        with site.gov.transaction() as ctx:
            ctx.session.get(Deployment, site.deployment_id).police_review_required = False


def test_police_review_required_refuses_the_estate_reviewers(site: Site) -> None:
    with police_review(site):
        alert_id = site.raise_alert()
        before = state(site)
        with site.client("reviewer") as c:
            r = c.post(f"/api/alerts/{alert_id}/review", json={"decision": "confirm"})
            assert r.status_code == 403 and "police reviewers" in r.json()["detail"]
        with browser(site, "reviewer2") as (c, csrf):
            assert "only police reviewers may confirm" in c.get(f"/console/alerts/{alert_id}").text
            r = c.post(f"/console/alerts/{alert_id}/review", data={"decision": "confirm", "csrf_token": csrf},
                       follow_redirects=True)
            assert "police reviewers" in r.text and "pending" in r.text
        assert state(site) == before
        with site.client("met-reviewer") as c:  # the authorising force's reviewer may
            r = c.post(f"/api/alerts/{alert_id}/review", json={"decision": "confirm", "note": "same person"})
        assert r.status_code == 200 and r.json()["status"] == "confirmed_once"


def test_officer_sees_kind_police_review_force_and_operator(site: Site) -> None:
    register(site.gov, "Canal Ltd", OrgKind.SITE_OPERATOR)
    with site.client("met") as c:
        ag = c.post("/api/agreements", json=agreement_body("Canal Ltd", 3)).json()
    start = datetime.now(UTC) + timedelta(days=5)
    with site.client("admin") as c:
        cam = c.post("/api/cameras", json={"name": "retro-cam", "location": "archive"}).json()
        dep = c.post("/api/deployments", json={
            "kind": "retrospective", "purpose": "search last week's footage", "watchlist_id": 1,
            "camera_ids": [cam["id"]], "start": start.isoformat(), "end": (start + timedelta(hours=2)).isoformat(),
            "threshold": 0.6, **grounds_json(), "police_review_required": True})
        assert dep.status_code == 201, dep.text
        dep = dep.json()
    assert dep["kind"] == "retrospective" and dep["police_review_required"] and dep["organisation"] == ESTATE
    with browser(site, "officer") as (c, _):
        page = c.get("/console/officer").text
    row = page[page.index(f'data-deployment="{dep["id"]}"'):]
    row = row[:row.index("</tr>")]
    assert "retrospective" in row and '<td class="police-review">yes</td>' in row and "authorise" in row
    agreement_row = page[page.index(f'data-agreement="{ag["id"]}"'):]
    assert agreement_row.index(FORCE) < agreement_row.index("Canal Ltd") < agreement_row.index("</tr>")


# --- (g) forged, expired and other organisations' tokens; other organisations' ids ------------
def test_forged_and_expired_tokens_are_refused_and_audited(site: Site) -> None:
    before, seq = state(site), audit_seq(site)
    with site.bearer("forged-token-0123456789") as c:
        r = c.post("/api/watchlists", json={"name": "forged", "criteria": "x", "size_cap": 2})
        assert r.status_code == 401
    with httpx.Client(base_url=site.url, cookies={"openlfr_session": "forged-cookie"}) as c:
        r = c.get("/console/admin")
        assert r.status_code == 303 and r.headers["location"] == "/login"
    token = site.login("dpo")
    with site.gov.transaction() as ctx:
        ctx.session.execute(update(ApiToken).where(ApiToken.token_sha256 == token_digest(token))
                            .values(expires_at=ctx.now() - timedelta(seconds=1)))
    with site.bearer(token) as c:
        assert c.post("/api/audit/verify").status_code == 401
    # a console session token is not accepted as a bearer token (nor the other way round)
    with httpx.Client(base_url=site.url, timeout=10) as c:
        console_login(c, "dpo")
        session = c.cookies.get("openlfr_session")
    with site.bearer(session) as c:
        assert c.get("/api/auth/me").status_code == 401
    with httpx.Client(base_url=site.url, cookies={"openlfr_session": site.tokens["dpo"]}) as c:
        assert c.get("/api/auth/me").status_code == 401
    # a command-line login's token works as a bearer token
    with site.bearer(actor(site.gov, "dpo").token) as c:
        assert c.get("/api/auth/me").json()["name"] == "dpo"
    assert state(site) == before
    refused = [(e.actor, e.action, e.details) for e in events_after(site, seq) if e.action == "auth.refused"]
    actors = [a for a, _, _ in refused]
    assert actors.count("unverified:-") == 2 and actors.count("unverified:dpo") == 3
    assert any("expired" in d for a, _, d in refused if a == "unverified:dpo")
    assert not any(a == "dpo" for a, act, _ in refused)


def test_other_organisations_tokens_and_ids_are_refused(kent: Site) -> None:
    site = kent
    alert_id = site.raise_alert()
    kent_ag = int(site.tokens["kent-agreement"])
    with site.client("met") as c:
        draft = c.post("/api/agreements", json=agreement_body(ESTATE, 600)).json()
    before, seq = state(site), audit_seq(site)
    with site.client("kent-reviewer") as c:
        for path in (f"/api/alerts/{alert_id}", f"/api/alerts/{alert_id}/crop",
                     f"/api/alerts/{alert_id}/watchlist-image"):
            assert c.get(path).status_code == 403, path
        assert c.post(f"/api/alerts/{alert_id}/review", json={"decision": "dismiss"}).status_code == 403
        assert alert_id not in {a["id"] for a in c.get("/api/alerts").json()}
        assert c.get("/api/alerts/999999").status_code == 404
    with site.client("kent-sup") as c:
        r = c.post("/api/images", data={"agreement_id": str(site.agreement_id), "category": "wanted_by_court",
                                        "warrant_ref": "WA-2029-00123", "reason": "x", "subject_ref": "S-KENT-1",
                                        "image_date": "2026-01-01"},
                   files={"file": ("k.png", png(5151), "image/png")})
        assert r.status_code == 403
        assert c.post(f"/api/agreements/{site.agreement_id}/suspend", json={"reason": "x"}).status_code == 403
    with site.client("kent-officer") as c:
        assert c.post(f"/api/agreements/{draft['id']}/approve").status_code == 403
        assert c.post(f"/api/deployments/{site.deployment_id}/end", json={"note": "x"}).status_code == 403
    with site.client("kent-admin") as c:
        assert c.post("/api/users/reviewer/deactivate", json={"reason": "x"}).status_code == 403
        assert c.post("/api/users/met/password", json={"password": "kent knows this"}).status_code == 403
    with site.client("met") as c:
        assert c.post(f"/api/agreements/{kent_ag}/suspend", json={"reason": "x"}).status_code == 403
    assert state(site) == before
    refused = {(e.actor, e.action) for e in events_after(site, seq)}
    assert {("kent-reviewer", "alert.view.refused"), ("kent-reviewer", "alert.view_crop.refused"),
            ("kent-reviewer", "alert.dismiss.refused"), ("kent-sup", "image.share.refused"),
            ("kent-officer", "agreement.approve.refused"), ("kent-officer", "deployment.end.refused"),
            ("kent-admin", "user.deactivate.refused"), ("kent-admin", "user.password.refused"),
            ("met", "agreement.suspend.refused")} <= refused


def test_route_refusals_are_audited_under_the_verified_user(site: Site) -> None:
    seq = audit_seq(site)
    with site.client("reviewer") as c:
        assert c.post("/api/watchlists", json={"name": "r", "criteria": "x", "size_cap": 1}).status_code == 403
    events = [(e.actor, e.action, e.object_id) for e in events_after(site, seq)]
    assert ("reviewer", "http.refused", "POST /api/watchlists") in events


def test_a_reviewer_of_another_organisation_sees_none_of_its_alerts(kent: Site) -> None:
    site = kent
    got: list[str] = []
    with site.client("kent-reviewer") as c:
        with c.stream("GET", "/api/alerts/stream", timeout=httpx.Timeout(10, read=2.5)) as r:
            lines = r.iter_lines()
            assert next(lines) == ": connected"
            announced, stored = site.raise_alert(), site.raise_alert(announce=False)  # bus and store
            try:
                got += list(lines)
            except httpx.ReadTimeout:  # nothing came (keep-alives are 15 s apart)
                pass
        assert not any(line.startswith("event:") for line in got), got
        assert not {announced, stored} & {a["id"] for a in c.get("/api/alerts").json()}
    with browser(site, "kent-reviewer") as (c, _):
        assert f'data-alert="{announced}"' not in c.get("/console/reviewer").text
        assert c.get(f"/console/alerts/{announced}").status_code == 403
    # the estate's reviewers and the reviewers of the force that authorised the deployment may
    for name in ("reviewer", "met-reviewer"):
        with site.client(name) as c:
            assert c.get(f"/api/alerts/{stored}").status_code == 200
            assert announced in {a["id"] for a in c.get("/api/alerts").json()}


def test_the_officer_sees_every_fact_they_authorise(site: Site) -> None:
    """The deployment as the API and the console show it carries what the officer signs off:
    cameras, watchlist (size, categories, criteria), DPIA, necessity, threshold and its basis,
    confirmations; agreements awaiting approval show categories, under-18 and the supplier."""
    with site.client("officer") as c:
        (dep,) = [d for d in c.get("/api/deployments").json() if d["id"] == site.deployment_id]
    assert dep["necessity"].startswith("Serious violent offences") and dep["dpia_ref"]
    assert dep["legal_basis"] == "ukgdpr_a6_1f_a9_2g_sch1_para10" and "UK GDPR" in dep["legal_basis_words"]
    assert dep["dpia_date"] == dep["eia_date"] == "2024-06-03" and dep["eia_ref"] and dep["proportionality"]
    # the composition the officer saw, frozen at authorisation: counts and dates, no labels
    comp = dep["composition"]
    assert comp["entries"] == 2 and comp["under_18"] == 0 and comp["oldest_image"] and comp["categories"]
    assert comp["review_due"] == [] and not set(LABELS) & set(str(comp).split("'"))
    assert [cam["name"] for cam in dep["cameras"]] == ["north-gate"] and dep["cameras"][0]["location"]
    wl = dep["watchlist"]
    assert wl["name"] == "wanted" and wl["criteria"] == "warrant" and wl["entries"] == 2
    assert wl["categories"] == {"wanted_by_court": 2}
    assert dep["threshold_basis"] == "set by hand (no calibration)" and dep["confirmations_required"] == 2
    with site.client("met") as c:
        r = c.post("/api/agreements",
                   json=agreement_body(ESTATE, 900) | {"allowed_categories": ["wanted_by_court", "missing_at_risk"]})
        assert r.status_code == 201, r.text
        draft = r.json()["id"]
    with browser(site, "officer") as (c, _):
        page = c.get("/console/officer").text
    assert f'data-agreement="{draft}"' in page, page[page.find("Agreements awaiting"):][:1500]
    row = page[page.index(f'data-agreement="{draft}"'):]
    row = row[:row.index("</tr>")]
    # the categories, under-18, the supplier
    assert "wanted_by_court, missing_at_risk" in row and ">no<" in row and ">met<" in row
    with browser(site, "admin") as (c, _):
        page = c.get("/console/admin").text
    assert "What is authorised" in page and dep["necessity"] in page and "north-gate (" in page
    with site.client("met") as c:  # the shared site: leave no draft behind
        assert c.post(f"/api/agreements/{draft}/end", json={"reason": "test over"}).status_code == 200
