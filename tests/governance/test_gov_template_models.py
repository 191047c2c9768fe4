"""Templates know their model: stored with it, frozen with it, never compared across models,
and re-made under another model only by the watchlist's own operator admin, audited."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sqlalchemy import select

from openlfr.errors import ModelError
from openlfr.face.registry import check_same_model
from openlfr.governance import OrgKind, PermissionDenied, Role, RuleViolation
from openlfr.governance import deployments, watchlists
from openlfr.store.models import AuditEvent, Deployment, SharedImage

from govkit import FAKE_MODEL, Estate, fake_template

OTHER_MODEL = "other-test-model:11111111"


def other_template(image: bytes) -> tuple[np.ndarray, float, str]:
    """A second 'model': another deterministic unit vector, in a 64-D space."""
    vec = np.random.default_rng(len(image) + 7).standard_normal(64).astype(np.float32)
    return vec / np.linalg.norm(vec), 0.8, OTHER_MODEL


def test_templates_and_snapshots_record_their_model(estate: Estate) -> None:
    dep, cam, images = estate.live_deployment()
    with estate.gov.transaction() as ctx:
        assert {ctx.session.get(SharedImage, i).template_model for i in images} == {FAKE_MODEL}
        assert ctx.session.get(Deployment, dep).model_id == FAKE_MODEL
        live = deployments.live_watchlist(ctx, dep, cam, estate.clock.now)
    assert live.model_id == FAKE_MODEL and live.templates.shape == (3, 128)
    (event,) = [e for e in _events(estate, "deployment.authorise")]
    assert json.loads(event.details)["model"] == FAKE_MODEL


def test_mixed_models_are_never_compared(estate: Estate) -> None:
    ag = estate.agreement()
    first = estate.share(ag, b"img-a", subject="S-1A")
    estate.gov.template_fn = other_template
    second = estate.share(ag, b"img-bb", subject="S-1B")
    wl = estate.watchlist([first, second])
    dep = estate.request(wl, [estate.camera()])
    with pytest.raises(RuleViolation, match="2 face models"), estate.gov.transaction() as ctx:
        deployments.authorise(ctx, estate.officer, dep)
    with pytest.raises(ModelError, match="cannot be compared"):
        check_same_model(FAKE_MODEL, OTHER_MODEL)


def test_retemplating_is_audited_and_only_by_the_watchlists_own_admin(estate: Estate) -> None:
    ag = estate.agreement()
    images = [estate.share(ag, f"img-{i}".encode(), subject=f"S-{i}") for i in range(2)]
    wl = estate.watchlist(images)
    estate.gov.template_fn = other_template
    other = estate.organisation("Other Estate", OrgKind.SITE_OPERATOR)
    other_ops = estate.user("other-ops", Role.OPERATOR_ADMIN, by=other)
    for actor, why in ((other_ops, "Other Estate cannot"), (estate.reviewer, "needs role operator_admin")):
        with pytest.raises(PermissionDenied, match=why), estate.gov.transaction() as ctx:
            watchlists.retemplate(ctx, actor, wl)
    with estate.gov.transaction() as ctx:
        assert watchlists.retemplate(ctx, estate.admin, wl) == {"retemplated": 2, "unchanged": 0}
    with estate.gov.transaction() as ctx:
        assert watchlists.retemplate(ctx, estate.admin, wl) == {"retemplated": 0, "unchanged": 2}
        rows = [ctx.session.get(SharedImage, i) for i in images]
        assert {r.template_model for r in rows} == {OTHER_MODEL}
        assert len(ctx.blobs.get(rows[0].template_blob)) == 64 * 4
    events = _events(estate, "image.retemplate")
    assert [json.loads(e.details)["old_model"] for e in events] == [FAKE_MODEL] * 2
    assert {e.actor for e in events} == {"admin"}
    dep = estate.request(wl, [estate.camera()])
    with estate.gov.transaction() as ctx:  # one model again: it can be deployed
        assert deployments.authorise(ctx, estate.officer, dep).model_id == OTHER_MODEL


def _events(estate: Estate, action: str) -> list[AuditEvent]:
    with estate.gov.sessions() as session:
        return list(session.execute(select(AuditEvent).where(AuditEvent.action == action)
                                    .order_by(AuditEvent.seq)).scalars())


def test_fake_template_says_its_model() -> None:
    assert fake_template(b"x")[2] == FAKE_MODEL


def test_a_threshold_looser_than_the_fpir_1pct_point_needs_a_recorded_reason(estate: Estate) -> None:
    ag = estate.agreement()
    wl = estate.watchlist([estate.share(ag, f"img-{i}".encode(), subject=f"S-{i}") for i in range(3)])
    dep = estate.request(wl, [estate.camera()])  # threshold 0.6
    seen = []

    def floor(model: str, size: int) -> float:
        seen.append((model, size))
        return 0.7

    with pytest.raises(RuleViolation, match="looser than face model .* FPIR-1% point"), estate.gov.transaction() as ctx:
        deployments.authorise(ctx, estate.officer, dep, floor_fn=floor)
    assert seen == [(FAKE_MODEL, 3)]
    with estate.gov.transaction() as ctx:
        deployments.authorise(ctx, estate.officer, dep, floor_fn=floor,
                              threshold_reason="small watchlist of violent offenders; every alert is reviewed twice")
    (event,) = _events(estate, "deployment.authorise")
    details = json.loads(event.details)
    assert details["threshold_floor"] == 0.7 and details["threshold_reason"].startswith("small watchlist")
    assert [e.action for e in _events(estate, "deployment.authorise.refused")] == ["deployment.authorise.refused"]


def test_the_floor_follows_the_watchlist_size() -> None:
    from openlfr.face.registry import builtin

    for name in ("dlib-resnet", "sface"):
        entry = builtin().embedder(name)
        floors = [entry.threshold_at_fpir(n, 0.01) for n in (1, 10, 100, 1000)]
        assert all(f is not None for f in floors), name
        assert floors == sorted(floors), (name, floors)  # a larger watchlist needs a stricter threshold
        assert entry.threshold_at_fpir(1, 1e-4) > entry.threshold_at_fpir(1, 1e-2)


def test_retemplating_runs_the_face_model_with_no_lock_held(estate: Estate) -> None:
    """Through ``prepare_retemplate`` (what the API and the CLI do) every template is made while
    another writer can still commit; made inside the transaction (the fallback), none is."""
    import threading

    ag = estate.agreement()
    wl = estate.watchlist([estate.share(ag, f"img-{i}".encode(), subject=f"S-{i}") for i in range(2)])
    writable: list[bool] = []

    def probing_template(image: bytes) -> tuple[np.ndarray, float, str]:
        # can another writer commit now? (a thread, so it uses its own connection)
        done = threading.Event()

        def write() -> None:
            try:
                with estate.gov.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                    conn.exec_driver_sql("SELECT 1")
                with estate.gov.transaction() as ctx:
                    ctx.audit("probe", "test.probe", "store", "-")
                done.set()
            except Exception:  # noqa: BLE001 - a lock timeout means "held"
                pass

        t = threading.Thread(target=write, daemon=True)
        t.start()
        writable.append(done.wait(2.0))
        return other_template(image)

    estate.gov.template_fn = probing_template
    prepared = watchlists.prepare_retemplate(estate.gov, estate.admin, wl)
    assert writable == [True, True]
    with estate.gov.transaction() as ctx:
        assert watchlists.retemplate(ctx, estate.admin, wl, prepared) == {"retemplated": 2, "unchanged": 0}
    assert writable == [True, True]  # the prepared templates were used: the model did not run again


def test_prepared_images_and_templates_cannot_be_forged(estate: Estate) -> None:
    """The Python door: share_image and retemplate accept prepared work only from the functions
    that make it (the image gate, the configured model), not an object built by the caller."""
    from dataclasses import replace

    from openlfr.errors import InputError
    from openlfr.governance import sharing
    from openlfr.governance.schemas import ShareImage

    from govkit import as_image

    ag = estate.agreement()
    wl = estate.watchlist([estate.share(ag, b"img-0", subject="S-0")])
    prepared = sharing.prepare_image(estate.gov.template_fn, as_image(b"img-1"))
    forged = replace(prepared, template=-prepared.template, seal=None)
    data = ShareImage(agreement_id=ag, category="wanted_by_court", warrant_ref="WA-2029-00123", reason="r",
                      subject_ref="S-1", image_date=estate.clock.now.date())
    with pytest.raises(InputError, match="prepare_image"), estate.gov.transaction() as ctx:
        sharing.share_image(ctx, estate.supplier, data, forged)
    fake = watchlists.Retemplates({})
    with pytest.raises(InputError, match="prepare_retemplate"), estate.gov.transaction() as ctx:
        watchlists.retemplate(ctx, estate.admin, wl, fake)
    with estate.gov.transaction() as ctx:
        assert sharing.share_image(ctx, estate.supplier, data, prepared).id
