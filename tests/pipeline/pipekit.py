"""Helpers for the pipeline tests: a store with a live deployment whose watchlist holds real
reference photos, on the real clock (workers in other processes read the same clock)."""

from __future__ import annotations

import base64
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "governance"))

from govkit import KEY, Clock, Estate, grounds, token_for  # noqa: E402,F401  (token_for: a user's credential)

from openlfr.governance import Governance, Policy, parse  # noqa: E402
from openlfr.governance import cameras, deployments, sharing  # noqa: E402
from openlfr.governance.schemas import CameraCreate, ShareImage, SignageCreate  # noqa: E402
from openlfr.store.models import Camera  # noqa: E402
from openlfr.store.blobs import BlobStore  # noqa: E402
from openlfr.pipeline.worker import StoreConfig  # noqa: E402

from openlfr.face.registry import model_threshold  # noqa: E402

#: faces in ``short_hamilton_clip.mp4`` large enough to be found, counted by eye: a man in close-up (0.8-1.4 s),
#: Lin-Manuel Miranda at the microphone (3-7 s) and, after a cut to the audience, three guests
#: (7.2-9 s). One pass each: his 40-odd detections are one pass.
HAMILTON_PASSES = 5
#: faces in ``street_1080p.mp4`` large enough (64 px and more) to be found at the default
#: ``min_face_size``, counted by eye: a woman crossing close to the camera in 1.4 s, two people
#: walking towards it and one at the left edge. (The others are too small or turned away.)
STREET_PASSES = 4
THRESHOLD = model_threshold()  # the configured model's default: about 1 false match in 10,000


@dataclass
class Store:
    """Where a test's store lives, so other processes can open it too."""

    url: str
    blobs: Path

    def governance(self, template_fn=None) -> Governance:  # noqa: ANN001
        return Governance(self.url, blob_root=self.blobs, key=KEY, policy=Policy(), template_fn=template_fn)


def make_store(tmp_path: Path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'openlfr.db'}", tmp_path / "blobs")


def live_deployment(gov: Governance, references: list[Path], source: str = "", threshold: float = THRESHOLD,
                    camera_name: str = "cam1", hours: float = 4, cameras_count: int = 1,
                    subjects: list[str] | None = None) -> tuple[int, int]:
    """(deployment id, first camera id): a live deployment whose watchlist holds ``references``
    (shared with the subject references ``subjects``; by default one person each), on
    ``cameras_count`` cameras reading ``source`` (``camera_name``, then ``camera_name-2``...)."""
    estate = Estate(gov, Clock(datetime.now(UTC)))
    estate.setup_users()
    ag = estate.agreement()
    images = []
    for i, p in enumerate(references):  # a pseudonymous reference, never the person's name (the file's stem)
        data = ShareImage(agreement_id=ag, category="wanted_by_court", warrant_ref="WA-2029-00123",
                          reason="warrant 123", subject_ref=subjects[i] if subjects else f"SUBJ-{i + 1:04d}",
                          image_date=(estate.clock.now - timedelta(days=30)).date())
        with gov.transaction() as ctx:
            images.append(sharing.share_image(ctx, estate.supplier, data, p.read_bytes()).id)
    wl = estate.watchlist(images)
    names = [camera_name] + [f"{camera_name}-{k}" for k in range(2, cameras_count + 1)]
    with gov.transaction() as ctx:
        # the tests' stream servers listen on loopback: the estate's admin allows that network
        cameras.set_camera_networks(ctx, estate.admin, ["127.0.0.0/8"])
        cam_ids = [cameras.add_camera(ctx, estate.admin, parse(CameraCreate, name=name, location="stage door",
                                                               stream_url=source)).id for name in names]
    dep = estate.request(wl, cam_ids, hours=hours, threshold=threshold)
    estate.signage(dep, cam_ids)  # the notice checked for this deployment
    with gov.transaction() as ctx:
        deployments.authorise(ctx, estate.officer2, dep)
        deployments.start(ctx, estate.admin, dep)
    return dep, cam_ids[0]


def blob_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def decrypt_all(root: Path) -> dict[str, bytes]:
    store = BlobStore(root, KEY)
    return {p.name: store.get(p.name) for p in blob_files(root)}


def second_live_deployment(gov: Governance, dep: int, name: str, source: str,
                           settings: dict | None = None) -> tuple[int, int]:
    """A second camera in a second live deployment of the same watchlist: (deployment, camera)."""
    admin, officer2 = token_for(gov, "admin"), token_for(gov, "officer2")
    with gov.transaction() as ctx:
        cam = cameras.add_camera(ctx, admin, parse(CameraCreate, name=name, location="street", stream_url=source)).id
        if settings:
            ctx.session.get(Camera, cam).settings = settings
        first = ctx.get(deployments.Deployment, dep, "deployment")
        data = parse(deployments.DeploymentRequest, purpose="locate wanted people at the estate",
                     watchlist_id=first.watchlist_id, camera_ids=[cam], start=first.start, end=first.end,
                     threshold=first.threshold, **grounds())
        dep2 = deployments.request(ctx, admin, data).id
        cameras.record_signage(ctx, admin, SignageCreate(camera_id=cam, deployment_id=dep2,
                                                         text="Live facial recognition in use",
                                                         checked_on=ctx.now().date()))
    with gov.transaction() as ctx:
        deployments.authorise(ctx, officer2, dep2)
        deployments.start(ctx, admin, dep2)
    return dep2, cam


def short_clip(video_dir: Path, path: Path, frames: int = 40) -> Path:
    """The first ``frames`` frames of the Hamilton clip (40: 1.6 s), as a recording of its own."""
    import cv2

    cap = cv2.VideoCapture(str(video_dir / "short_hamilton_clip.mp4"))
    out = None
    for _ in range(frames):
        ok, image = cap.read()
        if not ok:
            break
        if out is None:
            out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (image.shape[1], image.shape[0]))
        out.write(image)
    cap.release()
    assert out is not None
    out.release()
    return path


def real_store(db_url: str, tmp_path: Path) -> tuple[Governance, StoreConfig]:
    """A store enrolling with the real face model, and its config for worker processes."""
    from openlfr.face.analyzer import enrolment_template

    gov = Governance(db_url, blob_root=tmp_path / "blobs", key=KEY, template_fn=enrolment_template, migrate=False)
    return gov, StoreConfig(db_url, str(tmp_path / "blobs"), base64.b64encode(KEY).decode())


def wait_for(check: Callable[[], object], timeout: float, every: float = 0.1) -> object:
    """``check()``'s first true value within ``timeout`` seconds, else its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    return check()
