"""Two-person review under concurrency: 50 alerts, each decided by 3 reviewers at the same
moment, on SQLite and PostgreSQL. Every alert is settled exactly once, and the audit log's
settling events match the final state."""

from __future__ import annotations

import json
import threading

from sqlalchemy import select

from govkit import Estate
from openlfr.errors import OpenLFRError
from openlfr.governance import Role, retention, reviews
from openlfr.store.models import Alert, AlertReview, AuditEvent

ROUNDS = 50


def _decisions(round_no: int) -> list[str]:
    """Three reviewers' decisions: all confirm every fourth round, else one of them dismisses."""
    if round_no % 4 == 0:
        return ["confirm"] * 3
    return ["dismiss" if i == round_no % 3 else "confirm" for i in range(3)]


def test_fifty_rounds_of_three_concurrent_reviewers_settle_each_alert_once(estate: Estate) -> None:
    dep, cam, _ = estate.live_deployment()
    reviewers = [estate.reviewer, estate.user("rev2", Role.REVIEWER), estate.user("rev3", Role.REVIEWER)]
    with estate.gov.transaction() as ctx:
        alert_ids = [retention.record_alert(ctx, dep, cam, 0.8, ctx.now()).id for _ in range(ROUNDS)]
    refused: list[str] = []
    errors: list[BaseException] = []

    for round_no, alert_id in enumerate(alert_ids):
        barrier = threading.Barrier(3)

        def decide(who: int, alert_id: int = alert_id, round_no: int = round_no, barrier=barrier) -> None:  # type: ignore[no-untyped-def]
            barrier.wait(10)
            try:
                with estate.gov.transaction() as ctx:
                    reviews.review(ctx, reviewers[who], alert_id, _decisions(round_no)[who], f"r{who}")
            except OpenLFRError as err:  # "already settled" or "already confirmed": expected refusals
                refused.append(str(err))
            except BaseException as err:  # noqa: BLE001 - anything else fails the test below
                errors.append(err)

        threads = [threading.Thread(target=decide, args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    assert not errors, errors[:3]
    assert all("already settled" in r for r in refused), refused[:3]

    with estate.gov.transaction() as ctx:
        for round_no, alert_id in enumerate(alert_ids):
            alert = ctx.session.get(Alert, alert_id)
            settling = [json.loads(e.details) for e in ctx.session.execute(
                select(AuditEvent).where(AuditEvent.action == "alert.review", AuditEvent.object_id == str(alert_id))
            ).scalars()]
            decided = ctx.session.execute(select(AlertReview).where(AlertReview.alert_id == alert_id)).scalars().all()
            assert alert.review_outcome in ("true", "false"), (round_no, alert.review_outcome)
            assert len(settling) == 1, (round_no, settling)  # settled exactly once...
            assert settling[0]["outcome"] == alert.review_outcome and settling[0]["previous"] is None
            # ...by the decisions recorded before it: two confirmations, or one dismissal
            kinds = sorted(r.decision for r in decided)
            if alert.review_outcome == "true":
                assert kinds.count("confirm") == 2 and len({r.reviewer_id for r in decided}) == len(decided)
            else:
                assert kinds[-1] == "dismiss" and kinds.count("dismiss") == 1 and kinds.count("confirm") <= 1
