"""Helpers for the pipeline tests: a store with a live deployment whose watchlist holds real
reference photos, on the real clock (workers in other processes read the same clock)."""

from __future__ import annotations

import sys
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
                    camera_name: str = "cam1", hours: float = 4) -> tuple[int, int]:
    """(deployment id, camera id): a live deployment whose watchlist holds ``references``."""
    estate = Estate(gov, Clock(datetime.now(UTC)))
    estate.setup_users()
    ag = estate.agreement()
    images = []
    for i, p in enumerate(references):  # a pseudonymous reference, never the person's name (the file's stem)
        data = ShareImage(agreement_id=ag, category="wanted_by_court", warrant_ref="WA-2029-00123",
                          reason="warrant 123", subject_ref=f"SUBJ-{i + 1:04d}",
                          image_date=(estate.clock.now - timedelta(days=30)).date())
        with gov.transaction() as ctx:
            images.append(sharing.share_image(ctx, estate.supplier, data, p.read_bytes()).id)
    wl = estate.watchlist(images)
    with gov.transaction() as ctx:
        # the tests' stream servers listen on loopback: the estate's admin allows that network
        cameras.set_camera_networks(ctx, estate.admin, ["127.0.0.0/8"])
        cam = cameras.add_camera(ctx, estate.admin, parse(CameraCreate, name=camera_name, location="stage door",
                                                            stream_url=source))
        cam_id = cam.id
    dep = estate.request(wl, [cam_id], hours=hours, threshold=threshold)
    estate.signage(dep, [cam_id])  # the notice checked for this deployment
    with gov.transaction() as ctx:
        deployments.authorise(ctx, estate.officer2, dep)
        deployments.start(ctx, estate.admin, dep)
    return dep, cam_id


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
