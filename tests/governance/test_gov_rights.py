"""People's requests (openlfr.rights.requests): the statutory clock, the search by face with real
LFW faces, decisions with reasons, erasure under a request and the outcome letter, bad input
and the wrong people. Each test names the rule it pins.

The faces: Tony Blair is the requester (his request photo, a shared image and a watchlist entry
of another photo, and an alert's crop of a third); Colin Powell is someone else on the same
watchlist with an alert of his own; Adam Sandler only passed the camera (a non-match).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import cv2
import numpy as np
import pytest
from govkit import KEY, Clock, Estate
from sqlalchemy import func, select

from openlfr.audit import chain
from openlfr.errors import InputError, MultipleFacesError, NoFaceError, NotFoundError
from openlfr.governance import Governance, Policy, Role, deployments
from openlfr.governance.errors import PermissionDenied, RuleViolation
from openlfr.governance.retention import record_alert, record_media
from openlfr.rights import requests as rq
from openlfr.rights.clock import add_months
from openlfr.rights.keys import alert_ref, is_destroyed, media_bytes, request_ref
from openlfr.rights.letters import NOTHING_KEPT
from openlfr.store.models import (
    AuditEvent,
    LegalHold,
    MediaItem,
    RequestFinding,
    RightsRequest,
    SharedImage,
    WatchlistEntry,
)

PHOTOS = {  # LFW files (read in place)
    "requester": "Tony_Blair/Tony_Blair_0003.jpg", "listed": "Tony_Blair/Tony_Blair_0002.jpg",
    "crop": "Tony_Blair/Tony_Blair_0004.jpg", "other": "Colin_Powell/Colin_Powell_0001.jpg",
    "other_crop": "Colin_Powell/Colin_Powell_0002.jpg", "passer_by": "Adam_Sandler/Adam_Sandler_0001.jpg",
}


@pytest.fixture(scope="module")
def faces(data_dir: Path) -> dict[str, bytes]:
    """The photos' bytes; the alerts' crops are the centre of an LFW photo, as a camera crops a face."""
    out = {}
    for key, rel in PHOTOS.items():
        path = data_dir / "lfw" / rel
        if not path.is_file():
            pytest.skip(f"LFW photo {rel} not found under {data_dir / 'lfw'}")
        data = path.read_bytes()
        if key.endswith("crop"):
            img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
            data = cv2.imencode(".png", img[70:180, 70:180])[1].tobytes()
        out[key] = data
    out["two_people"] = (data_dir / "misc" / "two_people.jpg").read_bytes()
    out["no_face"] = cv2.imencode(".png", np.full((120, 120, 3), 128, np.uint8))[1].tobytes()
    return out


@pytest.fixture
def gov(db_url: str, tmp_path: Path, clock: Clock) -> Iterator[Governance]:
    """The store, with the real enrolment template function (shared images get real templates)."""
    from openlfr.face.analyzer import enrolment_template

    g = Governance(db_url, blob_root=tmp_path / "blobs", key=KEY, policy=Policy(), template_fn=enrolment_template,
                   clock=clock, migrate=False)
    yield g
    g.close()


@dataclass
class Scene:
    """The estate's live deployment over a watchlist of two shared images, an alert of each
    person, and a DPO at the estate and at the force."""

    e: Estate
    gov: Governance
    dep: int
    images: dict[str, int]  # listed / other -> shared image id
    entries: dict[str, int]
    alerts: dict[str, int]  # crop / other_crop -> alert id
    estate_dpo: object
    force_dpo: object

    def tx(self):
        return self.gov.transaction()

    def count(self, model: type) -> int:
        with self.gov.reading() as ctx:
            return ctx.session.execute(select(func.count()).select_from(model)).scalar_one()

    def events(self, action: str) -> list[AuditEvent]:
        with self.gov.reading() as ctx:
            return list(ctx.session.execute(select(AuditEvent).where(AuditEvent.action == action)
                                            .order_by(AuditEvent.seq)).scalars())

    def open(self, dpo: object = None, kind: str = "access", **kw: object) -> int:
        with self.tx() as ctx:
            return rq.open_request(ctx, dpo or self.estate_dpo, kind, "Tony Blair", "10 Downing St, London", **kw).id

    def ready(self, request_id: int, photo: bytes, dpo: object = None) -> list[RequestFinding]:
        """Verify, attach the photo and search; the findings."""
        dpo = dpo or self.estate_dpo
        with self.tx() as ctx:
            rq.verify_identity(ctx, dpo, request_id, "passport seen by J. Smith, ref V-123")
            rq.attach_photo(ctx, dpo, request_id, photo)
        with self.tx() as ctx:
            return rq.search(ctx, dpo, request_id)

    def confirm(self, findings: list[RequestFinding], dpo: object = None, verdict: str = "requester") -> None:
        with self.tx() as ctx:
            for f in findings:
                rq.review_finding(ctx, dpo or self.estate_dpo, f.id, verdict)

    def crop_readable(self, key: str = "crop") -> bool:
        with self.gov.reading() as ctx:
            media = ctx.session.execute(select(MediaItem).where(MediaItem.alert_id == self.alerts[key])).scalar_one()
            try:
                media_bytes(ctx, media)
            except NotFoundError:
                return False
            return True


@pytest.fixture
def scene(estate: Estate, gov: Governance, clock: Clock, faces: dict[str, bytes]) -> Scene:
    e = estate
    ag = e.agreement()
    images = {k: e.share(ag, faces[k], subject=f"S-{i}") for i, k in enumerate(("listed", "other"))}
    wl = e.watchlist(list(images.values()))
    cam = e.camera()
    dep = e.request(wl, [cam])
    with gov.transaction() as ctx:
        deployments.authorise(ctx, e.officer2, dep)
        deployments.start(ctx, e.admin, dep)
        entries = {k: ctx.session.execute(select(WatchlistEntry.id).where(WatchlistEntry.shared_image_id == i))
                   .scalar_one() for k, i in images.items()}
    alerts = {}
    with gov.transaction() as ctx:
        for key, entry in (("crop", "listed"), ("other_crop", "other")):
            alert = record_alert(ctx, dep, cam, 0.7, clock.now, entry_id=entries[entry])
            record_media(ctx, "crop", dep, cam, faces[key], clock.now, alert_id=alert.id)
            alerts[key] = alert.id
    return Scene(e, gov, dep, images, entries, alerts, e.user("estate-dpo", Role.DPO),
                 e.user("force-dpo", Role.DPO, org="force"))


# --- the clock ---------------------------------------------------------------------------------------
def test_one_calendar_month_with_the_month_end_rule() -> None:
    """Rule: due one calendar month after receipt, the month's last day where it has no such day."""
    at = datetime(2030, 1, 31, 15, 0, tzinfo=UTC)
    assert add_months(at, 1) == datetime(2030, 2, 28, 15, 0, tzinfo=UTC)
    assert add_months(datetime(2028, 1, 31, tzinfo=UTC), 1) == datetime(2028, 2, 29, tzinfo=UTC)  # leap year
    assert add_months(datetime(2030, 3, 3, 9, tzinfo=UTC), 1) == datetime(2030, 4, 3, 9, tzinfo=UTC)
    assert add_months(at, 3) == datetime(2030, 4, 30, 15, 0, tzinfo=UTC)  # an extension keeps the month end
    assert add_months(datetime(2030, 12, 15, tzinfo=UTC), 1) == datetime(2031, 1, 15, tzinfo=UTC)


def test_clock_extension_once_for_uk_gdpr_refused_under_part3_and_overdue(scene: Scene, clock: Clock) -> None:
    """Rules: the clock is visible (days left, overdue); UK GDPR allows one extension of two months
    with a reason, within the first month; Part 3 allows none; answered in time is counted."""
    s = scene
    late = s.open(received_at=datetime(2030, 1, 31, 10, 0, tzinfo=UTC))  # the clock is at 1 March 2030
    fresh = s.open()
    with s.tx() as ctx:
        v = rq.view(ctx, s.estate_dpo, late)
        assert v.regime == "uk_gdpr" and v.due_at == datetime(2030, 2, 28, 10, 0, tzinfo=UTC)
        assert v.overdue and v.days_left == -1
        v = rq.view(ctx, s.estate_dpo, fresh)
        assert v.due_at == datetime(2030, 4, 1, 9, 0, tzinfo=UTC) and not v.overdue and v.days_left == 31
    with pytest.raises(RuleViolation, match="within the first month"):
        with s.tx() as ctx:
            rq.extend(ctx, s.estate_dpo, late, "many records to search")
    with pytest.raises(InputError, match="reason for the extension is empty"):
        with s.tx() as ctx:
            rq.extend(ctx, s.estate_dpo, fresh, "  ")
    with s.tx() as ctx:
        assert rq.extend(ctx, s.estate_dpo, fresh, "many records to search").due_at == datetime(2030, 6, 1, 9, 0,
                                                                                               tzinfo=UTC)
    with pytest.raises(RuleViolation, match="already extended"):
        with s.tx() as ctx:
            rq.extend(ctx, s.estate_dpo, fresh, "again")
    police = s.open(s.force_dpo)
    with pytest.raises(RuleViolation, match="Part 3.*no extension"):
        with s.tx() as ctx:
            rq.extend(ctx, s.force_dpo, police, "complex")
    assert [e.details for e in s.events("request.extend.refused")][-1]
    with s.tx() as ctx:
        v = rq.view(ctx, s.force_dpo, police)
        assert v.regime == "dpa_part3" and not v.extended and v.due_at == datetime(2030, 4, 1, 9, tzinfo=UTC)
        counts = rq.public_counts(ctx)
    assert (counts.received, counts.answered, counts.open_overdue) == (3, 0, 1)
    # answered: one in time (a refusal needs no verified identity), one late
    with s.tx() as ctx:
        rq.decide(ctx, s.estate_dpo, late, "refused", ["manifestly_unfounded"])
        rq.decide(ctx, s.force_dpo, police, "refused", ["identity_not_verified"])
    clock.advance(days=40)
    with s.tx() as ctx:
        counts = rq.public_counts(ctx)
        assert rq.view(ctx, s.estate_dpo, late).answered_in_time is False
        assert rq.view(ctx, s.estate_dpo, fresh).overdue is False  # extended to June
    assert counts == rq.RequestCounts(received=3, answered=2, answered_in_time=1, refused=2, open_overdue=0)


# --- search, access, erasure -------------------------------------------------------------------------
def test_search_finds_the_requesters_records_and_nobody_elses(scene: Scene, faces: dict[str, bytes]) -> None:
    """Rule: the search compares the requester's face with every gallery the organisation holds,
    each with its own model at the calibrated threshold, and finds their records only; the answer
    waits for a person's verdict on each finding; the photo is deleted when the request is decided."""
    s = scene
    rid = s.open()
    found = s.ready(rid, faces["requester"])
    got = {(f.kind, f.object_id) for f in found}
    assert got == {("alert", s.alerts["crop"]), ("watchlist_entry", s.entries["listed"]),
                   ("shared_image", s.images["listed"])}
    for f in found:
        assert f.score >= f.threshold == pytest.approx(0.42) and f.model_id.startswith("sface")
    with pytest.raises(RuleViolation, match="not reviewed yet"):
        with s.tx() as ctx:
            rq.decide(ctx, s.estate_dpo, rid, "granted")
    s.confirm(found)
    with s.tx() as ctx:
        view = rq.view(ctx, s.estate_dpo, rid)
        photo = ctx.session.get(RightsRequest, rid).photo_blob
    assert view.has_photo and view.requester_name == "Tony Blair" and view.status == "searched"
    alert_line = next(f.summary for f in view.findings if f.kind == "alert")
    assert alert_line.startswith(f"alert {s.alerts['crop']}: camera cam1") and "person 0" not in alert_line
    assert all("S-0" not in f.summary and "person" not in f.summary for f in view.findings)  # no label, no subject ref
    with pytest.raises(RuleViolation, match="cannot be 'nothing held'"):
        with s.tx() as ctx:
            rq.decide(ctx, s.estate_dpo, rid, "nothing_held")
    with s.tx() as ctx:
        rq.decide(ctx, s.estate_dpo, rid, "granted")
        text = rq.letter(ctx, s.estate_dpo, rid)
        assert ctx.session.get(RightsRequest, rid).photo_blob is None
    assert not s.gov.blob_store.exists(photo) and photo not in s.gov.blob_store.ids()  # files or database rows
    assert "Tony Blair" in text and f"alert {s.alerts['crop']}" in text
    assert f"alert {s.alerts['other_crop']}" not in text
    assert "has now been deleted" in text and "ico.org.uk" in text
    [decided] = [e for e in s.events("request.decide") if e.object_id == str(rid)]
    assert json.loads(decided.details)["letter_sha256"] == hashlib.sha256(text.encode()).hexdigest()
    assert "Tony Blair" not in decided.details  # the note and name are sealed


def test_a_non_match_is_answered_nothing_held_and_told_nothing_was_kept(scene: Scene, faces: dict[str, bytes]) -> None:
    """Rule: a person found nowhere gets 'nothing held', and the letter says plainly what the
    system keeps of people who do not match."""
    s = scene
    rid = s.open()
    assert s.ready(rid, faces["passer_by"]) == []
    with pytest.raises(RuleViolation, match="nothing_held"):
        with s.tx() as ctx:
            rq.decide(ctx, s.estate_dpo, rid, "granted")
    with s.tx() as ctx:
        req = rq.decide(ctx, s.estate_dpo, rid, "nothing_held")
        assert req.photo_blob is None
        text = rq.letter(ctx, s.estate_dpo, rid)
    assert "We found nothing of you" in text and NOTHING_KEPT in text and "Records of you" not in text
    [search] = [e for e in s.events("request.search") if e.object_id == str(rid)]
    details = json.loads(search.details)
    assert details["found"] == 0 and details["searched"] == {"alert": 2, "shared_image": 2, "watchlist_entry": 2}


def test_erasure_under_a_request_shreds_the_alert_and_the_chain_verifies(scene: Scene, faces: dict[str, bytes]) -> None:
    """Rules: an erasure request may follow an access request and reuse its confirmed findings; an
    operator erases its alerts (crop gone, key destroyed, 'erased under request R' audited) but
    not the force's images (decided 'partly', not_held_by_us); the supplying force's DPO erases
    those; the audit chain still verifies."""
    s = scene
    access = s.open()
    s.confirm(s.ready(access, faces["requester"]))
    with s.tx() as ctx:
        rq.decide(ctx, s.estate_dpo, access, "granted")
    erasure = s.open(kind="erasure", follows_id=access)
    with s.tx() as ctx:
        copied = rq.view(ctx, s.estate_dpo, erasure).findings
        assert {f.verdict for f in copied} == {"requester"} and len(copied) == 3
        rq.verify_identity(ctx, s.estate_dpo, erasure, "driving licence seen by J. Smith, ref V-124")
    with pytest.raises(RuleViolation, match="supplied by Met Police.*not_held_by_us"):
        with s.tx() as ctx:
            rq.decide(ctx, s.estate_dpo, erasure, "granted")
    assert s.crop_readable() and s.events("request.decide.refused")  # nothing changed, refusal audited
    with s.tx() as ctx:
        rq.decide(ctx, s.estate_dpo, erasure, "partly", ["not_held_by_us"])
        text = rq.letter(ctx, s.estate_dpo, erasure)
        assert is_destroyed(ctx, alert_ref(s.alerts["crop"]))
        assert not is_destroyed(ctx, alert_ref(s.alerts["other_crop"]))
        assert ctx.session.get(SharedImage, s.images["listed"]).deleted_at is None  # the force's to erase
    assert not s.crop_readable() and s.crop_readable("other_crop")
    assert "supplied by Met Police" in text and "Records of you that we have not erased" in text
    erased = s.events("request.erased")
    assert [(e.object_type, e.object_id) for e in erased] == [("alert", str(s.alerts["crop"]))]
    assert json.loads(erased[0].details) == {"request": erasure, "reason": f"erased under request {erasure}"}
    assert json.loads(s.events("alert.erase")[0].details)["request"] == erasure
    # the supplying force's DPO searches its own holdings and erases its images
    police = s.open(s.force_dpo, kind="erasure")
    found = s.ready(police, faces["requester"], s.force_dpo)
    assert {(f.kind, f.object_id) for f in found} == {("watchlist_entry", s.entries["listed"]),
                                                       ("shared_image", s.images["listed"])}
    s.confirm(found, s.force_dpo)
    with s.tx() as ctx:
        rq.decide(ctx, s.force_dpo, police, "granted")
    with s.tx() as ctx:
        image = ctx.session.get(SharedImage, s.images["listed"])
        assert image.deleted_at is not None and image.template_blob is None and image.image_blob is None
        assert ctx.session.get(WatchlistEntry, s.entries["listed"]).removed_at is not None
        assert ctx.session.get(SharedImage, s.images["other"]).deleted_at is None
    assert len(s.events("request.erased")) == 3
    with s.gov.reading() as ctx:
        assert chain.verify(ctx.session).ok


def test_an_alert_under_legal_hold_is_not_erased(scene: Scene, faces: dict[str, bytes], clock: Clock) -> None:
    """Rule: a legal hold beats erasure: a granted erasure is refused with nothing changed; a
    partial one giving legal_claims keeps the held alert."""
    s = scene
    rid = s.open(kind="erasure")
    found = [f for f in s.ready(rid, faces["requester"]) if f.kind == "alert"]
    s.confirm(found)
    with s.tx() as ctx:
        others = [f for f in rq.view(ctx, s.estate_dpo, rid).findings if f.kind != "alert"]
        for f in others:
            rq.review_finding(ctx, s.estate_dpo, f.id, "someone_else")
        admin = ctx.user_of(s.e.admin)
        ctx.session.add(LegalHold(alert_id=s.alerts["crop"], proceeding="R v Doe", review_date=date(2030, 6, 1),
                                  placed_by_id=admin.id, placed_at=clock.now))
    with pytest.raises(RuleViolation, match="legal hold.*legal_claims"):
        with s.tx() as ctx:
            rq.decide(ctx, s.estate_dpo, rid, "granted")
    assert s.crop_readable() and s.events("request.decide.refused")
    with s.tx() as ctx:
        assert ctx.session.get(RightsRequest, rid).decided_at is None
        rq.decide(ctx, s.estate_dpo, rid, "partly", ["legal_claims"])
        assert "kept for legal proceedings" in rq.letter(ctx, s.estate_dpo, rid)
    assert s.crop_readable() and not s.events("request.erased")


# --- bad input, wrong people ---------------------------------------------------------------------------
def test_bad_input_is_refused_audited_and_changes_nothing(scene: Scene, faces: dict[str, bytes]) -> None:
    """Rule: bad input gives one clear error, stores nothing, and the refusal is audited."""
    s = scene
    rid = s.open()
    with s.tx() as ctx:
        blobs_before = s.gov.blob_store.ids()  # files, or rows of the database (PostgreSQL)
    cases = [
        (lambda ctx: rq.open_request(ctx, s.estate_dpo, "gossip", "A", "a@b"), InputError, "unknown request kind",
         "request.open"),
        (lambda ctx: rq.open_request(ctx, s.estate_dpo, "access", "  ", "a@b"), InputError, "name is empty",
         "request.open"),
        (lambda ctx: rq.open_request(ctx, s.estate_dpo, "access", "A", "a@b", received_at=datetime(2031, 1, 1,
                                                                                                  tzinfo=UTC)),
         InputError, "in the future", "request.open"),
        (lambda ctx: rq.view(ctx, s.estate_dpo, 9999), NotFoundError, "request 9999 does not exist", "request.view"),
        (lambda ctx: rq.review_finding(ctx, s.estate_dpo, 9999, "requester"), NotFoundError, "finding 9999",
         "request.finding"),
        (lambda ctx: rq.attach_photo(ctx, s.estate_dpo, rid, faces["no_face"]), NoFaceError,
         "the requester's photo: no face found", "request.photo"),
        (lambda ctx: rq.attach_photo(ctx, s.estate_dpo, rid, faces["two_people"]), MultipleFacesError,
         "the requester's photo: 2 faces found", "request.photo"),
        (lambda ctx: rq.attach_photo(ctx, s.estate_dpo, rid, b"not an image"), InputError, "requester's photo",
         "request.photo"),
        (lambda ctx: rq.verify_identity(ctx, s.estate_dpo, rid, "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAA"),
         InputError, "looks like encoded data", "request.verify"),
        (lambda ctx: rq.verify_identity(ctx, s.estate_dpo, rid, "x" * 201), InputError, "at most 200",
         "request.verify"),
        (lambda ctx: rq.search(ctx, s.estate_dpo, rid), RuleViolation, "verify the requester's identity",
         "request.search"),
        (lambda ctx: rq.decide(ctx, s.estate_dpo, rid, "maybe"), InputError, "unknown decision", "request.decide"),
        (lambda ctx: rq.decide(ctx, s.estate_dpo, rid, "refused", ["because"]), InputError, "unknown reason",
         "request.decide"),
        (lambda ctx: rq.decide(ctx, s.estate_dpo, rid, "refused"), InputError, "needs at least one reason",
         "request.decide"),
        (lambda ctx: rq.decide(ctx, s.estate_dpo, rid, "refused", ["national_security"]), RuleViolation,
         "answered under UK GDPR", "request.decide"),
        (lambda ctx: rq.decide(ctx, s.estate_dpo, rid, "nothing_held"), RuleViolation, "identity is not verified",
         "request.decide"),
        (lambda ctx: rq.letter(ctx, s.estate_dpo, rid), RuleViolation, "not decided yet", "request.letter"),
    ]
    for work, error, match, action in cases:
        refusals = len(s.events(f"{action}.refused"))
        with pytest.raises(error, match=match):
            with s.tx() as ctx:
                work(ctx)
        assert len(s.events(f"{action}.refused")) == refusals + 1, action
    assert s.count(RightsRequest) == 1 and s.count(RequestFinding) == 0
    with s.tx() as ctx:
        req = ctx.session.get(RightsRequest, rid)
        assert req.photo_blob is None and req.identity_verified_at is None and req.decided_at is None
    assert s.gov.blob_store.ids() == blobs_before  # no photo stored


def test_only_the_addressed_dpo_acts_and_an_oversight_auditor_reads_without_the_requester(scene: Scene) -> None:
    """Rule: the DPO of the organisation the request is addressed to does everything; an
    oversight body's auditor may read the queue and a request, not the requester's fields or the
    letter; anyone else is refused, and the refusal audited."""
    s = scene
    rid = s.open()
    with pytest.raises(PermissionDenied, match="needs role dpo"):
        with s.tx() as ctx:
            rq.open_request(ctx, s.e.admin, "access", "A", "a@b")
    with pytest.raises(PermissionDenied, match="Met Police cannot"):
        with s.tx() as ctx:
            rq.view(ctx, s.force_dpo, rid)
    with pytest.raises(PermissionDenied, match="Met Police cannot"):
        with s.tx() as ctx:
            rq.verify_identity(ctx, s.force_dpo, rid, "passport ref V-1")
    with pytest.raises(PermissionDenied):
        with s.tx() as ctx:
            rq.decide(ctx, s.e.auditor, rid, "refused", ["manifestly_unfounded"])
    with pytest.raises(PermissionDenied):
        with s.tx() as ctx:
            rq.letter(ctx, s.e.auditor, rid)
    assert s.events("request.open.refused") and s.events("request.view.refused") and s.events("request.verify.refused")
    with s.tx() as ctx:
        seen = rq.view(ctx, s.e.auditor, rid)
        listed = rq.queue(ctx, s.e.auditor)
        assert rq.queue(ctx, s.force_dpo) == []
        mine = rq.queue(ctx, s.estate_dpo, open_only=True)
    assert seen.requester_name == seen.contact == rq.WITHHELD and seen.organisation == "Estate Ltd"
    assert [v.id for v in listed] == [rid] and listed[0].requester_name == rq.WITHHELD
    assert [v.requester_name for v in mine] == ["Tony Blair"]
    with s.gov.reading() as ctx:
        stored = ctx.session.get(RightsRequest, rid).requester_sealed
    assert stored.startswith(f"sealed:{request_ref(rid)}:") and "Tony" not in stored


def test_a_decided_requests_personal_details_are_erased_when_its_record_retention_ends(
        scene: Scene, faces: dict[str, bytes], clock: Clock) -> None:
    """Rule: a decided request keeps the requester's details for ``request_record_retention_days``
    (730 by default), then the sweep destroys its key; the counts stay."""
    from openlfr.governance.retention import sweep

    s = scene
    rid = s.open()
    assert s.ready(rid, faces["passer_by"]) == []
    with s.tx() as ctx:
        rq.decide(ctx, s.estate_dpo, rid, "nothing_held")
    clock.advance(days=729)
    with s.tx() as ctx:
        assert sweep(ctx).requests_erased == []
        assert rq.view(ctx, s.estate_dpo, rid).requester_name == "Tony Blair"
    clock.advance(days=2)
    with s.tx() as ctx:
        assert sweep(ctx).requests_erased == [rid]
    with s.tx() as ctx:
        view = rq.view(ctx, s.estate_dpo, rid)
        assert view.status == "erased" and view.requester_name == "[erased]" and view.decision == "nothing_held"
        assert is_destroyed(ctx, request_ref(rid))
        assert "[erased]" in rq.letter(ctx, s.estate_dpo, rid)
        assert rq.public_counts(ctx).answered == 1
        assert chain.verify(ctx.session).ok


def test_a_search_holds_no_write_lock_while_faces_are_compared(scene: Scene, faces: dict[str, bytes],
                                                                db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rule: the doors' search (``search_request``) compares faces outside any write transaction,
    so on SQLite a camera worker can commit an alert meanwhile; and the findings are the same
    as the one-transaction search's."""
    import sqlite3

    from openlfr.rights import search as search_module

    if not db_url.startswith("sqlite"):
        pytest.skip("PostgreSQL locks rows, not the database: nothing to show there")
    s = scene
    rid = s.open()
    with s.tx() as ctx:
        rq.verify_identity(ctx, s.estate_dpo, rid, "passport seen by J. Smith, ref V-123")
        rq.attach_photo(ctx, s.estate_dpo, rid, faces["requester"])
    real_compare, writes = search_module.compare, []

    def compare_while_a_camera_writes(gallery, photo, embed=search_module.embed_largest):
        db = sqlite3.connect(db_url.removeprefix("sqlite:///"), timeout=1)
        try:  # a writer, as a camera worker is, while the faces are being compared
            db.execute("BEGIN IMMEDIATE")
            db.rollback()
            writes.append("committed")
        except sqlite3.OperationalError as err:
            writes.append(str(err))
        finally:
            db.close()
        return real_compare(gallery, photo, embed)

    monkeypatch.setattr(search_module, "compare", compare_while_a_camera_writes)
    found = rq.search_request(s.gov, s.estate_dpo, rid)
    assert writes == ["committed"]
    with s.gov.reading() as ctx:
        rows = {(f.kind, f.object_id) for f in ctx.session.query(RequestFinding).filter_by(request_id=rid)}
    assert len(found) == len(rows) and ("alert", s.alerts["crop"]) in rows
    assert ("alert", s.alerts["other_crop"]) not in rows
