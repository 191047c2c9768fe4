"""Helpers of the batch-job tests: a second face model, a store with shared images on
watchlists, and reading the audit log."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
from govkit import CATEGORIES, WARRANT, Estate, as_image, fake_template
from sqlalchemy import select

from openlfr.governance import Governance
from openlfr.store.models import AuditEvent

NEW_MODEL = "fake-test-model:new-0001"


def new_model(image: bytes) -> tuple[np.ndarray, float, str]:
    """Another face model than :func:`govkit.fake_template`'s: what a model change brings."""
    vec, quality, _ = fake_template(image)
    seed = int.from_bytes(hashlib.sha256(b"new" + image).digest()[:8], "little")
    other = np.random.default_rng(seed).standard_normal(vec.shape[0]).astype(np.float32)
    return other / np.linalg.norm(other), quality, NEW_MODEL


def as_configured_model(image: bytes) -> tuple[np.ndarray, float, str]:
    """:func:`govkit.fake_template`'s vector, labelled as the configured face model's: a
    watchlist a search's pipeline accepts, for clips where no face is found."""
    from openlfr.config import get_settings
    from openlfr.face.registry import registry

    vec, quality, _ = fake_template(image)
    return vec, quality, registry().embedder(get_settings().models.face_model).model_id


def share(estate: Estate, agreement: int, image: bytes, subject: str) -> int:
    """Share ``image`` (bytes, or a seed of a made-up one) under ``agreement`` as the force's
    supplier, dated a month before the estate's clock."""
    from datetime import timedelta

    from openlfr.governance import sharing
    from openlfr.governance.schemas import ShareImage

    data = ShareImage(agreement_id=agreement, category=CATEGORIES[0], reason="warrant 123", warrant_ref=WARRANT,
                      subject_ref=subject, image_date=(estate.clock.now - timedelta(days=30)).date())
    with estate.gov.transaction() as ctx:
        return sharing.share_image(ctx, estate.supplier, data, as_image(image)).id


def watchlists(estate: Estate, sizes: list[int], images: list[bytes] | None = None) -> list[int]:
    """Watchlists of the estate holding ``sizes`` distinct shared images each (made up, or
    ``images`` in turn), templated by the model configured when they were shared."""
    agreement = estate.agreement(limit=sum(sizes) + 1)
    out = []
    n = 0
    for w, size in enumerate(sizes):
        ids = []
        for _ in range(size):
            ids.append(share(estate, agreement, images[n] if images else f"img-{n}".encode(), f"S-{n + 1}"))
            n += 1
        out.append(estate.watchlist(ids, name=f"wl-{w}"))
    return out


def events(gov: Governance, after: int = 0, action: str | None = None) -> list[AuditEvent]:
    """Audit events after ``after`` (of one action, when given), oldest first, detached."""
    with gov.reading() as ctx:
        query = select(AuditEvent).where(AuditEvent.seq > after).order_by(AuditEvent.seq)
        if action is not None:
            query = query.where(AuditEvent.action == action)
        rows = list(ctx.session.execute(query).scalars())
        ctx.session.expunge_all()
        return rows


def details(event: AuditEvent) -> dict[str, Any]:
    return json.loads(event.details)


def last_seq(gov: Governance) -> int:
    found = events(gov)
    return found[-1].seq if found else 0


def template_models(gov: Governance, watchlist_id: int) -> list[str]:
    """The model of each active entry's template on a watchlist."""
    from openlfr.store.models import SharedImage, WatchlistEntry

    with gov.reading() as ctx:
        return list(ctx.session.execute(
            select(SharedImage.template_model).join(WatchlistEntry, WatchlistEntry.shared_image_id == SharedImage.id)
            .where(WatchlistEntry.watchlist_id == watchlist_id).order_by(SharedImage.id)).scalars())


def retrospective(estate: Estate, watchlist_id: int, *, hours: float = 4,
                  camera: str = "stage-door") -> tuple[int, int]:
    """(deployment, camera): a started retrospective deployment of the watchlist on a new camera
    (recorded footage needs no signage check)."""
    from datetime import timedelta

    from govkit import grounds

    from openlfr.governance import deployments, parse
    from openlfr.governance.schemas import DeploymentRequest

    cam = estate.camera(camera, signage=False)
    now = estate.clock.now
    data = parse(DeploymentRequest, kind="retrospective", purpose="find a wanted person in recorded footage",
                 watchlist_id=watchlist_id, camera_ids=[cam], start=now, end=now + timedelta(hours=hours),
                 threshold=0.6, **grounds())
    with estate.gov.transaction() as ctx:
        dep = deployments.request(ctx, estate.admin, data).id
        deployments.authorise(ctx, estate.officer2, dep)
        deployments.start(ctx, estate.admin, dep)
    return dep, cam


def faceless_clip(path: Path, seconds: float = 2.0, fps: float = 10.0) -> Path:
    """A short recording with no face in it (moving noise), for searches that need no model."""
    import cv2

    rng = np.random.default_rng(7)
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (160, 120))
    for _ in range(int(seconds * fps)):
        out.write(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8))
    out.release()
    return path
