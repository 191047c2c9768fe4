"""One test per governance rule; each fails if the rule is not enforced."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest
from sqlalchemy import func, select

from openlfr.errors import InputError, NotFoundError
from openlfr.governance import OrgKind, PermissionDenied, RuleViolation
from openlfr.governance import agreements, cameras, deployments, retention, sharing, watchlists
from openlfr.governance.schemas import CameraCreate, ShareImage, WatchlistAdd
from openlfr.store.models import Deployment, LedgerEntry, SharedImage, WatchlistEntry

from govkit import Estate, as_image, fake_template


def test_share_refused_before_approval(estate: Estate) -> None:
    ag = estate.agreement(approve=False)
    with pytest.raises(RuleViolation, match="draft, not active"):
        estate.share(ag, b"img")


def test_share_refused_before_valid_from(estate: Estate) -> None:
    ag = estate.agreement(start_offset_days=2)
    with pytest.raises(RuleViolation, match="sharing refused"):
        estate.share(ag, b"img")
    estate.clock.advance(days=2)
    assert estate.share(ag, b"img") > 0


def test_share_refused_after_valid_until_even_before_the_sweep(estate: Estate) -> None:
    ag = estate.agreement(days=1)
    estate.share(ag, b"img-a")
    estate.clock.advance(days=1)
    with pytest.raises(RuleViolation, match="sharing refused"):
        estate.share(ag, b"img-b")


def test_share_refused_while_suspended_and_after_end(estate: Estate) -> None:
    ag = estate.agreement()
    with estate.gov.transaction() as ctx:
        agreements.suspend(ctx, estate.supplier, ag, "review")
    with pytest.raises(RuleViolation, match="suspended"):
        estate.share(ag, b"img")
    with estate.gov.transaction() as ctx:
        agreements.resume(ctx, estate.officer, ag)
    estate.share(ag, b"img")
    with estate.gov.transaction() as ctx:
        agreements.end(ctx, estate.supplier, ag, "operation over")
    with pytest.raises(RuleViolation, match="ended"):
        estate.share(ag, b"img-2")


def test_share_refused_over_the_limit(estate: Estate) -> None:
    ag = estate.agreement(limit=2)
    first = estate.share(ag, b"a")
    estate.share(ag, b"b")
    with pytest.raises(RuleViolation, match="at most 2 images"):
        estate.share(ag, b"c")
    # The limit counts live images: after a revocation one more may be shared.
    with estate.gov.transaction() as ctx:
        sharing.revoke_image(ctx, estate.supplier, first, "newer image available")
    estate.share(ag, b"c")


def test_share_refused_in_a_category_not_allowed(estate: Estate) -> None:
    ag = estate.agreement(categories=("wanted_by_court",))
    with pytest.raises(RuleViolation, match="category 'missing_at_risk' is not allowed"):
        estate.share(ag, b"img", category="missing_at_risk")


def test_under_18_refused_unless_agreement_allows(estate: Estate) -> None:
    ag = estate.agreement()
    with pytest.raises(RuleViolation, match="under-18"):
        estate.share(ag, b"child", under_18=True)
    image = estate.share(ag, b"adult")
    wl = estate.watchlist([])
    with pytest.raises(RuleViolation, match="under-18"), estate.gov.transaction() as ctx:
        watchlists.add_entry(ctx, estate.admin, WatchlistAdd(
            watchlist_id=wl, shared_image_id=image, label="x", reason="r",
            review_date=estate.clock.now.date(), under_18=True))


def test_under_18_allowed_when_agreement_allows(estate: Estate) -> None:
    ag = estate.agreement(under_18=True)
    image = estate.share(ag, b"child", under_18=True)
    estate.watchlist([image])


def test_only_the_agreements_supplier_can_share(estate: Estate) -> None:
    ag = estate.agreement()
    data = ShareImage(agreement_id=ag, category="wanted_by_court", warrant_ref="WA-2029-00123", reason="r",
                      subject_ref="S-1", image_date=date(2029, 1, 1))
    for actor, err in [(estate.admin, PermissionDenied), (estate.auditor, PermissionDenied),
                       ("nobody", PermissionDenied)]:
        with pytest.raises(err), estate.gov.transaction() as ctx:
            sharing.share_image(ctx, actor, data, b"img")


def test_requester_cannot_authorise(estate: Estate) -> None:
    # the force runs its own deployment: it shares with itself, its operator admin builds the
    # watchlist and camera, one of its officers requests, and only another officer may authorise
    from openlfr.governance.schemas import Role, WatchlistAdd, WatchlistCreate

    force_ops = estate.user("force-ops", Role.OPERATOR_ADMIN, org="force")
    ag = estate.agreement(operator=estate.force)
    image = estate.share(ag, b"img")
    with estate.gov.transaction() as ctx:
        wl = watchlists.create_watchlist(ctx, force_ops, WatchlistCreate(
            name="force-wl", criteria="c", categories=["wanted_by_court"], size_cap=5)).id
        watchlists.add_entry(ctx, force_ops, WatchlistAdd(watchlist_id=wl, shared_image_id=image, label="x",
                                                          reason="warrant", review_date=estate.clock.now.date()))
        cam = cameras.add_camera(ctx, force_ops, CameraCreate(name="force-cam", location="station")).id
    with estate.gov.transaction() as ctx:
        dep = deployments.request(ctx, estate.officer2, _request(estate, wl, [cam], police=True)).id
    with pytest.raises(PermissionDenied, match="requester"), estate.gov.transaction() as ctx:
        deployments.authorise(ctx, estate.officer2, dep)
    with pytest.raises(PermissionDenied, match="authorising_officer"), estate.gov.transaction() as ctx:
        deployments.authorise(ctx, estate.admin, dep)
    with estate.gov.transaction() as ctx:
        assert deployments.authorise(ctx, estate.officer, dep).status == "authorised"


def _request(estate: Estate, wl: int, cams: list[int], **over: object):  # type: ignore[no-untyped-def]
    from openlfr.governance.schemas import DeploymentRequest

    from govkit import grounds

    return DeploymentRequest(purpose="p", watchlist_id=wl, camera_ids=cams, start=estate.clock.now,
                             end=estate.clock.now + timedelta(hours=4), threshold=0.6, **grounds(**over))


def test_no_templates_outside_a_live_deployment(estate: Estate) -> None:
    ag = estate.agreement()
    images = [estate.share(ag, f"img{i}".encode()) for i in range(3)]
    wl = estate.watchlist(images)
    cam, other_cam = estate.camera("cam1"), estate.camera("cam2")
    dep = estate.request(wl, [cam], offset_hours=1, hours=2)
    now = estate.clock.now

    def live(at):  # type: ignore[no-untyped-def]
        with estate.gov.transaction() as ctx:
            return deployments.live_watchlist(ctx, dep, cam, at)

    with pytest.raises(RuleViolation, match="requested, not live"):
        live(now + timedelta(hours=1, minutes=5))
    with estate.gov.transaction() as ctx:
        deployments.authorise(ctx, estate.officer2, dep)
    with pytest.raises(RuleViolation, match="authorised, not live"):
        live(now + timedelta(hours=1, minutes=5))
    with pytest.raises(RuleViolation, match="only from"), estate.gov.transaction() as ctx:
        deployments.start(ctx, estate.admin, dep)  # before its window
    estate.clock.advance(hours=1)
    with estate.gov.transaction() as ctx:
        deployments.start(ctx, estate.admin, dep)

    got = live(estate.clock.now)
    from openlfr.face.image_gate import gate_image

    expected = np.stack([fake_template(gate_image(as_image(f"img{i}".encode())).data)[0] for i in range(3)])
    assert got.templates.shape == (3, 128) and got.templates.dtype == np.float32
    np.testing.assert_allclose(got.templates, expected, atol=1e-7)
    assert got.threshold == 0.6 and len(got.snapshot_hash) == 64
    with pytest.raises(RuleViolation, match="outside"):
        live(estate.clock.now + timedelta(hours=2))  # past its end
    with pytest.raises(RuleViolation, match="outside"):
        live(estate.clock.now - timedelta(minutes=1))  # before its start
    with pytest.raises(RuleViolation, match="not part of"), estate.gov.transaction() as ctx:
        deployments.live_watchlist(ctx, dep, other_cam, estate.clock.now)
    with estate.gov.transaction() as ctx:
        deployments.end(ctx, estate.admin, dep, "done")
    with pytest.raises(RuleViolation, match="ended, not live"):
        live(estate.clock.now)


def test_threshold_locked_once_authorised(estate: Estate) -> None:
    ag = estate.agreement()
    wl = estate.watchlist([estate.share(ag, b"img")])
    dep = estate.request(wl, [estate.camera()])
    with estate.gov.transaction() as ctx:
        assert deployments.set_threshold(ctx, estate.admin, dep, 0.7).threshold == 0.7
        deployments.authorise(ctx, estate.officer2, dep)
    with pytest.raises(RuleViolation, match="locked"), estate.gov.transaction() as ctx:
        deployments.set_threshold(ctx, estate.admin, dep, 0.5)
    with estate.gov.transaction() as ctx:
        deployments.start(ctx, estate.admin, dep)
    with pytest.raises(RuleViolation, match="locked"), estate.gov.transaction() as ctx:
        deployments.set_threshold(ctx, estate.admin, dep, 0.5)
    with estate.gov.transaction() as ctx:
        assert ctx.session.get(Deployment, dep).threshold == 0.7
        assert deployments.live_watchlist(ctx, dep, 1, estate.clock.now).threshold == 0.7


def test_purge_on_expiry_keeps_ledger_rows(estate: Estate) -> None:
    ag = estate.agreement(days=2)
    images = [estate.share(ag, f"img{i}".encode(), subject=f"S-{i}") for i in range(3)]
    wl = estate.watchlist(images)
    dep = estate.request(wl, [estate.camera()], hours=72)  # the longest allowed; outlives the agreement
    with estate.gov.transaction() as ctx:
        deployments.authorise(ctx, estate.officer2, dep)
        deployments.start(ctx, estate.admin, dep)
        blob_ids = [ctx.session.get(SharedImage, i).image_blob for i in images]
        snapshot_blob = ctx.session.get(Deployment, dep).snapshot_blob
    store = estate.gov.blob_store
    assert all(store.exists(b) for b in blob_ids) and store.exists(snapshot_blob)

    estate.clock.advance(days=2)
    with estate.gov.transaction() as ctx:
        report = retention.sweep(ctx)
    assert report.agreements_expired == [ag]
    assert not any(store.exists(b) for b in blob_ids) and not store.exists(snapshot_blob)
    with estate.gov.transaction() as ctx:
        rows = ctx.session.execute(select(SharedImage)).scalars().all()
        assert all(r.image_blob is None and r.template_blob is None and r.deleted_at for r in rows)
        kinds = ctx.session.execute(select(LedgerEntry.kind).order_by(LedgerEntry.id)).scalars().all()
        assert kinds == ["shared"] * 3 + ["deleted"] * 3
        assert ctx.session.execute(select(func.count()).select_from(WatchlistEntry)
                                   .where(WatchlistEntry.removed_at.is_(None))).scalar_one() == 0
        d = ctx.session.get(Deployment, dep)
        assert d.status == "ended" and d.snapshot_blob is None and len(d.snapshot_hash) == 64
        view = sharing.force_ledger(ctx, estate.supplier)
    assert [v.status for v in view] == ["purged"] * 3
    assert {v.subject_ref for v in view} == {"S-0", "S-1", "S-2"}
    with pytest.raises(RuleViolation), estate.gov.transaction() as ctx:
        deployments.live_watchlist(ctx, dep, 1, estate.clock.now)


def test_ending_an_agreement_purges_its_images(estate: Estate) -> None:
    ag = estate.agreement()
    image = estate.share(ag, b"img")
    with estate.gov.transaction() as ctx:
        blob = ctx.session.get(SharedImage, image).image_blob
        agreements.end(ctx, estate.officer, ag, "no longer needed")
    assert not estate.gov.blob_store.exists(blob)
    with estate.gov.transaction() as ctx:
        assert [e.kind for e in ctx.session.execute(select(LedgerEntry)).scalars()] == ["shared", "deleted"]


def test_signage_required_to_start(estate: Estate) -> None:
    ag = estate.agreement()
    wl = estate.watchlist([estate.share(ag, b"img")])
    signed, unsigned = estate.camera("signed"), estate.camera("unsigned", signage=False)
    dep = estate.request(wl, [signed, unsigned])
    with estate.gov.transaction() as ctx:
        deployments.authorise(ctx, estate.officer2, dep)
    with pytest.raises(RuleViolation, match="'unsigned' has no signage"), estate.gov.transaction() as ctx:
        deployments.start(ctx, estate.admin, dep)
    from openlfr.governance import cameras
    from openlfr.governance.schemas import SignageCreate

    with estate.gov.transaction() as ctx:  # a check of the camera alone counts for no deployment
        cameras.record_signage(ctx, estate.admin, SignageCreate(
            camera_id=unsigned, text="Facial recognition in use", checked_on=estate.clock.now.date()))
    with (pytest.raises(RuleViolation, match="no signage check recorded for deployment"),
          estate.gov.transaction() as ctx):
        deployments.start(ctx, estate.admin, dep)
    estate.signage(dep, [unsigned])
    with estate.gov.transaction() as ctx:
        assert deployments.start(ctx, estate.admin, dep).status == "live"


def test_retention_deletes_alerts_crops_footage_and_snapshots(estate: Estate) -> None:
    dep, cam, _ = estate.live_deployment()
    now = estate.clock.now
    with estate.gov.transaction() as ctx:
        alert = retention.record_alert(ctx, dep, cam, 0.8, now)
        crop = retention.record_media(ctx, "crop", dep, cam, b"crop-bytes", now, alert_id=alert.id)
        footage = retention.record_media(ctx, "footage", dep, cam, b"non-alert footage", now)
        crop_blob, footage_blob = crop.blob, footage.blob
        alert_id, crop_id, footage_id = alert.id, crop.id, footage.id
    store = estate.gov.blob_store
    with estate.gov.transaction() as ctx:
        first = retention.sweep(ctx)
    assert first.media_deleted == [footage_id] and not store.exists(footage_blob)  # non-alert: at once
    assert store.exists(crop_blob) and first.alerts_pseudonymised == []

    estate.clock.advance(days=30, hours=23)
    with estate.gov.transaction() as ctx:
        assert retention.sweep(ctx).alerts_pseudonymised == []  # within 31 days
    estate.clock.advance(hours=1)
    with estate.gov.transaction() as ctx:
        report = retention.sweep(ctx)
    assert report.alerts_pseudonymised == [alert_id] and crop_id in report.media_deleted and not store.exists(crop_blob)
    with estate.gov.transaction() as ctx:
        # The deployment (8 h) ended long ago; its snapshot is gone, its hash kept.
        d = ctx.session.get(Deployment, dep)
        assert d.status == "ended" and d.snapshot_blob is None and d.snapshot_hash
        from openlfr.audit.chain import load_records

        actions = [r.action for r in load_records(ctx.session)]
    assert {"alert.pseudonymise", "footage.delete", "deployment.snapshot_delete"} <= set(actions)


def test_snapshot_deleted_24h_after_end_with_hash_kept(estate: Estate) -> None:
    dep, _, _ = estate.live_deployment()
    with estate.gov.transaction() as ctx:
        d = deployments.end(ctx, estate.admin, dep, "done")
        blob, digest = d.snapshot_blob, d.snapshot_hash
    estate.clock.advance(hours=23, minutes=59)
    with estate.gov.transaction() as ctx:
        assert retention.sweep(ctx).snapshots_deleted == []
    assert estate.gov.blob_store.exists(blob)
    estate.clock.advance(minutes=1)
    with estate.gov.transaction() as ctx:
        assert retention.sweep(ctx).snapshots_deleted == [dep]
        d = ctx.session.get(Deployment, dep)
        assert d.snapshot_blob is None and d.snapshot_hash == digest
    assert not estate.gov.blob_store.exists(blob)


def test_alert_refused_outside_live_deployment(estate: Estate) -> None:
    dep, cam, _ = estate.live_deployment()
    with pytest.raises(RuleViolation), estate.gov.transaction() as ctx:
        retention.record_alert(ctx, dep, cam, 0.9, estate.clock.now + timedelta(days=1))


def test_watchlist_size_cap_and_review_date(estate: Estate) -> None:
    ag = estate.agreement()
    a, b = estate.share(ag, b"a"), estate.share(ag, b"b")
    wl = estate.watchlist([a], cap=1, name="capped")
    with pytest.raises(RuleViolation, match="full"), estate.gov.transaction() as ctx:
        watchlists.add_entry(ctx, estate.admin, WatchlistAdd(
            watchlist_id=wl, shared_image_id=b, label="b", reason="r", review_date=estate.clock.now.date()))
    wl2 = estate.watchlist([], name="other")
    with pytest.raises(InputError, match="review date"), estate.gov.transaction() as ctx:
        watchlists.add_entry(ctx, estate.admin, WatchlistAdd(
            watchlist_id=wl2, shared_image_id=b, label="b", reason="r",
            review_date=estate.clock.now.date() - timedelta(days=1)))


def test_watchlist_entry_due_for_review_blocks_authorisation(estate: Estate) -> None:
    ag = estate.agreement()
    wl = estate.watchlist([estate.share(ag, b"a")])  # review date: 14 days from now
    dep = estate.request(wl, [estate.camera()], offset_hours=24 * 20)
    with pytest.raises(RuleViolation, match="review"), estate.gov.transaction() as ctx:
        deployments.authorise(ctx, estate.officer2, dep)


def test_watchlist_only_from_images_shared_with_the_operator(estate: Estate) -> None:
    from openlfr.governance import parse
    from openlfr.governance.schemas import AgreementCreate

    estate.organisation("Another Estate", OrgKind.SITE_OPERATOR)
    with estate.gov.transaction() as ctx:
        other = agreements.create(ctx, estate.supplier, parse(
            AgreementCreate, operator="Another Estate", purpose="p", lawful_basis="b", valid_from=estate.clock.now,
            valid_until=estate.clock.now + timedelta(days=5), image_limit=5, allowed_categories=["wanted_by_court"]))
        agreements.approve(ctx, estate.officer, other.id)
    image = estate.share(other.id, b"img")
    with pytest.raises(PermissionDenied, match="Another Estate"):
        estate.watchlist([image])


def test_force_ledger_lists_everything_the_force_shared_everywhere(estate: Estate) -> None:
    from openlfr.governance import parse
    from openlfr.governance.schemas import AgreementCreate, Role

    # a second supplier of the same force makes its own agreement with another estate
    estate.organisation("Another Estate", OrgKind.SITE_OPERATOR)
    colleague = estate.user("met-2", Role.SUPPLIER, org="force")
    other_force = estate.organisation("Kent Police", OrgKind.POLICE_FORCE)
    kent_supplier = estate.user("kent", Role.SUPPLIER, by=other_force)
    ag1 = estate.agreement()
    with estate.gov.transaction() as ctx:
        ag2 = agreements.create(ctx, colleague, parse(
            AgreementCreate, operator="Another Estate", purpose="p", lawful_basis="b", valid_from=estate.clock.now,
            valid_until=estate.clock.now + timedelta(days=5), image_limit=5, allowed_categories=["wanted_by_court"])).id
        agreements.approve(ctx, estate.officer, ag2)
    x = estate.share(ag1, b"x", subject="S-10")
    with estate.gov.transaction() as ctx:
        sharing.share_image(ctx, colleague, sharing.ShareImage(
            agreement_id=ag2, category="wanted_by_court", warrant_ref="WA-2029-00123", reason="r", subject_ref="S-11",
            image_date=estate.clock.now.date()), as_image(b"y"))
    with estate.gov.transaction() as ctx:
        sharing.revoke_image(ctx, estate.supplier, x, "wrong person")
    with estate.gov.transaction() as ctx:
        view = sharing.force_ledger(ctx, estate.supplier)
        assert sharing.force_ledger(ctx, kent_supplier) == []
        assert len(sharing.force_ledger(ctx, estate.auditor, force=estate.force)) == 2
        with pytest.raises(PermissionDenied, match="Kent Police"):
            sharing.force_ledger(ctx, kent_supplier, force=estate.force)
    assert [(v.agreement_id, v.operator, v.subject_ref, v.status, v.shared_by) for v in view] == [
        (ag1, "Estate Ltd", "S-10", "purged", "met"), (ag2, "Another Estate", "S-11", "live", "met-2")]
    assert view[0].deletion_reason.startswith("revoked by supplier") and view[0].deleted_by == estate.supplier.name


def test_roles_are_checked(estate: Estate) -> None:
    from openlfr.governance import parse
    from openlfr.governance.schemas import AgreementCreate

    data = parse(AgreementCreate, operator="Estate Ltd", purpose="p", lawful_basis="b", valid_from=estate.clock.now,
                 valid_until=estate.clock.now + timedelta(days=1), image_limit=1,
                 allowed_categories=["wanted_by_court"])
    for actor in (estate.admin, estate.reviewer, estate.auditor, estate.officer):
        with pytest.raises(PermissionDenied), estate.gov.transaction() as ctx:
            agreements.create(ctx, actor, data)
    ag = estate.agreement(approve=False)
    for actor in (estate.supplier, estate.admin, estate.reviewer):
        with pytest.raises(PermissionDenied), estate.gov.transaction() as ctx:
            agreements.approve(ctx, actor, ag)


def test_unknown_ids_are_clear_errors(estate: Estate) -> None:
    with pytest.raises(NotFoundError, match="agreement 999 does not exist"), estate.gov.transaction() as ctx:
        agreements.approve(ctx, estate.officer, 999)
    with pytest.raises(NotFoundError, match="agreement 999"):
        estate.share(999, b"img")
    with pytest.raises(NotFoundError, match="watchlist 42"):
        estate.request(42, [1])
    wl = estate.watchlist([])
    with pytest.raises(NotFoundError, match="camera 7"):
        estate.request(wl, [7])
    with pytest.raises(NotFoundError, match="deployment 5"), estate.gov.transaction() as ctx:
        deployments.live_watchlist(ctx, 5, 1, estate.clock.now)


def test_a_suspended_agreement_stops_start_and_leaves_the_live_watchlist(estate: Estate) -> None:
    """The agreements behind a deployment are checked again when it starts and whenever a camera
    loads its watchlist, not only at authorisation."""
    from openlfr.audit.chain import load_records

    dep, cam, images = estate.live_deployment()
    with estate.gov.transaction() as ctx:
        ag = ctx.session.get(SharedImage, images[0]).agreement_id
        assert len(deployments.live_watchlist(ctx, dep, cam, ctx.now()).entry_ids) == 3
        agreements.suspend(ctx, estate.supplier, ag, "complaint under review")
    with pytest.raises(RuleViolation, match="no longer in force"), estate.gov.transaction() as ctx:
        deployments.live_watchlist(ctx, dep, cam, ctx.now())
    with estate.gov.transaction() as ctx:
        refused = [r for r in load_records(ctx.session) if r.action == "deployment.watchlist.refused"]
        assert refused and "no longer in force" in refused[-1].details

    # a second deployment of the same images, authorised before the suspension, cannot start
    with estate.gov.transaction() as ctx:
        agreements.resume(ctx, estate.supplier, ag)
    wl = estate.watchlist(images, name="wl-2")
    dep2 = estate.request(wl, [estate.camera("cam2")])
    with estate.gov.transaction() as ctx:
        deployments.authorise(ctx, estate.officer2, dep2)
        agreements.suspend(ctx, estate.officer, ag, "again")
    with pytest.raises(RuleViolation, match=f"agreement {ag}, which is suspended"), estate.gov.transaction() as ctx:
        deployments.start(ctx, estate.admin, dep2)
    with estate.gov.transaction() as ctx:  # lifted: the first deployment's cameras match again
        agreements.resume(ctx, estate.supplier, ag)
        assert len(deployments.live_watchlist(ctx, dep, cam, ctx.now()).entry_ids) == 3
