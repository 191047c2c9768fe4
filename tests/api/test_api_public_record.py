"""The public record after a full demo run: every field the regulator asks for is there, and
nothing that names or shows a person (labels, reasons, warrant or subject references, image
or snapshot hashes, notes, images)."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from apikit import serve

PW = "correct horse battery staple 42"


def _data() -> Path:
    return Path(os.environ.get("OPENLFR_DATA", "../shared/data"))


@pytest.mark.slow
def test_public_record_after_a_full_demo_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lfw = _data() / "lfw"
    if not lfw.is_dir():
        pytest.skip(f"no LFW photos at {lfw} (set OPENLFR_DATA)")
    from openlfr.api import create_app
    from openlfr.cli import app
    from openlfr.governance import Governance, deployments, login, outcomes, parse, reviews
    from openlfr.governance.grounds import EngagementResult, LegalBasis
    from openlfr.governance.schemas import DeploymentRequest
    from openlfr.pipeline.records import AlertRecord, Counters, store_alert, store_counters
    from openlfr.store.models import Deployment, SharedImage, WatchlistEntry

    for name in ("OPENLFR_DATABASE_URL", "OPENLFR_KEY", "OPENLFR_KEY_FILE", "OPENLFR_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENLFR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("OPENLFR_CREDENTIALS_FILE", str(tmp_path / "credentials.json"))
    result = CliRunner().invoke(app, ["demo-setup", "--images", str(lfw), "--count", "3", "--password", PW])
    assert result.exit_code == 0, result.output

    gov = Governance()
    try:
        who = {n: login.log_in(gov, n, PW, "cli", timedelta(hours=1), "test")[0]  # type: ignore[index]
               for n in ("alice", "supt-brown", "ruth", "sam")}
        now = gov.clock()
        with gov.transaction() as ctx:
            live = ctx.session.execute(select(Deployment).where(Deployment.status == "live")).scalar_one()
            entries = ctx.session.execute(select(WatchlistEntry).where(
                WatchlistEntry.watchlist_id == live.watchlist_id)).scalars().all()
            secrets = [e.label for e in entries] + [e.reason for e in entries]
            for e in entries:
                img = ctx.session.get(SharedImage, e.shared_image_id)
                secrets += [img.sha256, img.subject_ref, img.warrant_ref, img.reason]
            secrets.append(live.snapshot_hash)
            camera = live.cameras[0].id
            crop = cv2.imencode(".png", np.full((40, 40, 3), 99, np.uint8))[1].tobytes()
            alerts = [store_alert(ctx, AlertRecord(
                deployment_id=live.id, camera_id=camera, entry_id=entries[i].id, label=entries[i].label, score=0.9,
                at=now, track_id=f"t{i}", frame_index=i, video_time=0.1 * i, box=[1, 2, 30, 40], quality=0.5,
                crop=crop, snapshot_hash=live.snapshot_hash or ""), "pipeline:test").alert_id
                for i in (0, 1)]
            store_counters(ctx, live.id, camera, now - timedelta(minutes=1), now,
                           Counters(frames=250, frames_analysed=50, faces_seen=120, tracks=6, passes=4, templates=9,
                                    templates_discarded=7, alerts=2), "pipeline:test")
        with gov.transaction() as ctx:
            reviews.review(ctx, who["ruth"], alerts[0], "confirm", "looks like the listed man, young male")
            reviews.review(ctx, who["sam"], alerts[0], "confirm", "agree")
            reviews.review(ctx, who["ruth"], alerts[1], "dismiss", "a different woman entirely")
        with gov.transaction() as ctx:
            outcomes.record_outcome(ctx, who["ruth"], alerts[0], EngagementResult.ARRESTED.value,
                                    "detained at the gate after a short chase", "PC 4471 Jarvis")
            secrets += ["young male", "a different woman", "short chase", "PC 4471 Jarvis"]

        def ask(purpose: str, day: int) -> int:
            with gov.transaction() as ctx:
                return deployments.request(ctx, who["alice"], parse(
                    DeploymentRequest, purpose=purpose, watchlist_id=live.watchlist_id, camera_ids=[camera],
                    start=now + timedelta(days=day), end=now + timedelta(days=day, hours=6), threshold=live.threshold,
                    legal_basis=LegalBasis.GDPR_UNLAWFUL_ACTS, dpia_ref="DPIA-DEMO-2",
                    dpia_date=now.date() - timedelta(days=3), eia_ref="EIA-DEMO-2",
                    eia_date=now.date() - timedelta(days=3),
                    necessity="A second day of the same operation: the suspects were seen again near the square.",
                    proportionality="The same two signed cameras for six hours; every other face is discarded.")).id

        refused, cancelled = ask("Second day (to be refused)", 2), ask("Third day (to be cancelled)", 3)
        with gov.transaction() as ctx:
            deployments.refuse(ctx, who["supt-brown"], refused, "not enough new intelligence for officer Smith's case")
            deployments.end(ctx, who["alice"], cancelled, "the event was called off")
        secrets += ["officer Smith", "called off"]
        with serve(create_app(gov)) as url, httpx.Client(base_url=url) as c:
            record = c.get("/api/public/transparency").json()
            page = c.get("/transparency").text
            report = c.get(f"/transparency/deployments/{live.id}/report").text
            published = c.get("/api/public/checkpoints").json()
    finally:
        gov.close()

    by_id = {d["id"]: d for d in record["deployments"]}
    assert {by_id[refused]["status"], by_id[cancelled]["status"], by_id[live.id]["status"]} == {
        "refused", "cancelled", "live"}
    d = by_id[live.id]
    assert d["forces"] == ["Metropolitan Police"]
    assert d["legal_basis"] == LegalBasis.GDPR_UNLAWFUL_ACTS.value and "Schedule 1 para 10" in d["legal_basis_words"]
    assert d["dpia_ref"] == "DPIA-DEMO-1" and d["dpia_date"] and d["eia_ref"] == "EIA-DEMO-1" and d["eia_date"]
    assert [(c["category"], c["entries"]) for c in d["watchlist_categories"]] == [
        ("wanted_serious_offence", len(entries))]
    assert (d["people_passes"], d["faces_searched"], d["alerts"]) == (4, 9, 2)
    assert (d["verified_alerts"], d["false_alerts"]) == (1, 1)
    assert d["outcomes"]["arrested"] == 1 and d["outcomes"]["not recorded"] == 0
    assert d["decided_at"] and by_id[refused]["decided_at"] and by_id[cancelled]["decided_at"]
    assert by_id[refused]["forces"] == ["Metropolitan Police"] and by_id[refused]["watchlist_categories"] == []
    cp = record["latest_checkpoint"]
    assert cp and cp == published["checkpoints"][-1]
    for text in ("Metropolitan Police", "Schedule 1 para 10", "DPIA-DEMO-1", "EIA-DEMO-1", "refused", "cancelled",
                 "arrested: 1", cp["head_hash"], "wanted for a serious"):
        assert text in page, text
    assert "arrested" in report
    for text in (page, str(record), report):
        for s in secrets:
            assert s and s not in text, f"the public record shows {s!r}"
        assert "<img" not in text and "\x89PNG" not in text
