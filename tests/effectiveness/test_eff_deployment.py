"""Deployment-level effectiveness: a request with a target false-alert rate, its public
record, reviewers' verdicts and the per-deployment report (SQLite store)."""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "governance"))

from govkit import KEY, Clock, Estate, fake_template, grounds  # noqa: E402

from openlfr.api import views  # noqa: E402
from openlfr.errors import InputError  # noqa: E402
from openlfr.evaluation import deployment_report  # noqa: E402
from openlfr.governance import Governance, Policy, Role, RuleViolation, parse  # noqa: E402
from openlfr.governance import deployments, retention, reviews  # noqa: E402
from openlfr.governance.schemas import DeploymentRequest  # noqa: E402
from openlfr.store.models import PipelineCounter  # noqa: E402


@pytest.fixture
def estate(tmp_path: Path) -> Estate:
    clock = Clock()
    gov = Governance(f"sqlite:///{tmp_path / 'db.sqlite'}", blob_root=tmp_path / "blobs", key=KEY, policy=Policy(),
                     template_fn=fake_template, clock=clock)
    e = Estate(gov, clock)
    e.setup_users()
    yield e
    gov.close()


def _request(e: Estate, wl: int, cam: int, **kw: object) -> DeploymentRequest:
    return parse(DeploymentRequest, purpose="locate wanted people at the estate", watchlist_id=wl, camera_ids=[cam],
                 start=e.clock.now, end=e.clock.now + timedelta(hours=8), **(grounds() | kw))


def test_target_rate_is_calibrated_stored_and_public(estate: Estate, tmp_path: Path):
    ag = estate.agreement()
    wl = estate.watchlist([estate.share(ag, f"img-{i}".encode(), subject=f"S-{i}") for i in range(3)])
    cam = estate.camera()
    seen = []

    def calibrate(size: int, rate: float) -> dict:
        seen.append((size, rate))
        return {"method": "size", "threshold": 0.955, "predicted_fnir": 0.31, "watchlist_size": size}

    with pytest.raises(InputError, match="either a threshold or a target"):
        _request(estate, wl, cam, threshold=0.9, target_false_alert_rate=1e-3)
    with estate.gov.transaction() as ctx, pytest.raises(RuleViolation, match="calibration cohort"):
        deployments.request(ctx, estate.admin, _request(estate, wl, cam, target_false_alert_rate=1e-3))
    with estate.gov.transaction() as ctx:
        dep = deployments.request(ctx, estate.admin, _request(estate, wl, cam, target_false_alert_rate=1e-3), calibrate)
        dep_id = dep.id
        assert seen == [(3, 1e-3)] and dep.threshold == 0.955
    estate.signage(dep_id, [cam])  # the notice checked for this deployment

    with estate.gov.transaction() as ctx:
        deployments.authorise(ctx, estate.officer2, dep_id)
        deployments.start(ctx, estate.admin, dep_id)
        # the public transparency record shows how the threshold was chosen, and links the report
        record = next(d for d in views.transparency(ctx, "ICO").deployments if d.id == dep_id)
    assert record.threshold == 0.955 and record.threshold_source == "calibrated"
    assert record.target_false_alert_rate == 1e-3 and record.predicted_fnir == 0.31
    assert record.report_url == f"/transparency/deployments/{dep_id}/report"
    with estate.gov.transaction() as ctx:
        now = estate.clock.now
        ids = [retention.record_alert(ctx, dep_id, cam, 0.97, now + timedelta(minutes=k)).id for k in range(4)]
        ctx.session.add(PipelineCounter(deployment_id=dep_id, camera_id=cam, interval_start=now,
                                        interval_end=now + timedelta(hours=1), templates=2000, passes=700,
                                        faces_seen=9000, alerts=4))
    second = estate.user("reviewer-2", Role.REVIEWER)
    with estate.gov.transaction() as ctx:  # verified takes two reviewers; a dismissal settles at once
        reviews.review(ctx, estate.reviewer, ids[0], "confirm", "")
        reviews.review(ctx, second, ids[0], "confirm", "")
        for alert_id in ids[1:3]:
            reviews.review(ctx, estate.reviewer, alert_id, "dismiss", "someone else")
    with estate.gov.transaction() as ctx, pytest.raises(RuleViolation, match="decision must be"):
        reviews.review(ctx, estate.reviewer, ids[3], "maybe", "")
    with estate.gov.transaction() as ctx:
        rep = deployment_report.for_deployment(ctx.session, dep_id)
    assert (rep.faces_searched, rep.alerts, rep.verified_true, rep.verified_false, rep.unreviewed) == (2000, 4, 1, 2, 1)
    # rates per face searched (the target's unit), not per pass or detection (diagnostics beside it)
    assert (rep.people_passes, rep.detections) == (700, 9000)
    assert rep.false_alerts_per_1000_faces_searched == 1.0 and rep.precision == pytest.approx(1 / 3)
    assert rep.observed_false_alert_rate == 1e-3
    # one alert still unreviewed: it may be a false one, so no comparison with the target yet
    assert rep.predicted_vs_observed == "not yet known: 1 of 4 alerts unreviewed or unsure"
    with estate.gov.transaction() as ctx:
        reviews.review(ctx, estate.reviewer, ids[3], "dismiss", "someone else")
    with estate.gov.transaction() as ctx:
        rep = deployment_report.for_deployment(ctx.session, dep_id)
    assert rep.observed_false_alert_rate == 1.5e-3 and "consistent with the target" in rep.predicted_vs_observed
    html, js = deployment_report.write(rep, tmp_path)
    assert html.name == f"deployment-{dep_id}-report.html" and json.loads(js.read_text())["verified_false"] == 3


def test_reviews_need_the_reviewer_role_and_manual_threshold_clears_calibration(estate: Estate):
    dep_id, cam, images = estate.live_deployment()
    with estate.gov.transaction() as ctx:
        alert = retention.record_alert(ctx, dep_id, cam, 0.97, estate.clock.now)
        alert_id = alert.id
    with estate.gov.transaction() as ctx, pytest.raises(Exception, match="needs role reviewer"):
        reviews.review(ctx, estate.admin, alert_id, "confirm", "")
    wl = estate.watchlist(images[:1], name="wl2")
    cam2 = estate.camera("cam2")
    with estate.gov.transaction() as ctx:
        dep = deployments.request(ctx, estate.admin, _request(estate, wl, cam2, target_false_alert_rate=0.01),
                                  lambda n, r: {"threshold": 0.9, "predicted_fnir": 0.2})
        deployments.set_threshold(ctx, estate.admin, dep.id, 0.93)
        assert dep.target_false_alert_rate is None and dep.calibration is None


def test_report_from_counts_flags_more_false_alerts_than_predicted():
    rep = deployment_report.summarise(1, "ended", 0.95, 1e-4, 0.3, 10_000, ["false"] * 8 + ["true"] * 2)
    assert rep.false_alerts_per_1000_faces_searched == 0.8 and rep.precision == 0.2
    assert rep.predicted_vs_observed.startswith("more false alerts than predicted")
    none_yet = deployment_report.summarise(1, "live", 0.95, None, None, 0, [])
    assert none_yet.predicted_vs_observed == "no faces searched yet"


def test_report_verdict_is_not_yet_known_while_any_alert_is_unreviewed_or_unsure():
    # 8 false alerts in 10,000 faces searched would be "more than predicted" for 1e-4, and 1 in
    # 10,000 "consistent": neither may be said while one alert could still be false
    for outcomes in (["false"] * 8 + [None], ["false"] + ["unsure"], [None, None]):
        rep = deployment_report.summarise(1, "ended", 0.95, 1e-4, 0.3, 10_000, outcomes, people_passes=2_500,
                                          detections=60_000)
        open_ = sum(o in (None, "unsure") for o in outcomes)
        assert rep.predicted_vs_observed == f"not yet known: {open_} of {len(outcomes)} alerts unreviewed or unsure"
        assert "consistent" not in rep.predicted_vs_observed
    # the rates are per face searched, whatever the passes and detections
    assert rep.observed_false_alert_rate == 0 and rep.observed_false_alert_rate_upper_bound == 2 / 10_000
    assert (rep.faces_searched, rep.people_passes, rep.detections) == (10_000, 2_500, 60_000)
    # the Wilson upper bound for 0 of 10,000
    assert rep.observed_false_alert_rate_ci95[1] == pytest.approx(3.84e-4, rel=0.01)
    done = deployment_report.summarise(1, "ended", 0.95, 1e-4, 0.3, 10_000, ["false", "true"])
    assert done.predicted_vs_observed.startswith("consistent with the target 0.0001 per face searched")
