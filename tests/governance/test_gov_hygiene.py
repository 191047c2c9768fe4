"""Watchlist hygiene: categories from the fixed list (a warrant or court reference for the
wanted ones), the watchlist's composition criteria, pseudonymous subject references, the
minimum entry quality, and signage checked per deployment (not backdated, saying that facial
recognition is in use, an optional photo stored encrypted). Every refusal is audited and
stores nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from sqlalchemy import func, select

from openlfr.errors import InputError, NotFoundError
from openlfr.governance import PermissionDenied, Policy, Role, RuleViolation, agreements, cameras, deployments
from openlfr.governance import sharing, watchlists
from openlfr.governance.grounds import WatchlistCategory
from openlfr.governance.pseudonyms import check_subject_ref, name_or_birth_date, warrant_ref_problem
from openlfr.governance.schemas import SignageCreate, WatchlistAdd
from openlfr.store.models import (
    Agreement, AuditEvent, LedgerEntry, SharedImage, SignageRecord, Watchlist, WatchlistEntry,
)

from govkit import SIGN_TEXT, WARRANT, Estate, as_image


@pytest.fixture
def db_url(sqlite_url: str) -> str:
    """Input and rule checks in Python, not in the database:
    SQLite only (the PostgreSQL paths they take are tested on both databases in
    test_gov_rules.py and test_gov_store.py)."""
    return sqlite_url


WANTED, MISSING = WatchlistCategory.WANTED_BY_COURT.value, WatchlistCategory.MISSING_AT_RISK.value


def _refusals(estate: Estate, action: str) -> list[dict[str, Any]]:
    with estate.gov.transaction() as ctx:
        rows = ctx.session.execute(select(AuditEvent).where(AuditEvent.action == f"{action}.refused")
                                   .order_by(AuditEvent.seq)).scalars().all()
        return [json.loads(r.details) for r in rows]


def _count(estate: Estate, model: type) -> int:
    with estate.gov.transaction() as ctx:
        return ctx.session.execute(select(func.count()).select_from(model)).scalar_one()


def _refused(estate: Estate, action: str, models: list[type], err: type[Exception], match: str,
             act: Callable[[], object]) -> None:
    """``act()`` raises ``err`` matching ``match``, adds no row of ``models`` and no blob, and
    its refusal is audited as ``<action>.refused`` with the reason."""
    before = {m: _count(estate, m) for m in models}
    blobs = estate.gov.blob_store.ids()  # files, or rows of the database
    audited = len(_refusals(estate, action))
    with pytest.raises(err, match=match):
        act()
    assert {m: _count(estate, m) for m in models} == before
    assert estate.gov.blob_store.ids() == blobs
    refusals = _refusals(estate, action)
    assert len(refusals) == audited + 1 and match.split("(")[0].strip() in refusals[-1]["reason"]


def _share_fields(ag: int, **over: Any) -> dict[str, Any]:
    return {"agreement_id": ag, "category": WANTED, "reason": "warrant", "subject_ref": "MPS-2026-000123",
            "warrant_ref": WARRANT, "image_date": "2029-12-01"} | over


def _share(estate: Estate, fields: dict[str, Any], image: bytes = b"face") -> int:
    with estate.gov.transaction() as ctx:
        return sharing.share_image_from(ctx, estate.supplier, fields, as_image(image)).id


SHARED = [SharedImage, LedgerEntry]


# --- categories -------------------------------------------------------------------------------
def test_unknown_categories_refused_everywhere(estate: Estate) -> None:
    ag = estate.agreement()
    _refused(estate, "image.share", SHARED, InputError, "category", lambda: _share(estate, _share_fields(
        ag, category="wanted")))

    def agreement(categories: list[str]) -> Callable[[], object]:
        def act() -> object:
            with estate.gov.transaction() as ctx:
                return agreements.create_from(ctx, estate.supplier, dict(
                    operator=estate.operator, purpose="p", lawful_basis="b", valid_from=estate.clock.now,
                    valid_until=estate.clock.now.replace(year=2031), image_limit=5, allowed_categories=categories))
        return act

    _refused(estate, "agreement.create", [Agreement], InputError, "allowed_categories", agreement(["anyone"]))
    _refused(estate, "agreement.create", [Agreement], InputError, "allowed_categories", agreement([]))

    def watchlist(categories: list[str]) -> Callable[[], object]:
        def act() -> object:
            with estate.gov.transaction() as ctx:
                return watchlists.create_watchlist_from(ctx, estate.admin, dict(
                    name="wl-x", criteria="c", categories=categories, size_cap=5))
        return act

    _refused(estate, "watchlist.create", [Watchlist], InputError, "categories", watchlist(["wanted-violent"]))
    _refused(estate, "watchlist.create", [Watchlist], InputError, "categories", watchlist([]))
    with estate.gov.transaction() as ctx:
        row = watchlists.create_watchlist_from(ctx, estate.admin, dict(name="wl-ok", criteria="c",
                                                                       categories=[WANTED, MISSING], size_cap=5))
        assert row.categories == [WANTED, MISSING]


@pytest.mark.parametrize("warrant", ["", "warrant", "W1", "Tom Ridge 12"])
def test_a_wanted_category_needs_a_plausible_warrant_reference(estate: Estate, warrant: str) -> None:
    ag = estate.agreement()
    _refused(estate, "image.share", SHARED, InputError, "warrant or court reference refused",
             lambda: _share(estate, _share_fields(ag, warrant_ref=warrant)))


def test_the_warrant_reference_is_stored_and_audited_and_optional_for_protective_categories(estate: Estate) -> None:
    ag = estate.agreement()
    wanted = _share(estate, _share_fields(ag, warrant_ref="WA/2029/00123"), b"a")
    missing = _share(estate, _share_fields(ag, category=MISSING, warrant_ref=""), b"b")
    assert all(WatchlistCategory(c).rule.needs_reference == (c != MISSING) for c in WatchlistCategory)
    with estate.gov.transaction() as ctx:
        assert ctx.get(SharedImage, wanted, "image").warrant_ref == "WA/2029/00123"
        assert ctx.get(SharedImage, missing, "image").warrant_ref == ""
        events = ctx.session.execute(select(AuditEvent).where(AuditEvent.action == "image.share")
                                     .order_by(AuditEvent.seq)).scalars().all()
    assert [json.loads(e.details)["warrant_ref"] for e in events] == ["WA/2029/00123", ""]


def test_an_entry_outside_the_watchlists_categories_is_refused(estate: Estate) -> None:
    ag = estate.agreement()
    wanted, missing = estate.share(ag, b"a", subject="S-1"), estate.share(ag, b"b", category=MISSING, subject="S-2")
    wl = estate.watchlist([wanted], categories=(WANTED,))

    def add() -> object:
        with estate.gov.transaction() as ctx:
            return watchlists.add_entry(ctx, estate.admin, WatchlistAdd(
                watchlist_id=wl, shared_image_id=missing, label="x", reason="r",
                review_date=estate.clock.now.date()))

    _refused(estate, "watchlist.add", [WatchlistEntry], RuleViolation,
             f"is of category '{MISSING}', which is not among the categories", add)


def test_legacy_free_text_rows_read_and_take_no_new_entries(estate: Estate) -> None:
    """Rows from before the fixed list (free-text categories, watchlists without any) are read
    as they are; a watchlist without categories takes no new entry."""
    ag = estate.agreement()
    image = estate.share(ag, b"a")
    wl = estate.watchlist([])
    with estate.gov.transaction() as ctx:
        ctx.get(Agreement, ag, "agreement").allowed_categories = ["wanted-violent"]
        ctx.get(SharedImage, image, "image").category = "wanted-violent"
        ctx.get(Watchlist, wl, "watchlist").categories = []
    with estate.gov.transaction() as ctx:
        assert [a.allowed_categories for a in agreements.list_agreements(ctx, estate.supplier)] == [["wanted-violent"]]
        assert [w.categories for w in watchlists.list_watchlists(ctx, estate.admin)] == [[]]
        assert [v.category for v in sharing.force_ledger(ctx, estate.supplier)] == [WANTED]  # the ledger row
    with pytest.raises(RuleViolation, match="none recorded"), estate.gov.transaction() as ctx:
        watchlists.add_entry(ctx, estate.admin, WatchlistAdd(watchlist_id=wl, shared_image_id=image, label="x",
                                                             reason="r", review_date=estate.clock.now.date()))


# --- subject references -----------------------------------------------------------------------
NAMES_AND_BIRTHS = [
    "Tom Ridge, dob 1945-08-26", "Tom Ridge", "RIDGE, TOM", "TOM RIDGE 01", "Tom_Ridge", "ridge01", "Ridge-0001",
    "Li-0001", "RIDGE", "S-1 DOB", "SUBJ-1 born 1945", "d.o.b. 26", "REF-1 b. 1945", "REF 1945-08-26",
    "REF 1945/08/26", "26/08/1945", "26-08-45", "8.26.1945", "REF 26 Aug 1945", "REF 26th August 1945",
    "REF-26AUG45", "Aug 26, 1945 REF1", "née SMITH 1", "S-1 (RIDGE)",
]
PSEUDONYMS = ["MPS-2026-000123", "SUBJ-0001", "CR/01/4567/26", "S-1", "KENT-1", "SUBJREF-7781", "WR 2026 00012",
              "X#12", "MPS:2026:77", "REF-2026", "S-1A"]


@pytest.mark.parametrize("ref", NAMES_AND_BIRTHS)
def test_names_and_dates_of_birth_are_refused(ref: str) -> None:
    assert name_or_birth_date(ref) is not None
    with pytest.raises(InputError, match="subject reference refused"):
        check_subject_ref(ref)


@pytest.mark.parametrize("ref", PSEUDONYMS)
def test_pseudonymous_codes_are_accepted(ref: str) -> None:
    assert name_or_birth_date(ref) is None and check_subject_ref(f" {ref} ") == ref


def test_warrant_reference_shapes() -> None:
    assert [warrant_ref_problem(r) for r in ("WA/2026/00123", "T20260123", "MC-01-2026-000456")] == [None] * 3
    assert all(warrant_ref_problem(r) for r in ("", "warrant", "W1", "see file", "Tom Ridge 12", "WA 1"))


def test_a_name_as_subject_reference_is_refused_at_sharing(estate: Estate) -> None:
    ag = estate.agreement()
    _refused(estate, "image.share", SHARED, InputError, "subject reference refused",
             lambda: _share(estate, _share_fields(ag, subject_ref="Tom Ridge, dob 1945-08-26")))


# --- minimum entry quality ----------------------------------------------------------------------
def _degraded_face(data_dir: Path) -> tuple[bytes, bytes]:
    """(a real LFW photo, the same face downscaled until it only just passes enrolment's own
    limits): made here, never stored."""
    from openlfr.face.analyzer import default_analyzer

    raw = (data_dir / "lfw" / "Colin_Powell" / "Colin_Powell_0001.jpg").read_bytes()
    img = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)
    analyzer = default_analyzer()
    for scale in np.arange(0.8, 0.45, -0.02):
        small = cv2.resize(img, None, fx=float(scale), fy=float(scale), interpolation=cv2.INTER_AREA)
        faces = analyzer.analyze(cv2.cvtColor(small, cv2.COLOR_BGR2RGB))
        if len(faces) == 1 and faces[0].quality.acceptable and faces[0].quality.score < Policy().min_entry_quality:
            return raw, cv2.imencode(".png", small)[1].tobytes()
    raise AssertionError("no downscaled copy lies between enrolment's limits and the quality floor")


def test_a_low_quality_face_is_refused_at_the_default_floor(estate: Estate, data_dir: Path) -> None:
    from openlfr.face.analyzer import enrolment_template

    assert Policy().min_entry_quality > 0 and estate.gov.policy.min_entry_quality == Policy().min_entry_quality
    good, poor = _degraded_face(data_dir)
    ag = estate.agreement()
    prepared = sharing.prepare_image(enrolment_template, poor)
    assert 0 < prepared.quality < estate.gov.policy.min_entry_quality

    def share(image: sharing.PreparedImage) -> int:
        with estate.gov.transaction() as ctx:
            return sharing.share_image(ctx, estate.supplier, sharing.ShareImage(**_share_fields(ag)), image).id

    _refused(estate, "image.share", SHARED, RuleViolation, "quality score", lambda: share(prepared))
    fine = sharing.prepare_image(enrolment_template, good)
    assert fine.quality >= estate.gov.policy.min_entry_quality and share(fine)


# --- signage ------------------------------------------------------------------------------------
def _signage(estate: Estate, cam: int, **over: Any) -> Callable[[], object]:
    photo = over.pop("photo", None)
    fields = {"camera_id": cam, "text": SIGN_TEXT, "checked_on": estate.clock.now.date()} | over

    def act() -> object:
        with estate.gov.transaction() as ctx:
            return cameras.record_signage_from(ctx, estate.admin, fields, photo)
    return act


def test_signage_must_not_be_backdated_or_future(estate: Estate) -> None:
    from datetime import timedelta

    cam, today = estate.camera(signage=False), estate.clock.now.date()
    days = estate.gov.policy.signage_backdate_days
    _refused(estate, "signage.record", [SignageRecord], InputError, "before it is recorded",
             _signage(estate, cam, checked_on=today - timedelta(days=days + 1)))
    _refused(estate, "signage.record", [SignageRecord], InputError, "in the future",
             _signage(estate, cam, checked_on=today + timedelta(days=1)))
    assert _signage(estate, cam, checked_on=today - timedelta(days=days))()


@pytest.mark.parametrize("text", ["LFR in use", "CCTV in operation", "Cameras recording", "recognition in use"])
def test_signage_must_say_facial_recognition_is_in_use(estate: Estate, text: str) -> None:
    cam = estate.camera(signage=False)
    _refused(estate, "signage.record", [SignageRecord], InputError, "facial recognition",
             _signage(estate, cam, text=text))
    assert _signage(estate, cam, text="Live FACIAL-recognition cameras in use today")()


def test_a_signage_check_for_a_deployment_must_be_of_it(estate: Estate) -> None:
    ag = estate.agreement()
    wl = estate.watchlist([estate.share(ag, b"a")])
    cam, other = estate.camera("c1", signage=False), estate.camera("c2", signage=False)
    dep = estate.request(wl, [cam])
    _refused(estate, "signage.record", [SignageRecord], InputError, "does not use camera",
             _signage(estate, other, deployment_id=dep))
    # a deployment of another organisation: the force's own operator admin records no check on it
    force_ops = estate.user("force-ops", Role.OPERATOR_ADMIN, org="force")
    with estate.gov.transaction() as ctx:
        force_cam = cameras.add_camera(ctx, force_ops, cameras.CameraCreate(name="fc", location="yard")).id
    with pytest.raises(PermissionDenied, match="not of"), estate.gov.transaction() as ctx:
        cameras.record_signage(ctx, force_ops, SignageCreate(camera_id=force_cam, deployment_id=dep, text=SIGN_TEXT,
                                                             checked_on=estate.clock.now.date()))
    assert _refusals(estate, "signage.record")[-1]["reason"].startswith(f"deployment {dep} is not of")
    _refused(estate, "signage.record", [SignageRecord], NotFoundError, "deployment 999 does not exist",
             _signage(estate, cam, deployment_id=999))


def test_start_needs_a_check_recorded_for_this_deployment(estate: Estate) -> None:
    ag = estate.agreement()
    wl = estate.watchlist([estate.share(ag, b"a")])
    cam = estate.camera(signage=False)
    first, second = estate.request(wl, [cam]), estate.request(wl, [cam], offset_hours=9)
    _signage(estate, cam)()  # the camera alone
    estate.signage(second, [cam])  # another deployment's
    with estate.gov.transaction() as ctx:
        deployments.authorise(ctx, estate.officer2, first)
    before = len(_refusals(estate, "deployment.start"))
    with pytest.raises(RuleViolation, match=f"no signage check recorded for deployment {first}"), \
            estate.gov.transaction() as ctx:
        deployments.start(ctx, estate.admin, first)
    assert len(_refusals(estate, "deployment.start")) == before + 1
    estate.signage(first, [cam])
    with estate.gov.transaction() as ctx:
        assert deployments.start(ctx, estate.admin, first).status == "live"
        assert cameras.current_signage(ctx, cam, estate.clock.now.date(), deployment_id=first).deployment_id == first


def test_a_signage_photo_is_gated_and_stored_encrypted(estate: Estate) -> None:
    import hashlib

    cam = estate.camera(signage=False)
    photo = as_image(b"a photo of the notice")
    _refused(estate, "signage.record", [SignageRecord], InputError, "JPEG or PNG",
             _signage(estate, cam, photo=b"GIF89a" + bytes(100)))
    row = _signage(estate, cam, photo=photo)()
    store = estate.gov.blob_store  # its files, or its rows in the database
    sealed = {b: store.sealed(b) for b in store.ids()}
    with estate.gov.transaction() as ctx:
        stored = ctx.get(SignageRecord, row.id, "signage record")
        clean = cameras.signage_photo(ctx, stored)
    assert clean is not None and hashlib.sha256(clean).hexdigest() == stored.photo_sha256
    assert cv2.imdecode(np.frombuffer(clean, np.uint8), cv2.IMREAD_COLOR) is not None
    assert stored.photo_blob in sealed  # the photo's own blob
    assert all(clean not in body and b"IHDR" not in body for body in sealed.values())
    with estate.gov.transaction() as ctx:
        event = ctx.session.execute(select(AuditEvent).where(AuditEvent.action == "signage.record")
                                    .order_by(AuditEvent.seq.desc())).scalars().first()
    assert json.loads(event.details)["photo_sha256"] == stored.photo_sha256
