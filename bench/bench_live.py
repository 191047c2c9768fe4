"""The live pipeline's speed on the 1080p street clip, and its alert latency, default settings.

* **Real-time factor**: the clip decoded in full (every frame, as from a camera) and analysed
  with the default :class:`~openlfr.pipeline.settings.CameraSettings`, as fast as it goes:
  clip duration / wall time (>= 1.0 means a camera of this kind can be followed live).
* **Paced run**: the clip played at real time as a camera would deliver it (late frames are
  dropped, never queued); reports the analysed frames per second actually achieved.
* **Alert latency**: frame capture -> alert committed to the store (before it is announced),
  over the paced runs. So that the street clip raises alerts, the bench first enrols the
  pedestrians whose faces are good enough (a crop of each from the clip, shared and put on
  the deployment's watchlist through the governance services, as an operator would).

    OMP_NUM_THREADS=2 python bench/bench_live.py [--runs 3] [--json]

Timings depend on the machine and on what else runs on it: rerun on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
from _common import data_dir

from openlfr.errors import InputError
from openlfr.governance.errors import RuleViolation
from openlfr.face.analyzer import enrolment_template
from openlfr.governance import Actor, Governance, OrgKind, Policy, Role, parse
from openlfr.governance.grounds import LegalBasis
from openlfr.governance import agreements, cameras, credentials, deployments, organisations, sharing, users, watchlists
from openlfr.governance.schemas import (
    OrganisationCreate,
    AgreementCreate, CameraCreate, DeploymentRequest, ShareImage, SignageCreate, UserCreate, WatchlistAdd,
    WatchlistCreate,
)
from openlfr.matching.similarity import similarity
from openlfr.pipeline.camera import CameraPipeline, pipeline_stage
from openlfr.pipeline.reader import LatestFrameReader, Prefetcher
from openlfr.pipeline.settings import CameraSettings
from openlfr.video.file_source import VideoFileSource
from openlfr.video.motion import pad_box
from openlfr.video.pacing import PacedSource


def enrolment_crops(clip: Path, times: list[float], settings: CameraSettings) -> list[bytes]:
    """PNG crops of distinct, good-quality faces at the given times of the clip: one a person,
    a face that matches one already taken at the face model's own threshold being the same
    person (each person once, as a watchlist lists them: several entries of one person would
    let a pass whose track breaks alert once for each)."""
    from openlfr.face.registry import model_threshold

    same_person = model_threshold()
    analyzer, detector = pipeline_stage(settings.detector)
    src = VideoFileSource(clip)
    crops: list[bytes] = []
    templates: list[np.ndarray] = []
    wanted = sorted(times)
    for frame in src:
        if not wanted:
            break
        if frame.time < wanted[0]:
            continue
        wanted.pop(0)
        faces = analyzer.analyze(frame.image, detector.detect(frame.image))
        for face in faces:
            if not face.quality.acceptable:
                continue
            if templates and float(np.max(similarity(face.template, np.stack(templates)))) >= same_person:
                continue  # already enrolled this person
            b = pad_box(face.box, 0.6, frame.image.shape)
            crop = frame.image[b.top : b.bottom + 1, b.left : b.right + 1]
            ok, png = cv2.imencode(".png", cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
            if ok:
                crops.append(png.tobytes())
                templates.append(face.template)
    return crops


def _token(ctx: object, name: str) -> Actor:
    """A credential of user ``name`` (as a login gives, without the password check)."""
    from sqlalchemy import select

    from openlfr.store.models import User

    user = ctx.session.execute(select(User).where(User.name == name)).scalar_one()  # type: ignore[attr-defined]
    token, _ = credentials.new_token(ctx.session, user, "cli", timedelta(hours=4), ctx.now())  # type: ignore[attr-defined]
    return Actor(token, name)


def live_store(root: Path, images: list[bytes], threshold: float) -> tuple[Governance, int, int, int]:
    """A store with a live deployment whose watchlist holds ``images``: (gov, deployment, camera, entries)."""
    gov = Governance(f"sqlite:///{root / 'openlfr.db'}", blob_root=root / "blobs", key=os.urandom(32),
                     policy=Policy(), template_fn=enrolment_template)
    now = datetime.now(UTC)
    me: dict[str, Actor] = {}
    with gov.transaction() as ctx:  # the parties, as real ones are made (docs/parties.md)
        for org, kind, admin, staff in [
            ("Estate", OrgKind.SITE_OPERATOR, "estate-admin", [("admin", Role.OPERATOR_ADMIN, None)]),
            ("Met", OrgKind.POLICE_FORCE, "met-admin",
             [("met", Role.SUPPLIER, None), ("officer", Role.AUTHORISING_OFFICER, "superintendent")])]:
            _, enrolment = organisations.register(ctx, OrganisationCreate(name=org, kind=kind), "bench",
                                                  is_host=org == "Estate")
            organisations.enrol(ctx, enrolment.token, admin, "bench password 1")
            me[admin] = _token(ctx, admin)
            for name, role, rank in staff:
                users.create_user(ctx, me[admin], UserCreate(name=name, role=role, rank=rank), None)
                me[name] = _token(ctx, name)
    with gov.transaction() as ctx:
        ag = agreements.create(ctx, me["met"], parse(
            AgreementCreate, operator="Estate", purpose="bench", lawful_basis="bench", valid_from=now,
            valid_until=now + timedelta(days=2), image_limit=100, allowed_categories=["wanted_by_court"],
            allow_under_18=False))
        agreements.approve(ctx, me["officer"], ag.id)
        ag_id = ag.id
    shared = []
    for i, image in enumerate(images):
        try:
            with gov.transaction() as ctx:
                shared.append(sharing.share_image(ctx, me["met"], ShareImage(
                    agreement_id=ag_id, category="wanted_by_court", warrant_ref="WA-2029-00123", reason="bench",
                    subject_ref=f"P-{i}",
                    image_date=(now - timedelta(days=1)).date()), image).id)
        except (InputError, RuleViolation) as err:  # no usable face in the crop, or below the quality floor
            print(f"skipped crop {i}: {err}", file=sys.stderr)
    with gov.transaction() as ctx:
        wl = watchlists.create_watchlist(ctx, me["admin"], WatchlistCreate(
            name="bench", criteria="bench", categories=["wanted_by_court"], size_cap=100))
        for i, image_id in enumerate(shared):
            watchlists.add_entry(ctx, me["admin"], WatchlistAdd(
                watchlist_id=wl.id, shared_image_id=image_id, label=f"pedestrian {i}", reason="bench",
                review_date=(now + timedelta(days=1)).date()))
        cam = cameras.add_camera(ctx, me["admin"], CameraCreate(name="street", location="bench"))
        wl_id, cam_id = wl.id, cam.id
    with gov.transaction() as ctx:
        dep = deployments.request(ctx, me["admin"], parse(
            DeploymentRequest, purpose="benchmark the live pipeline", watchlist_id=wl_id, camera_ids=[cam_id],
            start=now, end=now + timedelta(hours=2), threshold=threshold, legal_basis=LegalBasis.GDPR_UNLAWFUL_ACTS,
            dpia_ref="DPIA-bench", dpia_date=now.date(), eia_ref="EIA-bench", eia_date=now.date(),
            necessity="A benchmark of the live pipeline on a recorded clip, measuring its speed before real use.",
            proportionality="Recorded public-data footage only; no live camera, and nothing is kept after the run."))
        cameras.record_signage(ctx, me["admin"], SignageCreate(
            camera_id=cam_id, deployment_id=dep.id, text="Live facial recognition in use", checked_on=now.date()))
        deployments.authorise(ctx, me["officer"], dep.id)
        deployments.start(ctx, me["admin"], dep.id)
        dep_id = dep.id
    return gov, dep_id, cam_id, len(shared)


def percentile(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3, help="runs of each kind")
    ap.add_argument("--threshold", type=float, default=None,
                    help="deployment threshold (default: the configured face model's own default)")
    ap.add_argument("--set", action="append", default=[], metavar="SETTING=VALUE",
                    help="override a camera setting (JSON value), e.g. --set scan_bands=1")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    clip = data_dir() / "video" / "street_1080p.mp4"
    overrides = {k: json.loads(v) for k, v in (item.split("=", 1) for item in args.set)}
    settings = CameraSettings(**overrides)
    duration = VideoFileSource(clip).duration
    crops = enrolment_crops(clip, [0.8, 1.6, 2.4, 3.2, 4.0], settings)
    from openlfr.config import get_settings

    results: dict[str, object] = {"face_model": get_settings().models.face_model, "clip": clip.name,
                                  "duration_s": round(duration, 2), "settings": settings.model_dump(),
                                  "cpu_count": os.cpu_count(), "omp_threads": os.environ.get("OMP_NUM_THREADS")}
    with tempfile.TemporaryDirectory() as tmp:
        from openlfr.face.registry import model_threshold

        gov, dep, cam, entries = live_store(Path(tmp), crops, args.threshold or model_threshold())
        results["watchlist_entries"] = entries
        # real-time factor: every frame decoded (on a reader thread), analysed at the default rate
        rtf, busy = [], []
        for _ in range(args.runs):
            settings_i = settings.model_copy(update={"realert_after_s": 0.0})
            pipe = CameraPipeline(gov, dep, cam, settings_i)
            t = time.perf_counter()
            stats = pipe.run(Prefetcher(VideoFileSource(clip)))
            wall = time.perf_counter() - t
            rtf.append(duration / wall)
            busy.append({"wall_s": round(wall, 2), "analysed": stats.analysed, "detect_s": round(stats.detect_s, 2),
                         "faces_s": round(stats.faces_s, 2), "embed_s": round(stats.embed_s, 2),
                         "tracks": len(stats.tracks), "alerts": len(stats.alerts)})
        results["real_time_factor"] = {"median": round(statistics.median(rtf), 2), "runs": [round(r, 2) for r in rtf],
                                       "breakdown": busy}
        # paced (camera-like) runs: latency of every alert, analysed fps achieved
        latencies: list[float] = []
        waits: list[float] = []
        achieved, dropped = [], []
        for _ in range(args.runs):
            settings_i = settings.model_copy(update={"realert_after_s": 0.0})  # every run alerts afresh
            pipe = CameraPipeline(gov, dep, cam, settings_i)
            paced = PacedSource(VideoFileSource(clip))
            reader = LatestFrameReader(paced)
            stats = pipe.run(reader)
            latencies += stats.latencies_ms
            waits += stats.waits_ms
            achieved.append(stats.analysed / duration)
            dropped.append(paced.dropped + reader.dropped)
        results["paced"] = {
            "analysed_fps": [round(a, 2) for a in achieved], "target_fps": settings.analyse_fps,
            "frames_dropped": dropped,
            "alerts": len(latencies),
            "latency_ms_p50": None if not latencies else round(percentile(latencies, 50), 1),
            "latency_ms_p95": None if not latencies else round(percentile(latencies, 95), 1),
            "latency_ms_max": None if not latencies else round(max(latencies), 1),
            "of_which_waiting_ms_p50": None if not waits else round(percentile(waits, 50), 1),
        }
        gov.close()
    if args.json:
        print(json.dumps(results, indent=2))
        return
    r = results
    print(f"street clip {r['duration_s']} s 1080p, settings {overrides or 'default'}, {r['cpu_count']} CPUs, "
          f"{entries} enrolled pedestrians")
    print(f"real-time factor: {r['real_time_factor']['median']}x (runs {r['real_time_factor']['runs']})")
    for b in r["real_time_factor"]["breakdown"]:
        print(f"  {b}")
    p = r["paced"]
    print(f"paced at real time: analysed {p['analysed_fps']} fps of {p['target_fps']}, "
          f"dropped {p['frames_dropped']} frames")
    print(f"alert latency over {p['alerts']} alerts: p50 {p['latency_ms_p50']} ms, p95 {p['latency_ms_p95']} ms, "
          f"max {p['latency_ms_max']} ms (of which the frame waited for the loop: "
          f"p50 {p['of_which_waiting_ms_p50']} ms)")


if __name__ == "__main__":
    main()
