"""Structured deployment records: the legal basis, DPIA and equality impact assessment, the
necessity and proportionality statements, the maximum window, the urgency route and its
retrospective review, refusal by the officer, the composition summary frozen with the
authority, and entries dropping out of a live deployment once their review date passes."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import func, select

from openlfr.errors import InputError
from openlfr.governance import PermissionDenied, Role, RuleViolation, deployments, parse, watchlists
from openlfr.governance.composition import composition
from openlfr.governance.grounds import LegalBasis
from openlfr.governance.schemas import MIN_STATEMENT_WORDS, DeploymentRequest, WatchlistAdd
from openlfr.store.models import AuditEvent, Deployment, WatchlistEntry

from govkit import Estate, grounds


@pytest.fixture
def db_url(sqlite_url: str) -> str:
    """Input and rule checks in Python, not in the database:
    SQLite only (the PostgreSQL paths they take are tested on both databases in
    test_gov_rules.py and test_gov_store.py)."""
    return sqlite_url


def _events(estate: Estate, action: str) -> list[SimpleNamespace]:
    """The audit events of ``action``, oldest first, with their details parsed."""
    with estate.gov.transaction() as ctx:
        rows = ctx.session.execute(select(AuditEvent).where(AuditEvent.action == action)
                                   .order_by(AuditEvent.seq)).scalars().all()
        return [SimpleNamespace(actor=r.actor, object_id=r.object_id, details=json.loads(r.details)) for r in rows]


def _deployments(estate: Estate) -> int:
    with estate.gov.transaction() as ctx:
        return ctx.session.execute(select(func.count(Deployment.id))).scalar_one()


def _setup(estate: Estate, n: int = 2) -> tuple[int, int]:
    ag = estate.agreement()
    images = [estate.share(ag, f"img-{i}".encode(), subject=f"S-{i}") for i in range(n)]
    return estate.watchlist(images), estate.camera()


def _refused(estate: Estate, err: type[Exception], match: str, wl: int, cam: int, **over: Any) -> None:
    """A request with ``over`` is refused with ``match``, nothing is stored, and the refusal is audited."""
    before, audited = _deployments(estate), len(_events(estate, "deployment.request.refused"))
    with pytest.raises(err, match=match):
        estate.request(wl, [cam], **over)
    assert _deployments(estate) == before
    refusals = _events(estate, "deployment.request.refused")
    assert len(refusals) == audited + 1 and refusals[-1].details["reason"]


# --- the request's grounds ------------------------------------------------------------------
def test_valid_grounds_are_stored_and_audited(estate: Estate) -> None:
    wl, cam = _setup(estate)
    dep = estate.request(wl, [cam])
    with estate.gov.transaction() as ctx:
        row = ctx.get(Deployment, dep, "deployment")
        assert (row.legal_basis, row.dpia_date, row.eia_ref) == (LegalBasis.GDPR_UNLAWFUL_ACTS.value, date(2024, 6, 3),
                                                                 "EIA-2024-01")
        assert row.proportionality.startswith("Only wanted people") and not row.urgent
    details = _events(estate, "deployment.request")[-1].details
    assert details["legal_basis"] == LegalBasis.GDPR_UNLAWFUL_ACTS.value and details["eia_date"] == "2024-06-03"


@pytest.mark.parametrize("over, match", [
    ({"legal_basis": "consent of the public"}, "legal_basis"),
    ({"legal_basis": "DPA 2018 s.35"}, "legal_basis"),
    ({"dpia_ref": "none"}, "DPIA reference"),
    ({"dpia_ref": "N/A"}, "DPIA reference"),
    ({"dpia_ref": " tbc. "}, "DPIA reference"),
    ({"eia_ref": "-"}, "equality impact assessment reference"),
    ({"necessity": "see DPIA"}, "necessity statement"),
    ({"necessity": "necessary and proportionate here"}, "necessity statement"),
    ({"proportionality": "yes " * 12}, "proportionality statement"),
    ({"dpia_date": date(2017, 1, 1)}, "predates"),
    ({"urgent": True}, "urgency_reason"),
    ({"urgent": True, "urgency_reason": "n/a"}, "urgency_reason"),
    ({"urgency_reason": "a knife attack an hour ago"}, "not marked urgent"),
])
def test_bad_grounds_refused(over: dict[str, Any], match: str) -> None:
    t = datetime(2030, 3, 1, 9, tzinfo=UTC)
    fields = dict(purpose="p", watchlist_id=1, camera_ids=[1], start=t, end=t + timedelta(hours=4), threshold=0.6)
    parse(DeploymentRequest, **fields, **grounds())  # the base is valid
    with pytest.raises(InputError, match=match):
        parse(DeploymentRequest, **fields, **grounds(**over))
    missing = {k: v for k, v in grounds().items() if k != "dpia_ref"}
    with pytest.raises(InputError, match="dpia_ref: Field required"):
        parse(DeploymentRequest, **fields, **missing)


def test_statement_minimum_is_words_not_characters() -> None:
    t = datetime(2030, 3, 1, 9, tzinfo=UTC)
    fields = dict(purpose="p", watchlist_id=1, camera_ids=[1], start=t, end=t + timedelta(hours=4), threshold=0.6)
    words = "violent robberies near the station continue and patrols have not found suspects".split()
    parse(DeploymentRequest, **fields, **grounds(necessity=" ".join(words[:MIN_STATEMENT_WORDS])))
    with pytest.raises(InputError, match=f"at least {MIN_STATEMENT_WORDS} words"):
        parse(DeploymentRequest, **fields, **grounds(necessity=" ".join(words[:MIN_STATEMENT_WORDS - 1])))


def test_operator_cannot_use_a_police_basis(estate: Estate) -> None:
    wl, cam = _setup(estate)
    _refused(estate, RuleViolation, "only a police force", wl, cam, police=True)


def test_police_force_needs_a_law_enforcement_basis(estate: Estate) -> None:
    wl, cam = _setup(estate)
    ops = estate.user("force-ops", Role.OPERATOR_ADMIN, org="force")
    data = parse(DeploymentRequest, purpose="p", watchlist_id=wl, camera_ids=[cam], start=estate.clock.now,
                 end=estate.clock.now + timedelta(hours=4), threshold=0.6, **grounds())
    with pytest.raises(RuleViolation, match="police force: its deployments are law enforcement"), \
            estate.gov.transaction() as ctx:
        deployments.request(ctx, ops, data)
    assert _events(estate, "deployment.request.refused")[-1].actor == "force-ops"
    # with a s.35 basis the grounds pass (and the estate's watchlist is then not the force's)
    police = data.model_copy(update={"legal_basis": LegalBasis.S35_SCH8_STATUTORY})
    with pytest.raises(PermissionDenied, match="watchlist"), estate.gov.transaction() as ctx:
        deployments.request(ctx, ops, police)


@pytest.mark.parametrize("field", ["dpia_date", "eia_date"])
def test_assessment_dated_after_the_request_refused(estate: Estate, field: str) -> None:
    wl, cam = _setup(estate)
    _refused(estate, InputError, "after today", wl, cam, **{field: estate.clock.now.date() + timedelta(days=1)})
    estate.request(wl, [cam], **{field: estate.clock.now.date()})  # signed off today: fine


def test_inverted_window_refused(estate: Estate) -> None:
    wl, cam = _setup(estate)
    with pytest.raises(InputError, match="end must be after start"):
        estate.request(wl, [cam], hours=-2)
    assert _deployments(estate) == 0


def test_window_longer_than_the_maximum_refused(estate: Estate) -> None:
    wl, cam = _setup(estate)
    most = estate.gov.policy.max_deployment_hours
    _refused(estate, RuleViolation, "at most", wl, cam, hours=most + 1)
    estate.request(wl, [cam], hours=most)


# --- refusal by the officer -----------------------------------------------------------------
def test_officer_refuses_a_request(estate: Estate) -> None:
    wl, cam = _setup(estate)
    dep = estate.request(wl, [cam])
    with pytest.raises(InputError, match="reason"), estate.gov.transaction() as ctx:
        deployments.refuse(ctx, estate.officer, dep, "  ")
    with pytest.raises(PermissionDenied, match="authorising_officer"), estate.gov.transaction() as ctx:
        deployments.refuse(ctx, estate.admin, dep, "no")
    assert len(_events(estate, "deployment.refuse.refused")) == 2
    with estate.gov.transaction() as ctx:
        assert deployments.refuse(ctx, estate.officer, dep, "the watchlist is too broad").status == "refused"
    assert _events(estate, "deployment.refuse")[-1].details["reason"] == "the watchlist is too broad"
    with pytest.raises(RuleViolation, match="only a requested one"), estate.gov.transaction() as ctx:
        deployments.authorise(ctx, estate.officer2, dep)


def test_only_a_supplying_force_may_refuse(estate: Estate) -> None:
    from openlfr.governance import OrgKind

    wl, cam = _setup(estate)
    dep = estate.request(wl, [cam])
    other_admin = estate.organisation("Other Force", OrgKind.POLICE_FORCE)
    other = estate.user("other-supt", Role.AUTHORISING_OFFICER, rank="superintendent", by=other_admin)
    with pytest.raises(PermissionDenied, match="no images of your force"), estate.gov.transaction() as ctx:
        deployments.refuse(ctx, other, dep, "not ours")
    low = estate.user("sergeant", Role.AUTHORISING_OFFICER, org="force", rank="sergeant")
    with pytest.raises(PermissionDenied, match="rank"), estate.gov.transaction() as ctx:
        deployments.refuse(ctx, low, dep, "no")


# --- the urgency route ------------------------------------------------------------------------
def test_lower_rank_may_authorise_only_an_urgent_deployment(estate: Estate) -> None:
    wl, cam = _setup(estate)
    inspector = estate.user("insp", Role.AUTHORISING_OFFICER, org="force", rank="inspector")
    ordinary = estate.request(wl, [cam])
    with pytest.raises(PermissionDenied, match="superintendent"), estate.gov.transaction() as ctx:
        deployments.authorise(ctx, inspector, ordinary)
    urgent = estate.request(wl, [cam], offset_hours=10, urgent=True,
                            urgency_reason="A child was taken from the square an hour ago; the suspect is nearby.")
    sergeant = estate.user("sgt", Role.AUTHORISING_OFFICER, org="force", rank="sergeant")
    with pytest.raises(PermissionDenied, match="urgency route needs .* inspector"), estate.gov.transaction() as ctx:
        deployments.authorise(ctx, sergeant, urgent)
    with estate.gov.transaction() as ctx:
        row = deployments.authorise(ctx, inspector, urgent)
        due = row.authorised_at + timedelta(hours=estate.gov.policy.urgent_review_hours)
        assert row.retro_review_due == due
    assert _events(estate, "deployment.authorise")[-1].details["urgent"] is True


def _urgent_live(estate: Estate) -> tuple[int, Any]:
    """A live urgent deployment authorised by an inspector, its review due 2 hours later (inside its window)."""
    estate.gov.policy = estate.gov.policy.model_copy(update={"urgent_review_hours": 2})
    wl, cam = _setup(estate)
    inspector = estate.user("insp", Role.AUTHORISING_OFFICER, org="force", rank="inspector")
    dep = estate.request(wl, [cam], urgent=True, urgency_reason="A violent suspect was seen here within the hour.")
    with estate.gov.transaction() as ctx:
        deployments.authorise(ctx, inspector, dep)
        deployments.start(ctx, estate.admin, dep)
    return dep, inspector


def test_retro_review_upheld(estate: Estate) -> None:
    dep, inspector = _urgent_live(estate)
    with pytest.raises(PermissionDenied, match="cannot review"), estate.gov.transaction() as ctx:
        deployments.retro_review(ctx, inspector, dep, "upheld", "fine")
    with pytest.raises(InputError, match="upheld or ended"), estate.gov.transaction() as ctx:
        deployments.retro_review(ctx, estate.officer, dep, "approved", "fine")
    with pytest.raises(InputError, match="note"), estate.gov.transaction() as ctx:
        deployments.retro_review(ctx, estate.officer, dep, "upheld", " ")
    with estate.gov.transaction() as ctx:
        row = deployments.retro_review(ctx, estate.officer, dep, "upheld", "the risk justified it")
        assert (row.status, row.retro_review_outcome) == ("live", "upheld")
    assert len(_events(estate, "deployment.retro_review.refused")) == 3
    estate.clock.advance(hours=estate.gov.policy.urgent_review_hours + 1)
    with estate.gov.transaction() as ctx:
        ended, _ = deployments.sweep(ctx)
    assert dep not in ended  # reviewed in time: it runs on


def test_retro_review_needs_the_usual_rank_and_can_end_it(estate: Estate) -> None:
    dep, _ = _urgent_live(estate)
    chief_insp = estate.user("ci", Role.AUTHORISING_OFFICER, org="force", rank="chief_inspector")
    with pytest.raises(PermissionDenied, match="superintendent"), estate.gov.transaction() as ctx:
        deployments.retro_review(ctx, chief_insp, dep, "upheld", "fine by me")
    with estate.gov.transaction() as ctx:
        row = deployments.retro_review(ctx, estate.officer, dep, "ended", "not necessary after all")
        assert (row.status, row.retro_review_outcome) == ("ended", "ended")
    assert _events(estate, "deployment.retro_review")[-1].details["outcome"] == "ended"


def test_overdue_retro_review_ends_the_deployment(estate: Estate) -> None:
    dep, _ = _urgent_live(estate)
    estate.clock.advance(hours=estate.gov.policy.urgent_review_hours - 1)
    with estate.gov.transaction() as ctx:
        assert dep not in deployments.sweep(ctx)[0]
    estate.clock.advance(hours=2)
    with pytest.raises(RuleViolation, match="too late"), estate.gov.transaction() as ctx:
        deployments.retro_review(ctx, estate.officer, dep, "upheld", "late but fine")
    with estate.gov.transaction() as ctx:
        assert dep in deployments.sweep(ctx)[0]
        assert ctx.get(Deployment, dep, "deployment").status == "ended"
    assert _events(estate, "deployment.retro_review_overdue")[-1].object_id == str(dep)


# --- the composition summary ------------------------------------------------------------------
def test_composition_shown_before_and_frozen_at_authorisation(estate: Estate) -> None:
    ag = estate.agreement(under_18=True)
    images = [estate.share(ag, f"img-{i}".encode(), subject=f"S-{i}") for i in range(3)]
    wl = estate.watchlist(images[:2])
    with estate.gov.transaction() as ctx:  # one entry near its review date
        watchlists.add_entry(ctx, estate.admin, WatchlistAdd(
            watchlist_id=wl, shared_image_id=images[2], label="soon", reason="warrant", under_18=True,
            review_date=estate.clock.now.date() + timedelta(days=2)))
    cam = estate.camera()
    dep = estate.request(wl, [cam])
    with estate.gov.transaction() as ctx:
        before = composition(ctx, wl)
    assert before["entries"] == 3 and before["under_18"] == 1 and before["oldest_image"] == "2029-12-01"
    assert [c["entries"] for c in before["categories"]] == [3] and before["categories"][0]["seriousness"]
    assert [d["review_date"] for d in before["review_due"]] == [str(estate.clock.now.date() + timedelta(days=2))]
    assert set(before["review_due"][0]) == {"entry_id", "review_date"}  # ids and dates only
    with estate.gov.transaction() as ctx:
        frozen = dict(deployments.authorise(ctx, estate.officer2, dep).composition)
    assert frozen == before
    assert _events(estate, "deployment.authorise")[-1].details["composition"]["entries"] == 3
    with estate.gov.transaction() as ctx:  # the watchlist changes afterwards; the authority does not
        watchlists.remove_entry(ctx, estate.admin, before["review_due"][0]["entry_id"], "reviewed")
        assert composition(ctx, wl)["entries"] == 2
        assert ctx.get(Deployment, dep, "deployment").composition == frozen


# --- entries past their review date drop out live -------------------------------------------
def _dated_watchlist(estate: Estate, reviews: list[date]) -> int:
    ag = estate.agreement()
    images = [estate.share(ag, f"img-{i}".encode(), subject=f"S-{i}") for i in range(len(reviews))]
    wl = estate.watchlist([])
    with estate.gov.transaction() as ctx:
        for i, (image, review) in enumerate(zip(images, reviews)):
            watchlists.add_entry(ctx, estate.admin, WatchlistAdd(
                watchlist_id=wl, shared_image_id=image, label=f"p{i}", reason="warrant", review_date=review))
    return wl


def test_expired_entry_drops_out_of_a_live_deployment(estate: Estate) -> None:
    today = estate.clock.now.date()
    wl = _dated_watchlist(estate, [today, today + timedelta(days=2)])
    cam = estate.camera()
    dep = estate.request(wl, [cam], hours=72)
    with estate.gov.transaction() as ctx:
        deployments.authorise(ctx, estate.officer2, dep)
        deployments.start(ctx, estate.admin, dep)
        live = deployments.live_watchlist(ctx, dep, cam, ctx.now())
    assert len(live.entry_ids) == 2  # used to the end of its review day
    assert live.next_change == datetime.combine(today + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    estate.clock.now = live.next_change + timedelta(minutes=1)
    with estate.gov.transaction() as ctx:
        live2 = deployments.live_watchlist(ctx, dep, cam, ctx.now())
    assert live2.entry_ids == live.entry_ids[1:] and live2.templates.shape[0] == 1
    assert live2.next_change == datetime.combine(today + timedelta(days=3), datetime.min.time(), tzinfo=UTC)
    drop = _events(estate, "deployment.watchlist_drop")[-1]
    assert drop.details["reason"] == "review date passed"
    assert drop.details["entries"] == {str(live.entry_ids[0]): today.isoformat()}
    estate.clock.now = live2.next_change
    with pytest.raises(RuleViolation, match="past its review date"), estate.gov.transaction() as ctx:
        deployments.live_watchlist(ctx, dep, cam, ctx.now())
    assert "review date" in _events(estate, "deployment.watchlist.refused")[-1].details["reason"]


def test_next_change_only_within_the_window(estate: Estate) -> None:
    wl = _dated_watchlist(estate, [estate.clock.now.date() + timedelta(days=5)])
    cam = estate.camera()
    dep = estate.request(wl, [cam], hours=8)
    with estate.gov.transaction() as ctx:
        deployments.authorise(ctx, estate.officer2, dep)
        deployments.start(ctx, estate.admin, dep)
        assert deployments.live_watchlist(ctx, dep, cam, ctx.now()).next_change is None


def test_entry_past_review_refused_at_authorisation_even_for_a_window_already_open(estate: Estate) -> None:
    wl = _dated_watchlist(estate, [estate.clock.now.date()])
    cam = estate.camera()
    dep = estate.request(wl, [cam], hours=48, offset_hours=-1)
    estate.clock.advance(days=1)  # the window opened yesterday; the entry's review date has passed
    with pytest.raises(RuleViolation, match="due for review"), estate.gov.transaction() as ctx:
        deployments.authorise(ctx, estate.officer2, dep)


def test_old_snapshots_look_the_review_date_up(estate: Estate) -> None:
    wl = _dated_watchlist(estate, [estate.clock.now.date() + timedelta(days=1)])
    with estate.gov.transaction() as ctx:  # an item frozen before review dates were: no "review_date"
        entry_id = ctx.session.execute(select(WatchlistEntry.id).where(WatchlistEntry.watchlist_id == wl)).scalar_one()
        found = deployments._review_dates(ctx, [{"entry_id": entry_id}, {"entry_id": 10**6}])
    assert found == {entry_id: estate.clock.now.date() + timedelta(days=1), 10**6: None}
