"""Parties that cannot act for each other, at the Python door (the services themselves).

Each test names the rule it pins; each was checked by disabling that rule in the services
and seeing the test fail. The same rules are tested through the API, the console and the
command line in tests/api and tests/governance/test_gov_cli.py.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from openlfr import audit
from openlfr.errors import InputError
from openlfr.governance import Actor, OrgKind, PermissionDenied, Role, RuleViolation, parse
from openlfr.governance import agreements, central, credentials, deployments, organisations, retention, reviews
from openlfr.governance import sharing, users, watchlists
from openlfr.governance.schemas import AgreementCreate, OrganisationCreate, UserCreate
from openlfr.store.models import Agreement, Alert, ApiToken, AuditEvent, User

from govkit import ADMIN_PASSWORD, Estate, as_image, token_for


def _events(estate: Estate, action: str) -> list[AuditEvent]:
    with estate.gov.sessions() as session:
        return list(session.execute(select(AuditEvent).where(AuditEvent.action == action)
                                    .order_by(AuditEvent.seq)).scalars())


def _count(estate: Estate, model: type) -> int:
    with estate.gov.sessions() as session:
        return session.execute(select(func.count()).select_from(model)).scalar_one()


# --- organisations' own admins alone manage their users -------------------------------------
def test_estate_admin_cannot_create_or_modify_police_users(estate: Estate) -> None:
    before = _count(estate, User)
    for role in (Role.SUPPLIER, Role.AUTHORISING_OFFICER):  # roles a site operator may not give
        with pytest.raises(PermissionDenied, match="site operator cannot have"), estate.gov.transaction() as ctx:
            rank = "superintendent" if role is Role.AUTHORISING_OFFICER else None
            users.create_user(ctx, estate.estate_admin, UserCreate(name=f"fake-{role.value}", role=role, rank=rank),
                              None)
    for call in (lambda ctx: users.reset_password(ctx, estate.estate_admin, "met", "a new password!!"),
                 lambda ctx: users.deactivate(ctx, estate.estate_admin, "officer", "leaving"),
                 lambda ctx: users.set_role(ctx, estate.estate_admin, "met", Role.REVIEWER)):
        with pytest.raises(PermissionDenied, match="whose own admins alone"), estate.gov.transaction() as ctx:
            call(ctx)
    # an operator admin (not a user admin) cannot create users at all, even in its own organisation
    with pytest.raises(PermissionDenied, match="needs role admin"), estate.gov.transaction() as ctx:
        users.create_user(ctx, estate.admin, UserCreate(name="x", role=Role.REVIEWER), None)
    assert _count(estate, User) == before
    refused = [e.action for e in _events(estate, "user.password.refused") + _events(estate, "user.create.refused")]
    assert refused and all(a.endswith(".refused") for a in refused)
    with estate.gov.transaction() as ctx:
        assert ctx.session.execute(select(User).where(User.name == "met")).scalar_one().role == "supplier"


def test_a_name_is_not_a_credential(estate: Estate) -> None:
    ag = estate.agreement(approve=False)
    for fake in ("officer", Actor("forged-token", "officer")):
        with pytest.raises(PermissionDenied, match="credential"), estate.gov.transaction() as ctx:
            agreements.approve(ctx, fake, ag)  # type: ignore[arg-type]
    with estate.gov.sessions() as session:
        assert session.get(Agreement, ag).status == "draft"
    refusals = _events(estate, "agreement.approve.refused")
    assert [e.actor for e in refusals] == ["unverified:officer", "unverified:officer"]


def test_revoked_and_expired_tokens_are_refused(estate: Estate) -> None:
    ag = estate.agreement(approve=False)
    with estate.gov.transaction() as ctx:
        row = ctx.session.execute(select(ApiToken).where(
            ApiToken.token_sha256 == credentials.token_digest(estate.officer.token))).scalar_one()
        row.expires_at = ctx.now() - timedelta(seconds=1)
    with pytest.raises(PermissionDenied, match="expired, revoked"), estate.gov.transaction() as ctx:
        agreements.approve(ctx, estate.officer, ag)


def test_only_the_supplying_force_of_the_required_rank_approves(estate: Estate) -> None:
    inspector = estate.user("insp", Role.AUTHORISING_OFFICER, org="force", rank="inspector")
    kent = estate.organisation("Kent Police", OrgKind.POLICE_FORCE)
    kent_supt = estate.user("kent-supt", Role.AUTHORISING_OFFICER, by=kent, rank="chief_superintendent")
    ag = estate.agreement(approve=False)
    with pytest.raises(PermissionDenied, match="superintendent or above; insp is inspector"), \
            estate.gov.transaction() as ctx:
        agreements.approve(ctx, inspector, ag)
    with pytest.raises(PermissionDenied, match="Kent Police cannot approve"), estate.gov.transaction() as ctx:
        agreements.approve(ctx, kent_supt, ag)
    with estate.gov.transaction() as ctx:
        assert agreements.approve(ctx, estate.officer, ag).status == "active"
    approve = _events(estate, "agreement.approve")[-1]
    assert approve.actor == "officer" and json.loads(approve.details)["rank"] == "superintendent"


def test_unknown_rank_is_a_clear_error(estate: Estate) -> None:
    with pytest.raises(InputError, match="unknown police rank 'general'"), estate.gov.transaction() as ctx:
        users.create_user(ctx, estate.force_admin, UserCreate(name="g", role=Role.AUTHORISING_OFFICER, rank="general"),
                          None)
    with pytest.raises(InputError, match="needs a rank"), estate.gov.transaction() as ctx:
        users.create_user(ctx, estate.force_admin, UserCreate(name="g", role=Role.AUTHORISING_OFFICER), None)


def test_deployment_authorised_only_by_a_senior_officer_of_the_supplying_force(estate: Estate) -> None:
    inspector = estate.user("insp", Role.AUTHORISING_OFFICER, org="force", rank="inspector")
    kent = estate.organisation("Kent Police", OrgKind.POLICE_FORCE)
    kent_supt = estate.user("kent-supt", Role.AUTHORISING_OFFICER, by=kent, rank="chief_superintendent")
    ag = estate.agreement()
    wl = estate.watchlist([estate.share(ag, b"img")])
    dep = estate.request(wl, [estate.camera()])
    for officer, why in ((inspector, "superintendent or above"), (kent_supt, "another force")):
        with pytest.raises(PermissionDenied, match=why), estate.gov.transaction() as ctx:
            deployments.authorise(ctx, officer, dep)
    with estate.gov.transaction() as ctx:
        assert deployments.authorise(ctx, estate.officer, dep).status == "authorised"


def test_admins_cannot_reach_across_organisations(estate: Estate) -> None:
    other = estate.organisation("Other Estate", OrgKind.SITE_OPERATOR)
    other_ops = estate.user("other-ops", Role.OPERATOR_ADMIN, by=other)
    dep, cam, images = estate.live_deployment()
    with estate.gov.sessions() as session:
        ag = session.get(Agreement, 1).id
        entry = session.execute(select(watchlists.WatchlistEntry.id)).scalars().first()
    calls = [lambda ctx: agreements.end(ctx, other_ops, ag, "not ours"),
             lambda ctx: watchlists.remove_entry(ctx, other_ops, entry, "not ours"),
             lambda ctx: deployments.end(ctx, other_ops, dep, "not ours")]
    for call in calls:
        with pytest.raises(PermissionDenied, match="Other Estate cannot"), estate.gov.transaction() as ctx:
            call(ctx)
    with estate.gov.sessions() as session:
        assert session.get(Agreement, ag).status == "active"
        assert session.get(deployments.Deployment, dep).status == "live"
    with estate.gov.transaction() as ctx:
        assert deployments.list_deployments(ctx, other_ops) == []
        assert agreements.list_agreements(ctx, other_ops) == []


# --- the force-wide central view ------------------------------------------------------------
def test_central_view_shows_the_whole_force_and_no_other(estate: Estate) -> None:
    colleague = estate.user("met-2", Role.SUPPLIER, org="force")
    central_team = estate.user("met-dpo", Role.AUDITOR, org="force")
    kent = estate.organisation("Kent Police", OrgKind.POLICE_FORCE)
    kent_supplier = estate.user("kent", Role.SUPPLIER, by=kent)
    with estate.gov.transaction() as ctx:
        kent_ag = agreements.create(ctx, kent_supplier, parse(
            AgreementCreate, operator=estate.operator, purpose="p", lawful_basis="b", valid_from=estate.clock.now,
            valid_until=estate.clock.now + timedelta(days=5), image_limit=5, allowed_categories=["wanted_by_court"])).id
        local = agreements.create(ctx, colleague, parse(  # made by another officer of the force
            AgreementCreate, operator=estate.operator, purpose="local agreement", lawful_basis="b",
            valid_from=estate.clock.now, valid_until=estate.clock.now + timedelta(days=5), image_limit=5,
            allowed_categories=["wanted_by_court"])).id
        agreements.approve(ctx, estate.officer, local)
    kent_supt = estate.user("kent-supt", Role.AUTHORISING_OFFICER, by=kent, rank="superintendent")
    with estate.gov.transaction() as ctx:
        agreements.approve(ctx, kent_supt, kent_ag)
    with estate.gov.transaction() as ctx:
        sharing.share_image(ctx, kent_supplier, sharing.ShareImage(
            agreement_id=kent_ag, category="wanted_by_court", warrant_ref="WA-2029-00123", reason="r",
            subject_ref="KENT-1", image_date=estate.clock.now.date()), as_image(b"kent face"))
    with estate.gov.transaction() as ctx:
        image = sharing.share_image(ctx, colleague, sharing.ShareImage(
            agreement_id=local, category="wanted_by_court", warrant_ref="WA-2029-00123", reason="r", subject_ref="S-1",
            image_date=estate.clock.now.date()), as_image(b"face")).id
    wl = estate.watchlist([image])
    dep = estate.request(wl, [estate.camera()])
    with estate.gov.transaction() as ctx:
        deployments.authorise(ctx, estate.officer, dep)
        deployments.start(ctx, estate.admin, dep)
        entry = watchlists.active_entries(ctx, wl)[0].id
        retention.record_alert(ctx, dep, 1, 0.9, ctx.now(), entry_id=entry)
    with estate.gov.transaction() as ctx:
        view = central.force_view(ctx, central_team)
        assert [a.id for a in view.agreements] == [local]
        assert kent_ag not in [a.id for a in view.agreements]
        (history,) = view.images
        assert history.image.shared_by == "met-2"
        assert [u.kind for u in history.uses] == ["watchlist", "deployment", "alert"]
        assert [d.id for d in view.deployments] == [dep] and len(view.alerts) == 1
        kent_view = central.force_view(ctx, kent_supplier)
        assert [a.id for a in kent_view.agreements] == [kent_ag]
        assert [h.image.subject_ref for h in kent_view.images] == ["KENT-1"]
        with pytest.raises(PermissionDenied):
            central.force_view(ctx, estate.admin)  # the estate is not the force
    with estate.gov.transaction() as ctx:
        sharing.revoke_image(ctx, estate.supplier, image, "no longer wanted")
    with estate.gov.transaction() as ctx:
        (history,) = central.force_view(ctx, central_team).images
        assert history.image.status == "purged" and history.image.deleted_by == "met"


# --- two-person review, at every door: here the Python one ----------------------------------
def _alert(estate: Estate, **authorise: bool) -> tuple[int, int]:
    dep, cam, _ = estate.live_deployment()
    with estate.gov.transaction() as ctx:
        if authorise:
            ctx.session.get(deployments.Deployment, dep).police_review_required = True
        alert = retention.record_alert(ctx, dep, cam, 0.9, ctx.now()).id
    return dep, alert


def test_a_single_reviewer_cannot_verify_an_alert(estate: Estate) -> None:
    assert not hasattr(deployments, "review_alert")  # no public path settles on one reviewer's word
    _, alert = _alert(estate)
    with estate.gov.transaction() as ctx:
        reviews.review(ctx, estate.reviewer, alert, "confirm", "looks like him")
    with pytest.raises(RuleViolation, match="different reviewer"), estate.gov.transaction() as ctx:
        reviews.review(ctx, estate.reviewer, alert, "confirm", "again")
    with estate.gov.sessions() as session:
        assert session.get(Alert, alert).review_outcome is None
    second = estate.user("reviewer-2", Role.REVIEWER)
    with estate.gov.transaction() as ctx:
        reviews.review(ctx, second, alert, "confirm", "agreed")
    with estate.gov.sessions() as session:
        assert session.get(Alert, alert).review_outcome == "true"


def test_police_review_required_refuses_estate_reviewers(estate: Estate) -> None:
    _, alert = _alert(estate, police=True)
    with pytest.raises(PermissionDenied, match="requires police reviewers"), estate.gov.transaction() as ctx:
        reviews.review(ctx, estate.reviewer, alert, "confirm", "x")
    police = [estate.user(f"pc-{i}", Role.REVIEWER, org="force") for i in range(2)]
    for reviewer in police:
        with estate.gov.transaction() as ctx:
            reviews.review(ctx, reviewer, alert, "confirm", "match")
    with estate.gov.sessions() as session:
        assert session.get(Alert, alert).review_outcome == "true"


def test_reviewers_of_other_organisations_see_nothing(estate: Estate) -> None:
    _, alert = _alert(estate)
    other = estate.organisation("Other Estate", OrgKind.SITE_OPERATOR)
    outsider = estate.user("outsider", Role.REVIEWER, by=other)
    with pytest.raises(PermissionDenied, match="does not review"), estate.gov.transaction() as ctx:
        reviews.review(ctx, outsider, alert, "dismiss", "x")


# --- offboarding -----------------------------------------------------------------------------
def test_deactivation_and_password_reset_stop_every_token(estate: Estate) -> None:
    second_token = token_for(estate.gov, "met")
    ag = estate.agreement()
    with estate.gov.transaction() as ctx:
        users.deactivate(ctx, estate.force_admin, "met", "left the force")
    for actor in (estate.supplier, second_token):
        with pytest.raises(PermissionDenied, match="not valid"), estate.gov.transaction() as ctx:
            sharing.share_image(ctx, actor, sharing.ShareImage(
                agreement_id=ag, category="wanted_by_court", warrant_ref="WA-2029-00123", reason="r",
                subject_ref="S-9", image_date=estate.clock.now.date()),
                b"img")
    officer_again = token_for(estate.gov, "officer")
    with estate.gov.transaction() as ctx:
        users.reset_password(ctx, estate.force_admin, "officer", "a brand new password")
    for actor in (estate.officer, officer_again):
        with pytest.raises(PermissionDenied, match="not valid"), estate.gov.transaction() as ctx:
            agreements.suspend(ctx, actor, ag, "x")
    with estate.gov.transaction() as ctx:
        assert credentials.check_password(ctx.session, "officer", "a brand new password") is not None
    (event,) = _events(estate, "user.deactivate")
    assert event.actor == "force-admin" and json.loads(event.details)["tokens_revoked"] == 2


# --- enrolment and break-glass -----------------------------------------------------------------
def test_enrolment_tokens_are_one_time_and_expire(estate: Estate) -> None:
    with estate.gov.transaction() as ctx:
        _, enrolment = organisations.register(ctx, OrganisationCreate(name="Essex Police", kind=OrgKind.POLICE_FORCE),
                                              "machine:test")
        _, late = organisations.register(ctx, OrganisationCreate(name="Herts Police", kind=OrgKind.POLICE_FORCE),
                                         "machine:test")
    with estate.gov.transaction() as ctx:
        assert organisations.enrol(ctx, enrolment.token, "essex-admin", ADMIN_PASSWORD).role == "admin"
    with pytest.raises(PermissionDenied, match="already used"), estate.gov.transaction() as ctx:
        organisations.enrol(ctx, enrolment.token, "someone-else", ADMIN_PASSWORD)
    estate.clock.advance(days=organisations.ENROLMENT_DAYS, seconds=1)
    with pytest.raises(PermissionDenied, match="expired"), estate.gov.transaction() as ctx:
        organisations.enrol(ctx, late.token, "herts-admin", ADMIN_PASSWORD)
    assert [e.actor for e in _events(estate, "org.enrol.refused")] == ["unverified:someone-else",
                                                                         "unverified:herts-admin"]


def test_no_enrolment_token_for_an_organisation_that_has_an_admin(estate: Estate) -> None:
    with estate.gov.transaction() as ctx:
        met = organisations.by_name(ctx, estate.force)
    with pytest.raises(PermissionDenied, match="already has an admin"), estate.gov.transaction() as ctx:
        organisations.issue_enrolment(ctx, met, "machine:root@estate")
    with estate.gov.transaction() as ctx:  # once every admin has left, the force can be re-enrolled
        ctx.session.execute(select(User).where(User.name == "force-admin")).scalar_one().active = False
    with estate.gov.transaction() as ctx:
        assert organisations.issue_enrolment(ctx, met, "machine:root@estate").token.startswith("enrol-")
    assert [e.actor for e in _events(estate, "org.enrolment_token.refused")] == ["machine:root@estate"]


def test_break_glass_is_limited_to_the_host(estate: Estate) -> None:
    with pytest.raises(PermissionDenied, match="limited to the host"), estate.gov.transaction() as ctx:
        organisations.break_glass(ctx, "officer", "a password I chose", "locked out", "machine:root@estate")
    with estate.gov.transaction() as ctx:
        organisations.break_glass(ctx, "estate-admin", "a password I chose", "admin locked out", "machine:root@estate")
    with pytest.raises(PermissionDenied), estate.gov.transaction() as ctx:  # the old token was revoked
        users.list_users(ctx, estate.estate_admin)
    (event,) = _events(estate, "auth.break_glass")
    assert event.actor == "machine:root@estate" and json.loads(event.details)["reason"] == "admin locked out"


# --- King's Cross, end to end, with the estate admin's credentials alone ---------------------
def test_the_one_admin_chain_is_impossible(estate: Estate) -> None:
    """Acting only as the estate's user admin (and the operator admin it can make), nobody can
    make a police approval, so nothing can be shared, deployed or matched."""
    mine = estate.estate_admin
    before_users = _count(estate, User)
    refused = 0
    for role, rank in ((Role.AUTHORISING_OFFICER, "superintendent"), (Role.SUPPLIER, None)):
        with pytest.raises(PermissionDenied), estate.gov.transaction() as ctx:
            users.create_user(ctx, mine, UserCreate(name=f"my-{role.value}", role=role, rank=rank), "password123!")
        refused += 1
    with pytest.raises(PermissionDenied), estate.gov.transaction() as ctx:  # no organisation from a credential
        organisations.break_glass(ctx, "officer", "a password I chose", "take over", "estate-admin")
    ops = estate.user("my-ops", Role.OPERATOR_ADMIN)  # what it can make: its own staff
    rev1, rev2 = estate.user("my-rev1", Role.REVIEWER), estate.user("my-rev2", Role.REVIEWER)
    data = parse(AgreementCreate, operator=estate.operator, purpose="anyone", lawful_basis="legitimate interests",
                 valid_from=estate.clock.now, valid_until=estate.clock.now + timedelta(days=300), image_limit=2000,
                 allowed_categories=["missing_at_risk"], allow_under_18=True)
    for actor in (mine, ops, rev1):
        with pytest.raises(PermissionDenied), estate.gov.transaction() as ctx:
            agreements.create(ctx, actor, data)
    ag = estate.agreement(approve=False)  # even a real draft from the force
    for actor in (mine, ops):
        with pytest.raises(PermissionDenied), estate.gov.transaction() as ctx:
            agreements.approve(ctx, actor, ag)
        with pytest.raises(PermissionDenied), estate.gov.transaction() as ctx:
            sharing.share_image(ctx, actor, sharing.ShareImage(
                agreement_id=ag, category="wanted_by_court", warrant_ref="WA-2029-00123", reason="r",
                subject_ref="S-1", image_date=estate.clock.now.date()), b"x")
    wl = estate.watchlist([])
    dep = estate.request(wl, [estate.camera()])
    for actor in (mine, ops, rev1):
        with pytest.raises(PermissionDenied), estate.gov.transaction() as ctx:
            deployments.authorise(ctx, actor, dep)
    with pytest.raises(RuleViolation), estate.gov.transaction() as ctx:
        deployments.start(ctx, ops, dep)
    assert _count(estate, Alert) == 0
    with estate.gov.sessions() as session:
        assert session.get(Agreement, ag).status == "draft"
        assert audit.verify(session).ok
    assert _count(estate, User) == before_users + 3 and rev2 is not None and refused == 2


def test_host_admin_creation_only_on_an_empty_store(estate: Estate) -> None:
    with pytest.raises(RuleViolation, match="already has users"), estate.gov.transaction() as ctx:
        organisations.create_host_admin(ctx, "Fake Met", OrgKind.POLICE_FORCE, "boss", "a password!!", "machine:x")
    with estate.gov.transaction() as ctx:
        names = [o.name for o in organisations.list_organisations(ctx)]
    assert "Fake Met" not in names
