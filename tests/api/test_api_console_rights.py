"""The console's pages for people's requests (the data protection officer's) and the public
/transparency/requests page, through real HTTP with a cookie session and its CSRF token.

Every form calls openlfr.rights.requests: a wrong role is refused at the route (403, said in
the page) and the service's finer rules (another organisation's DPO, a photo with no face, an
answer before the search...) come back as one line in the page, with nothing stored and the
refusal audited. A request is walked through open -> verify -> photo -> search -> verdict ->
decide on a store whose faces are real (LFW), so the search by face really finds them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from apikit import (
    FACES, KEY, PASSWORD, Site, actor, build_store, console_login, png, probe_crop, serve,
)
from govkit import as_image
from openlfr.governance import Governance, Role, users
from openlfr.governance.schemas import UserCreate
from openlfr.rights import requests as rq
from openlfr.rights.clock import days_left, due_date
from openlfr.store.models import AuditEvent, RightsRequest

DPO, FORCE_DPO, FORCE_AUDITOR = "rights-dpo", "rights-met-dpo", "rights-met-auditor"
FORM = {"kind": "access", "name": "Jo Bloggs", "contact": "jo@example.org",
        "details": "I walked past the north gate on Tuesday morning"}


@contextmanager
def browser(site: Site, name: str) -> Iterator[tuple[httpx.Client, str]]:
    """A cookie session like a browser's (redirects not followed), and its CSRF token."""
    with httpx.Client(base_url=site.url, timeout=30) as c:
        assert console_login(c, name, PASSWORD).status_code == 303
        yield c, c.get("/api/auth/me").json()["csrf_token"]


def _make_dpos(gov: Governance) -> None:
    """A DPO at the estate and one at the force, each made by its own organisation's admin."""
    for admin, name in (("estate-admin", DPO), ("met-admin", FORCE_DPO)):
        with gov.transaction() as ctx:
            users.create_user(ctx, actor(gov, admin), UserCreate(name=name, role=Role.DPO), PASSWORD)


@pytest.fixture(scope="module")
def dpos(site: Site) -> Site:
    """The DPOs, and an auditor of the police force (not an oversight body)."""
    _make_dpos(site.gov)
    with site.gov.transaction() as ctx:
        users.create_user(ctx, actor(site.gov, "met-admin"), UserCreate(name=FORCE_AUDITOR, role=Role.AUDITOR),
                          PASSWORD)
    return site


def _count(site: Site, model: type = RightsRequest) -> int:
    with site.gov.transaction() as ctx:
        return ctx.session.execute(select(func.count()).select_from(model)).scalar_one()


def _refusals(site: Site, action: str) -> int:
    with site.gov.transaction() as ctx:
        return ctx.session.execute(select(func.count()).select_from(AuditEvent)
                                   .where(AuditEvent.action == f"{action}.refused")).scalar_one()


def _follow(c: httpx.Client, r: httpx.Response) -> tuple[str, str]:
    """(where a form's redirect went, the page there)."""
    assert r.status_code == 303, (r.status_code, r.text[:500])
    where = r.headers["location"]
    return where, c.get(where).text


def _open(c: httpx.Client, csrf: str, **over: str) -> int:
    where, page = _follow(c, c.post("/console/requests", data=FORM | over | {"csrf_token": csrf}))
    m = re.match(r"/console/requests/(\d+)\?", where)
    assert m, (where, page[:2000])
    return int(m.group(1))


# --- who may use the pages ---------------------------------------------------------------------
def test_wrong_roles_are_refused_and_nothing_is_stored(dpos: Site) -> None:
    site = dpos
    before = _count(site)
    with httpx.Client(base_url=site.url, timeout=10) as anon:  # not logged in: to the login page
        assert anon.get("/console/requests", headers={"accept": "text/html"}).headers["location"] == "/login"
    with browser(site, "reviewer") as (c, csrf):
        r = c.get("/console/requests")
        assert r.status_code == 403 and "this needs role auditor, dpo" in r.text
        r = c.post("/console/requests", data=FORM | {"csrf_token": csrf})
        assert r.status_code == 403 and "needs role dpo" in r.text
    with browser(site, "dpo") as (c, csrf):  # the oversight body's auditor ("dpo" is its name) reads...
        assert c.get("/console/requests").status_code == 200
        r = c.post("/console/requests", data=FORM | {"csrf_token": csrf})  # ...but records nothing
        assert r.status_code == 403 and "needs role dpo" in r.text
    refused = _refusals(site, "request.list")
    with browser(site, FORCE_AUDITOR) as (c, _):  # a force's own auditor is no oversight body
        r = c.get("/console/requests")
        assert r.status_code == 403 and "oversight bodies&#39; auditors" in r.text
    assert _refusals(site, "request.list") == refused + 1
    with browser(site, DPO) as (c, csrf):  # the DPO, without the form's CSRF token
        assert c.post("/console/requests", data=FORM).status_code == 403
        page = c.get("/console", follow_redirects=True).text  # the console takes a DPO to the requests
        assert "People's requests" in page and 'href="/console/requests">Requests</a>' in page
    assert _count(site) == before


def test_another_organisations_dpo_cannot_see_or_act_on_a_request(dpos: Site) -> None:
    site = dpos
    with browser(site, DPO) as (c, csrf):
        request_id = _open(c, csrf)
    before = _refusals(site, "request.view"), _refusals(site, "request.verify")
    with browser(site, FORCE_DPO) as (c, csrf):
        r = c.get(f"/console/requests/{request_id}")
        assert r.status_code == 403 and 'role="alert"' in r.text and FORM["name"] not in r.text
        assert f'data-request="{request_id}"' not in c.get("/console/requests?show=all").text
        where, page = _follow(c, c.post(f"/console/requests/{request_id}/verify",
                                        data={"evidence_ref": "passport seen", "csrf_token": csrf}))
        assert where.startswith(f"/console/requests/{request_id}?") and 'role="alert"' in page
    # each look is refused and audited (the page, and the page the refused form came back to)
    assert (_refusals(site, "request.view"), _refusals(site, "request.verify")) == (before[0] + 2, before[1] + 1)
    with site.gov.transaction() as ctx:
        assert ctx.session.get(RightsRequest, request_id).identity_verified_at is None


# --- bad input: one line in the page, nothing stored, the refusal audited --------------------------
def test_bad_input_is_said_in_the_page_and_refused(dpos: Site) -> None:
    site = dpos
    with browser(site, DPO) as (c, csrf):
        before, refused = _count(site), _refusals(site, "request.open")
        where, page = _follow(c, c.post("/console/requests", data=FORM | {"name": " ", "csrf_token": csrf}))
        assert where.startswith("/console/requests?") and "the requester&#39;s name is empty" in page
        tomorrow = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
        _, page = _follow(c, c.post("/console/requests", data=FORM | {"received": tomorrow, "csrf_token": csrf}))
        assert "cannot be received in the future" in page
        _, page = _follow(c, c.post("/console/requests", data=FORM | {"received": "last week", "csrf_token": csrf}))
        assert "is not a date" in page
        _, page = _follow(c, c.post("/console/requests", data=FORM | {"kind": "gossip", "csrf_token": csrf}))
        assert "unknown request kind &#39;gossip&#39;" in page
        assert _count(site) == before and _refusals(site, "request.open") == refused + 4

        request_id = _open(c, csrf)
        at = f"/console/requests/{request_id}"
        r = c.get("/console/requests/987654")
        assert r.status_code == 404 and "request 987654" in r.text
        # a photo with no face: refused, no photo held
        refused = _refusals(site, "request.photo")
        _, page = _follow(c, c.post(f"{at}/photo", data={"csrf_token": csrf},
                                    files={"file": ("blank.png", as_image(b"noface-rights"), "image/png")}))
        assert "the requester&#39;s photo" in page and "no face" in page and "none held" in page
        assert _refusals(site, "request.photo") == refused + 1
        _, page = _follow(c, c.post(f"{at}/photo", data={"csrf_token": csrf},
                                    files={"file": ("notes.txt", b"just text", "text/plain")}))
        assert "only JPEG or PNG images are accepted" in page
        # the steps in order: no search before identity and photo, no answer before the search
        _, page = _follow(c, c.post(f"{at}/search", data={"csrf_token": csrf}))
        assert "verify the requester&#39;s identity before searching" in page
        _, page = _follow(c, c.post(f"{at}/decide", data={"decision": "nothing_held", "csrf_token": csrf}))
        assert "identity is not verified" in page
        _, page = _follow(c, c.post(f"{at}/decide", data={"decision": "refused", "csrf_token": csrf}))
        assert "needs at least one reason" in page
        _, page = _follow(c, c.post(f"{at}/extend", data={"reason": "", "csrf_token": csrf}))
        assert "the reason for the extension is empty" in page
        _, page = _follow(c, c.post(f"{at}/verify", data={"evidence_ref": "data:image/png;base64,iVBORw0KGgo",
                                                          "csrf_token": csrf}))
        assert "never a scan" in page
        _, page = _follow(c, c.post("/console/findings/987654/verdict",
                                    data={"verdict": "requester", "request_id": str(request_id), "csrf_token": csrf}))
        assert "finding 987654" in page
    with site.gov.transaction() as ctx:
        row = ctx.session.get(RightsRequest, request_id)
        assert (row.status, row.photo_blob, row.identity_verified_at, row.decided_at, row.extended_at) == (
            "received", None, None, None, None)


# --- the queue: clocks, overdue in red, open or all, pages -----------------------------------------
def test_queue_shows_the_clock_and_marks_overdue_requests(dpos: Site) -> None:
    site = dpos
    received = (datetime.now(UTC) - timedelta(days=40)).date()
    with browser(site, DPO) as (c, csrf):
        late = _open(c, csrf, received=received.isoformat(), kind="objection")
        fresh = _open(c, csrf, kind="complaint")
        page = c.get("/console/requests").text
        row = re.search(rf'<tr data-request="{late}" class="overdue">(.*?)</tr>', page, re.S)
        assert row, page[:3000]
        due = due_date(datetime.combine(received, datetime.min.time(), UTC), regime="uk_gdpr")
        late_by = -days_left(due, datetime.now(UTC))
        assert late_by > 0 and f"overdue by {late_by} days" in row.group(1) and 'class="refused"' in row.group(1)
        assert due.strftime("%Y-%m-%d") in row.group(1) and "objection" in row.group(1)
        fresh_row = re.search(rf'<tr data-request="{fresh}">(.*?)</tr>', page, re.S).group(1)
        left = days_left(due_date(datetime.now(UTC), regime="uk_gdpr"), datetime.now(UTC))
        assert f'<td class="days-left">{left}</td>' in fresh_row
        # soonest due first
        assert page.index(f'data-request="{late}"') < page.index(f'data-request="{fresh}"')
        # a bad filter is said in the page; the default (open requests) is shown
        page = c.get("/console/requests?show=everything&page=0").text
        assert 'role="alert"' in page and "show" in page and f'data-request="{late}"' in page
        # decided requests leave the open list and stay in "all"
        _follow(c, c.post(f"/console/requests/{fresh}/decide", data={
            "decision": "refused", "reasons": ["manifestly_unfounded"], "note": "a test", "csrf_token": csrf}))
        assert f'data-request="{fresh}"' not in c.get("/console/requests").text
        page = c.get("/console/requests?show=all").text
        assert re.search(rf'data-request="{fresh}">.*?answered in time.*?refused', page, re.S)


def test_extension_moves_the_clock_where_the_law_allows(dpos: Site) -> None:
    site = dpos
    with browser(site, DPO) as (c, csrf):  # the estate answers under UK GDPR: two more months, once
        request_id = _open(c, csrf, kind="erasure")
        at = f"/console/requests/{request_id}"
        _, page = _follow(c, c.post(f"{at}/extend", data={"reason": "many records to check", "csrf_token": csrf}))
        with site.gov.transaction() as ctx:
            row = ctx.session.get(RightsRequest, request_id)
            received, due = row.received_at, row.due_at
        assert due == due_date(received, extended=True, regime="uk_gdpr") > due_date(received, regime="uk_gdpr")
        assert f"extended, now due {due:%Y-%m-%d}" in page and f"{due:%Y-%m-%d %H:%M} (extended)" in page
        _, page = _follow(c, c.post(f"{at}/extend", data={"reason": "again", "csrf_token": csrf}))
        assert "already extended" in page
    with browser(site, FORCE_DPO) as (c, csrf):  # a police force (DPA 2018 Part 3): no extension
        request_id = _open(c, csrf)
        _, page = _follow(c, c.post(f"/console/requests/{request_id}/extend",
                                    data={"reason": "many records", "csrf_token": csrf}))
        assert "no extension" in page and "DPA 2018 Part 3" in page


def test_queue_pages(dpos: Site) -> None:
    site = dpos
    with browser(site, DPO) as (c, csrf):
        total = len(c.get("/console/requests?show=all").text.split("<tr data-request=")) - 1
        for _ in range(max(0, 26 - total)):
            _open(c, csrf, kind="complaint")
        with site.gov.transaction() as ctx:
            n = len(rq.queue(ctx, actor(site.gov, DPO)))
        first = c.get("/console/requests?show=all").text
        assert first.count("<tr data-request=") == 25 and f"1–25 of {n}" in first
        assert 'href="?show=all&amp;page=2"' in first
        second = c.get("/console/requests?show=all&page=2").text
        assert second.count("<tr data-request=") == min(25, n - 25)


# --- a request walked through on a store with real faces -----------------------------------------------
@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """Its own server over a store whose shared images have real templates (LFW: Tony Blair and
    Colin Powell on the estate's watchlist), an alert whose crop is another photo of Tony Blair,
    and a DPO at the estate and at the force."""
    if FACES is None:
        pytest.skip("the LFW photos are not in OPENLFR_DATA: the search by face needs real faces")
    from openlfr.api import ApiSettings, create_app
    from openlfr.face.analyzer import enrolment_template

    root = tmp_path_factory.mktemp("rights-console")
    gov = Governance(f"sqlite:///{root / 'openlfr.db'}", blob_root=root / "blobs", key=KEY,
                     template_fn=enrolment_template)
    dep, cam, entries, ag, snap = build_store(gov)
    _make_dpos(gov)
    app = create_app(gov, settings=ApiSettings(max_upload_bytes=200_000, login_attempts=1000))
    with serve(app) as url:
        yield Site(url, gov, app, dep, cam, entries, ag, snap)
    gov.close()


def test_a_request_walked_through_the_console(real: Site) -> None:
    site = real
    alert = site.raise_alert(0, announce=False)  # its crop: the centre of another photo of Tony Blair
    with browser(site, DPO) as (c, csrf):
        request_id = _open(c, csrf, name="Tony Blair", details="passed the north gate")
        at = f"/console/requests/{request_id}"
        page = c.get(at).text
        assert "Tony Blair" in page and "not yet verified" in page and "not searched yet" in page

        _, page = _follow(c, c.post(f"{at}/verify", data={"evidence_ref": "passport seen in person by A. Clerk",
                                                          "csrf_token": csrf}))
        assert "identity verified" in page and 'id="identity">verified by staff' in page
        # the requester's photo: another photo of him (too large for the console's ceiling? no: 250 px)
        _, page = _follow(c, c.post(f"{at}/photo", data={"csrf_token": csrf},
                                    files={"file": ("me.jpg", FACES[0], "image/jpeg")}))
        assert "photo held (sealed)" in page and 'id="photo">held, sealed' in page

        _, page = _follow(c, c.post(f"{at}/search", data={"csrf_token": csrf}))
        assert "the search found" in page
        findings = dict(re.findall(r'data-finding="(\d+)" data-kind="(\w+)" data-object="\d+"', page))
        kinds = sorted(findings.values())
        # his alert by its crop, and (the listed photo is his own) the watchlist entry and shared image
        assert "alert" in kinds, page
        alert_row = re.search(rf'data-kind="alert" data-object="{alert}">(.*?)</tr>', page, re.S).group(1)
        assert f"alert {alert}: camera north-gate" in alert_row and "not reviewed" in alert_row
        # the DPO judges each finding by eye: the requester's photo beside the face of each record
        finding_of_alert = next(f for f, k in findings.items() if k == "alert")
        assert f'src="/console/findings/{finding_of_alert}/image.jpg"' in alert_row
        assert f'src="{at}/photo.jpg"' in page
        for url in (f"{at}/photo.jpg", *(f"/console/findings/{f}/image.jpg" for f in findings)):
            shown = c.get(url)
            assert shown.status_code == 200 and shown.headers["content-type"] == "image/jpeg", url
            assert shown.headers["cache-control"] == "no-store" and shown.content[:2] == b"\xff\xd8"
        assert "Subject Alpha Label" not in page and "SUBJREF" not in page  # no label or reference of anyone

        # an answer before every finding is reviewed is refused
        _, page = _follow(c, c.post(f"{at}/decide", data={"decision": "granted", "csrf_token": csrf}))
        assert "are not reviewed yet" in page
        # a person looks at each: the alert's crop is his; the listed photo is his own too. A slip
        # (someone else) can be put right until the decision.
        first = next(iter(findings))
        _, page = _follow(c, c.post(f"/console/findings/{first}/verdict", data={
            "verdict": "someone_else", "request_id": str(request_id), "csrf_token": csrf}))
        assert f"finding {first}: someone else" in page and 'class="verdict-someone_else"' in page
        for finding_id in findings:
            where, page = _follow(c, c.post(f"/console/findings/{finding_id}/verdict", data={
                "verdict": "requester", "request_id": str(request_id), "csrf_token": csrf}))
            assert where.startswith(f"{at}?") and f"finding {finding_id}: the requester" in page
        assert page.count('class="verdict-requester"') == len(findings)

        _, page = _follow(c, c.post(f"{at}/decide", data={"decision": "granted", "note": "sent by post",
                                                          "csrf_token": csrf}))
        assert 'id="status">decided' in page and "answered in time" in page and 'id="photo">none held' in page
        letter = re.search(r'<pre id="letter" class="card">(.*?)</pre>', page, re.S).group(1)
        assert "Tony Blair" in letter and f"alert {alert}" in letter
        assert 'action="/console/requests/' not in page.split("Records found")[1]  # no more forms once decided
        # decided: any further step is refused, said in the page
        _, page = _follow(c, c.post(f"{at}/verify", data={"evidence_ref": "again", "csrf_token": csrf}))
        assert "cannot be changed" in page
        # decided: the photo is gone and no record's face is shown any more
        assert "image.jpg" not in page and c.get(f"{at}/photo.jpg").status_code == 409
        assert c.get(f"/console/findings/{finding_of_alert}/image.jpg").status_code == 409
    with browser(site, "reviewer") as (c, _):  # only the request's DPO sees them
        assert c.get(f"/console/findings/{finding_of_alert}/image.jpg").status_code == 403
    with site.gov.transaction() as ctx:  # every step audited, in order
        steps = [e.action for e in ctx.session.execute(select(AuditEvent).where(
            AuditEvent.object_type == "request", AuditEvent.object_id == str(request_id))
            .order_by(AuditEvent.seq)).scalars() if not e.action.endswith(".refused")]
    assert steps[:6] == ["request.open", "request.verify", "request.photo", "request.search", "request.view_photo",
                         "request.decide"], steps
    with site.gov.transaction() as ctx:
        viewed = ctx.session.execute(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "request.view_finding")).scalar_one()
    assert viewed == len(findings)
    # the oversight body's auditor reads the request without the requester's fields or the letter
    with browser(site, "dpo") as (c, _):
        page = c.get(f"/console/requests/{request_id}").text
        assert "[withheld]" in page and "Tony Blair" not in page and 'id="letter"' not in page
        assert "<form method=\"post\" action=\"/console/requests" not in page


# --- the public page ------------------------------------------------------------------------------------
def test_public_requests_page_without_login(dpos: Site) -> None:
    site = dpos
    with browser(site, DPO) as (c, csrf):  # one answered, one refused, at least
        _open(c, csrf)
        refused = _open(c, csrf, kind="erasure")
        _follow(c, c.post(f"/console/requests/{refused}/decide", data={
            "decision": "refused", "reasons": ["identity_not_verified"], "csrf_token": csrf}))
    with site.gov.transaction() as ctx:
        counts = rq.public_counts(ctx)
    assert counts.received >= 2 and counts.refused >= 1
    policy = site.gov.policy
    with httpx.Client(base_url=site.url, timeout=10) as anon:
        r = anon.get("/transparency/requests")
        assert r.status_code == 200 and "text/html" in r.headers["content-type"]
        page = r.text
        record = anon.get("/api/public/transparency").json()
        transparency = anon.get("/transparency").text
    for key, cls in (("received", "received"), ("answered", "answered"), ("answered_in_time", "in-time"),
                     ("refused", "refused-count"), ("open_overdue", "overdue")):
        assert f'<dd class="{cls}">{getattr(counts, key)}</dd>' in page, key
        assert f'<span class="{cls}">{getattr(counts, key)}</span>' in transparency, key
    assert record["requests"] == asdict(counts)
    # the retention numbers come from the policy in force
    assert f'<span id="alert-retention">{policy.alert_retention_days:g}</span>' in page
    hours = policy.dismissed_alert_retention_hours
    assert ("at the next retention sweep" in page) if hours == 0 else (f"{hours:g} hours after" in page)
    # to whom: each controller by name and kind (the oversight body apart), what to bring, the time limit
    assert re.search(r"<td>Estate Ltd \(runs this installation\)</td><td>site operator</td>", page)
    assert re.search(r"<td>Met Police</td><td>police force</td>", page)
    assert "Independent oversight: ICO" in page
    assert "A photo of your face" in page and "Proof of identity" in page
    assert due_date(datetime.now(UTC)).strftime("%d %B %Y") in page and "one calendar month" in page
    assert 'href="/transparency"' in page and 'href="/transparency/requests"' in transparency
    assert "Jo Bloggs" not in page and "jo@example.org" not in page


def test_public_page_follows_the_policy(tmp_path: Path) -> None:
    """Other retention settings are what the page then says (nothing is written into the page)."""
    from openlfr.api import create_app
    from openlfr.governance import Policy

    gov = Governance(f"sqlite:///{tmp_path / 'openlfr.db'}", blob_root=tmp_path / "blobs", key=KEY,
                     policy=Policy(alert_retention_days=12.5, dismissed_alert_retention_hours=36))
    try:
        with serve(create_app(gov)) as url:
            page = httpx.get(f"{url}/transparency/requests", timeout=10).text
    finally:
        gov.close()
    assert '<span id="alert-retention">12.5</span>' in page and "36 hours after that decision" in page
    assert '<dd class="received">0</dd>' in page and "no organisation is registered yet" in page


def test_the_photo_form_is_an_upload_route(dpos: Site) -> None:
    """The photo route takes an image up to the upload limit (not the 1 MiB ceiling of other
    forms); a photo over it is refused before it is read, said in a page."""
    from openlfr.api.body_limit import FORM_OVERHEAD, SMALL_BODY, BodyLimit

    site = dpos
    limit = site.app.state.settings.max_upload_bytes
    with browser(site, DPO) as (c, csrf):
        request_id = _open(c, csrf)
        photo = png(5, 160)
        assert 20_000 < len(photo) < limit
        _, page = _follow(c, c.post(f"/console/requests/{request_id}/photo", data={"csrf_token": csrf},
                                    files={"file": ("me.png", photo, "image/png")}))
        assert "photo held (sealed)" in page  # (the test store's template function finds a face in noise)
        r = c.post(f"/console/requests/{request_id}/photo", data={"csrf_token": csrf},
                   files={"file": ("huge.png", b"\x89PNG" + bytes(limit + FORM_OVERHEAD), "image/png")},
                   headers={"accept": "text/html"})
        assert r.status_code == 413 and "request body too large" in r.text
    with site.gov.transaction() as ctx:
        assert ctx.session.get(RightsRequest, request_id).photo_blob is not None  # the first photo stays
    # the app's own upload paths: a 5 MB limit applies to the photo form, not to other console forms
    paths = next(m for m in site.app.user_middleware if m.cls is BodyLimit).kwargs["upload_paths"]
    sized = BodyLimit(None, 5_000_000, paths)  # type: ignore[arg-type]
    assert sized.limit_for(f"/console/requests/{request_id}/photo") == 5_000_000 + FORM_OVERHEAD
    assert sized.limit_for(f"/console/requests/{request_id}/verify") == SMALL_BODY


def test_probe_crop_is_a_face(real: Site) -> None:
    """The walk-through's premise: the alert's crop is a face the deployment's model finds."""
    from openlfr.rights.search import embed_largest

    with real.gov.transaction() as ctx:
        from openlfr.store.models import Deployment

        model = ctx.session.get(Deployment, real.deployment_id).model_id
    assert embed_largest(model, probe_crop(0)) is not None
