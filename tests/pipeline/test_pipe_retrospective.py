"""Retrospective search (``openlfr scan``): a recording is matched only inside a started
retrospective deployment, by an operator admin or reviewer of its organisation, through the
live pipeline; every refusal is audited and stores nothing else."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "governance"))

from govkit import Clock, Estate, as_image, fake_template, grounds  # noqa: E402

from openlfr.rights.keys import media_bytes  # noqa: E402
from openlfr.audit.chain import verify  # noqa: E402
from openlfr.errors import NotFoundError  # noqa: E402
from openlfr.governance import Actor, Governance, OrgKind, PermissionDenied, Role, RuleViolation, parse  # noqa: E402
from openlfr.governance import cameras, deployments, reviews, searches, sharing  # noqa: E402
from openlfr.governance.schemas import CameraCreate, DeploymentRequest, ShareImage  # noqa: E402
from openlfr.scan import file_sha256, search_recording  # noqa: E402
from openlfr.store import blob_dir  # noqa: E402
from openlfr.store.models import Alert, AuditEvent, Base, MediaItem, User  # noqa: E402

CLIP = "short_hamilton_clip.mp4"
from pipekit import HAMILTON_PASSES, THRESHOLD  # noqa: E402  (the configured model's default threshold)


@pytest.fixture()
def store_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A private store (the conftest already gives a private data directory) that a
    command-line subprocess opens too, through the same environment."""
    monkeypatch.setenv("OPENLFR_DATABASE_URL", f"sqlite:///{tmp_path / 'openlfr.db'}")
    monkeypatch.setenv("OPENLFR_CREDENTIALS_FILE", str(tmp_path / "credentials.json"))  # no one logged in
    monkeypatch.delenv("OPENLFR_TOKEN", raising=False)


def cli(args: list[str], actor: Actor | None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if actor is not None:
        env["OPENLFR_TOKEN"] = actor.token
    return subprocess.run([sys.executable, "-m", "openlfr.cli", *args], env=env, capture_output=True, text=True,
                          timeout=600)


def refused(proc: subprocess.CompletedProcess, fragment: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert fragment in lines[0], lines[0]
    assert proc.stdout == "" and "Traceback" not in proc.stderr


def _deployment(gov: Governance, estate: Estate, wl: int, cam: int, kind: str, *, start: bool = True,
                hours: float = 4) -> int:
    now = estate.clock.now
    data = parse(DeploymentRequest, kind=kind, purpose="find a wanted person in recorded footage", watchlist_id=wl,
                 camera_ids=[cam], start=now, end=now + timedelta(hours=hours), threshold=THRESHOLD,
                 **grounds())
    with gov.transaction() as ctx:
        dep = deployments.request(ctx, estate.admin, data).id
    if kind == "live":  # a live deployment needs a signage check of its own on its camera
        estate.signage(dep, [cam])
    with gov.transaction() as ctx:
        deployments.authorise(ctx, estate.officer2, dep)
        if start:
            deployments.start(ctx, estate.admin, dep)
    return dep


def _estate(gov: Governance, images: list[tuple[str, bytes]]) -> tuple[Estate, int, int]:
    """(estate, watchlist id, camera id): the images shared by the force, on one watchlist,
    and a camera of the estate without any signage check (recorded footage needs none)."""
    estate = Estate(gov, Clock(datetime.now(UTC)))
    estate.setup_users()
    ag = estate.agreement()
    ids = []
    for ref, raw in images:
        data = ShareImage(agreement_id=ag, category="wanted_by_court", warrant_ref="WA-2029-00123",
                          reason="warrant 123", subject_ref=ref,
                          image_date=(estate.clock.now - timedelta(days=30)).date())
        with gov.transaction() as ctx:
            ids.append(sharing.share_image(ctx, estate.supplier, data, as_image(raw)).id)
    wl = estate.watchlist(ids)
    with gov.transaction() as ctx:
        cam = cameras.add_camera(ctx, estate.admin, parse(CameraCreate, name="stage-door", location="stage door")).id
    return estate, wl, cam


def _rows(gov: Governance) -> dict[str, int]:
    with gov.transaction() as ctx:
        return {t.name: ctx.session.execute(select(func.count()).select_from(t)).scalar_one()
                for t in Base.metadata.sorted_tables}


def _blobs() -> dict[str, bytes]:
    root = blob_dir()
    return {p.name: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _audit_since(gov: Governance, seq: int) -> list[AuditEvent]:
    with gov.transaction() as ctx:
        rows = ctx.session.execute(select(AuditEvent).where(AuditEvent.seq > seq).order_by(AuditEvent.seq)).scalars()
        out = list(rows)
        ctx.session.expunge_all()
        return out


def _last_seq(gov: Governance) -> int:
    with gov.transaction() as ctx:
        return ctx.session.execute(select(func.max(AuditEvent.seq))).scalar_one()


def _nothing_but_refusals(gov: Governance, rows: dict[str, int], blobs: dict[str, bytes], seq: int,
                          expected: int) -> list[AuditEvent]:
    """Only audit events were added, each a refused search (and the signed checkpoints of the
    chain's head that the refusals made due); every blob is unchanged."""
    after = _rows(gov)
    assert {t for t in after if after[t] != rows[t]} <= {"audit_events", "audit_checkpoints"}
    assert _blobs() == blobs
    new = _audit_since(gov, seq)
    assert [e.action for e in new] == ["search.start.refused"] * expected, [(e.action, e.details) for e in new]
    with gov.transaction() as ctx:
        assert verify(ctx.session).ok
    return new


def test_no_search_outside_a_started_retrospective_deployment(store_env: None, video_dir: Path) -> None:
    clip = video_dir / CLIP
    gov = Governance(template_fn=fake_template)
    estate, wl, cam = _estate(gov, [("S-1", b"img-1")])
    live = _deployment(gov, estate, wl, cam, "live")
    waiting = _deployment(gov, estate, wl, cam, "retrospective", start=False)
    retro = _deployment(gov, estate, wl, cam, "retrospective", hours=1)
    rows, blobs, seq = _rows(gov), _blobs(), _last_seq(gov)

    # the command line: one error line, exit 2
    refused(cli(["scan", str(clip)], estate.admin), "needs a started retrospective deployment")
    refused(cli(["scan", str(clip), "--deployment", str(live)], estate.admin), "only in a retrospective one")

    # the Python door holds the same rule
    with pytest.raises(RuleViolation, match="needs a started retrospective deployment"):
        search_recording(gov, estate.admin, None, clip)
    with pytest.raises(RuleViolation, match="only in a retrospective one"):
        search_recording(gov, estate.admin, live, clip)
    with pytest.raises(RuleViolation, match="authorised, not started"):
        search_recording(gov, estate.admin, waiting, clip)
    later = Governance(engine=gov.engine, migrate=False, clock=lambda: datetime.now(UTC) + timedelta(hours=2))
    with pytest.raises(RuleViolation, match="may search only from"):
        search_recording(later, estate.admin, retro, clip)
    with pytest.raises(RuleViolation, match="SHA-256"), gov.transaction() as ctx:
        searches.start_search(ctx, estate.admin, retro, sha256="not a digest")
    new = _nothing_but_refusals(gov, rows, blobs, seq, expected=7)
    assert all(e.actor == "admin" for e in new)


def test_search_of_the_hamilton_clip_alerts_once_on_miranda(store_env: None, video_dir: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from openlfr.api.views import list_alerts
    from openlfr.face.analyzer import enrolment_template

    clip, refs = video_dir / CLIP, video_dir / "references"
    gov = Governance(template_fn=enrolment_template)
    estate, wl, cam = _estate(gov, [("SUBJ-0001", (refs / "lin-manuel-miranda.png").read_bytes()),
                                    ("SUBJ-0002", (refs / "alex-lacamoire.png").read_bytes())])
    dep = _deployment(gov, estate, wl, cam, "retrospective")

    monkeypatch.setenv("OPENLFR_PROGRESS_SECONDS", "0")  # a progress line for every frame (stderr is no terminal)
    proc = cli(["scan", str(clip), "--deployment", str(dep), "--json"], estate.reviewer)
    assert proc.returncode == 0, proc.stderr
    progress = proc.stderr.splitlines()
    assert progress[0].startswith("scanned 1 of ") and progress[0].endswith(" frames, 0 alerts"), progress[:3]
    assert any(line.endswith(" frames, 1 alert") for line in progress)
    assert progress[-1].startswith("1 alert in ") and " frames analysed (" in progress[-1]  # the summary
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    alerts, summary = lines[:-1], lines[-1]["summary"]
    assert len(alerts) == 1, lines
    alert = alerts[0]
    assert alert["label"] == "person 0" and alert["score"] >= THRESHOLD  # entry 0 is Miranda's photo
    assert alert["deployment"] == dep and alert["camera"] == cam and 1.0 < alert["video_time"] < 10.0
    assert summary["alerts"] == 1 and summary["people_passes"] == HAMILTON_PASSES <= summary["tracks"]
    assert summary["frames_analysed"] > 20
    assert summary["camera"] == "stage-door" and summary["sha256"] == file_sha256(clip)

    with gov.transaction() as ctx:
        stored = ctx.session.execute(select(Alert)).scalars().all()
        assert [(a.id, a.deployment_id, a.camera_id) for a in stored] == [(alert["alert"], dep, cam)]
        assert stored[0].retain_until > stored[0].at  # retained like a live alert
        media = ctx.session.execute(select(MediaItem)).scalars().one()
        assert media.alert_id == alert["alert"] and media.kind == "crop"
        crop = cv2.imdecode(np.frombuffer(media_bytes(ctx, media), np.uint8), cv2.IMREAD_COLOR)
        assert crop is not None and min(crop.shape[:2]) >= 80
        # reviewers of the deployment see it among their alerts
        me = ctx.session.execute(select(User).where(User.name == "reviewer")).scalar_one()
        assert [(a.id, a.deployment_id, a.label) for a in list_alerts(ctx, me)] == [(alert["alert"], dep, "person 0")]
        reviews.reviewer_for(ctx, estate.reviewer, "alert.view", alert["alert"])
        events = ctx.session.execute(select(AuditEvent).order_by(AuditEvent.seq)).scalars().all()
        start = [e for e in events if e.action == "search.start"]
        assert len(start) == 1 and start[0].actor == "reviewer"
        assert json.loads(start[0].details)["sha256"] == file_sha256(clip)
        by_search = {e.action for e in events if e.actor == "search:reviewer"}
        assert {"deployment.watchlist", "pipeline.start", "alert.record", "crop.record", "pipeline.counters",
                "search.end"} <= by_search
        end = json.loads(next(e for e in events if e.action == "search.end").details)
        assert end["alerts"] == [alert["alert"]] and end["stopped"] == ""
        assert verify(ctx.session).ok
    raw = gov.blob_store.sealed(media.blob)  # as stored: its file, or its row in the database
    assert b"PNG" not in raw[:64]  # encrypted at rest


def test_only_the_deployments_own_operator_admins_and_reviewers_may_search(store_env: None, video_dir: Path) -> None:
    clip = video_dir / CLIP
    gov = Governance(template_fn=fake_template)
    estate, wl, cam = _estate(gov, [("S-1", b"img-1")])
    dep = _deployment(gov, estate, wl, cam, "retrospective")
    other_admin = estate.organisation("Other Estate", OrgKind.SITE_OPERATOR)
    other_reviewer = estate.user("other-reviewer", Role.REVIEWER, by=other_admin)
    other_operator = estate.user("other-operator", Role.OPERATOR_ADMIN, by=other_admin)
    force_reviewer = estate.user("force-reviewer", Role.REVIEWER, org="force")
    rows, blobs, seq = _rows(gov), _blobs(), _last_seq(gov)

    refused(cli(["scan", str(clip), "--deployment", str(dep)], None), "log in first: openlfr login NAME")
    refused(cli(["scan", str(clip), "--deployment", str(dep)], other_reviewer), "cannot search footage")

    for actor, match in [(other_reviewer, "cannot search footage"), (other_operator, "cannot search footage"),
                         (force_reviewer, "cannot search footage"), (estate.supplier, "needs role"),
                         (estate.officer2, "needs role"), (Actor("not-a-token", "admin"), "not valid")]:
        with pytest.raises(PermissionDenied, match=match):
            search_recording(gov, actor, dep, clip)
    with pytest.raises(PermissionDenied, match="credential"):
        search_recording(gov, "admin", dep, clip)  # type: ignore[arg-type]  # a name alone proves nothing
    new = _nothing_but_refusals(gov, rows, blobs, seq, expected=9)
    assert [e.actor for e in new] == ["unverified:-", "other-reviewer", "other-reviewer", "other-operator",
                                      "force-reviewer", "met", "officer2", "unverified:admin", "unverified:admin"]

    # the deployment's own reviewer and operator admin may
    for actor in (estate.reviewer, estate.admin):
        with gov.transaction() as ctx:
            grant = searches.start_search(ctx, actor, dep, "stage-door", sha256=file_sha256(clip))
        assert (grant.deployment_id, grant.camera_id, grant.worker) == (dep, cam, f"search:{actor.name}")
    with pytest.raises(NotFoundError, match="not part of deployment"), gov.transaction() as ctx:
        searches.start_search(ctx, estate.admin, dep, "elsewhere", sha256=file_sha256(clip))


def test_a_search_stops_when_its_credential_is_revoked(store_env: None, video_dir: Path) -> None:
    from openlfr.face.analyzer import enrolment_template
    from openlfr.governance.credentials import revoke_all
    from openlfr.scan import SearchStopped

    clip, refs = video_dir / CLIP, video_dir / "references"
    gov = Governance(template_fn=enrolment_template)
    estate, wl, cam = _estate(gov, [("SUBJ-0001", (refs / "lin-manuel-miranda.png").read_bytes())])
    dep = _deployment(gov, estate, wl, cam, "retrospective")

    def revoke(_alert: object) -> None:  # e.g. the reviewer is deactivated while the search runs
        with gov.transaction() as ctx:
            me = ctx.session.execute(select(User).where(User.name == "reviewer")).scalar_one()
            revoke_all(ctx.session, me.id, ctx.now())

    with pytest.raises(SearchStopped, match="credential is not valid") as stopped:
        search_recording(gov, estate.reviewer, dep, clip, on_alert=revoke, recheck_s=0)
    result = stopped.value.result
    assert len(result.alerts) == 1 and result.analysed < 45  # the whole clip gives 45 analysed frames
    with gov.transaction() as ctx:
        actions = [a for (a,) in ctx.session.execute(select(AuditEvent.action).order_by(AuditEvent.seq))]
        assert actions.count("alert.record") == 1 and "search.continue.refused" in actions
        assert actions[-1] == "search.end"
        assert verify(ctx.session).ok
