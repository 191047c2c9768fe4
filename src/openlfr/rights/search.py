"""The search by face for a person's request: the requester's photo against what one organisation holds.

Three galleries, each compared with its own face model (a template is only comparable with
one of the same model) at that model's calibrated threshold
(:attr:`~openlfr.face.registry.EmbedderEntry.default_threshold`: about 1 false match in 10,000
comparisons of strangers):

* **watchlist entries** still on a watchlist: the organisation's own watchlists (a site
  operator), or entries built from images the organisation supplied (a police force);
* **alerts' crops** still held, of deployments the organisation runs or its officers authorised:
  the largest face in each crop is found and embedded with the deployment's model;
* **shared images** not deleted, of agreements the organisation is party to (supplier or operator).

Only scores above the threshold become findings, and a finding is only ever a candidate: a
person says whether it is the requester (:func:`openlfr.rights.requests.review_finding`)
before any answer names it. Nothing is kept of the comparisons that did not match.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
from sqlalchemy import or_, select

from openlfr.errors import ModelError, NotFoundError, OpenLFRError
from openlfr.governance.context import Ctx
from openlfr.governance.schemas import OrgKind
from openlfr.rights.keys import media_bytes
from openlfr.store.models import (
    Agreement,
    Alert,
    Deployment,
    MediaItem,
    Organisation,
    SharedImage,
    User,
    Watchlist,
    WatchlistEntry,
)

#: what each finding kind is called in messages and letters
KINDS = ("alert", "watchlist_entry", "shared_image")
#: an alert's review outcome as an answer says it
REVIEW_STATES = {"true": "confirmed as the listed person", "false": "dismissed as a false alert",
                 "unsure": "marked unsure by its reviewers"}
#: a crop whose short side is under this is enlarged before the face is looked for (detectors
#: miss small faces; a crop is a face with a margin, so enlarging it finds the face again)
MIN_CROP_SIDE = 160

# (model id, image bytes) -> unit template of the largest face, or None when no face is found
Embed = Callable[[str, bytes], "np.ndarray | None"]


@dataclass(frozen=True)
class Hit:
    """One record whose face scored at or above its model's threshold against the requester's."""

    kind: str  # alert | watchlist_entry | shared_image
    object_id: int
    score: float
    threshold: float
    model_id: str


@dataclass
class SearchReport:
    """What a search compared, what it could not, and what it found."""

    hits: list[Hit] = field(default_factory=list)
    searched: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    # records that could not be compared, and why (a model not installed here, a crop with no face)
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, why: str) -> None:
        self.skipped[why] = self.skipped.get(why, 0) + 1


def registry_name(model_id: str) -> str:
    """The registry name of the installed embedder whose model id is ``model_id``, or
    :class:`ModelError` when none is."""
    from openlfr.face.registry import registry

    reg = registry()
    wanted = reg.by_model_id(model_id)  # ModelError when none
    return next(name for name, entry in reg.embedders.items() if entry is wanted)


def threshold_of(model_id: str) -> float:
    """The calibrated threshold (about 1 false match in 10,000) of the model ``model_id``."""
    from openlfr.face.registry import registry

    return float(registry().by_model_id(model_id).default_threshold)


@lru_cache(maxsize=4)
def _analyzer(model_id: str):
    from openlfr.face.analyzer import default_analyzer

    return default_analyzer(model=registry_name(model_id))


def embed_largest(model_id: str, image: bytes) -> np.ndarray | None:
    """The unit template (model ``model_id``) of the largest face in ``image``; None when no face
    is found. A small image (a crop) is enlarged first, as detectors miss small faces."""
    import cv2

    from openlfr.face.image import load_image

    pixels = load_image(image)
    short = min(pixels.shape[:2])
    if short < MIN_CROP_SIDE:
        scale = MIN_CROP_SIDE / short
        pixels = cv2.resize(pixels, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    faces = _analyzer(model_id).analyze(pixels)
    if not faces:
        return None
    return np.asarray(max(faces, key=lambda f: f.box.area).template, dtype=np.float32)


def _images_of_org(ctx: Ctx, org: Organisation) -> list[SharedImage]:
    """Live shared images of agreements ``org`` is party to."""
    return list(ctx.session.execute(
        select(SharedImage).join(Agreement, Agreement.id == SharedImage.agreement_id)
        .where(SharedImage.deleted_at.is_(None),
               or_(Agreement.supplier_org_id == org.id, Agreement.operator_org_id == org.id))
        .order_by(SharedImage.id)).scalars())


def _entries_of_org(ctx: Ctx, org: Organisation) -> list[WatchlistEntry]:
    """Watchlist entries still listed: on ``org``'s watchlists, or (a police force) built from its images."""
    query = select(WatchlistEntry).join(SharedImage, SharedImage.id == WatchlistEntry.shared_image_id) \
        .where(WatchlistEntry.removed_at.is_(None), SharedImage.deleted_at.is_(None))
    if OrgKind(org.kind) is OrgKind.POLICE_FORCE:
        query = query.join(Agreement, Agreement.id == SharedImage.agreement_id) \
            .where(Agreement.supplier_org_id == org.id)
    else:
        query = query.join(Watchlist, Watchlist.id == WatchlistEntry.watchlist_id) \
            .where(Watchlist.organisation_id == org.id)
    return list(ctx.session.execute(query.order_by(WatchlistEntry.id)).scalars())


def _crops_of_org(ctx: Ctx, org: Organisation) -> list[Any]:
    """Alerts' crops still held, of deployments ``org`` runs or its officers authorised."""
    officers = select(User.id).where(User.organisation_id == org.id)
    return list(ctx.session.execute(
        select(MediaItem, Deployment).join(Alert, Alert.id == MediaItem.alert_id)
        .join(Deployment, Deployment.id == Alert.deployment_id)
        .where(MediaItem.kind == "crop", MediaItem.deleted_at.is_(None), MediaItem.blob.is_not(None),
               Alert.deleted_at.is_(None),
               or_(Deployment.organisation_id == org.id, Deployment.authorised_by_id.in_(officers)))
        .order_by(MediaItem.alert_id, MediaItem.id)).all())


@dataclass
class Gallery:
    """What one organisation holds, read out of the store so that the faces can be compared
    after the transaction has ended (embedding crops takes time; no lock is held meanwhile)."""

    # (kind, record id, model id, unit template) of watchlist entries and shared images
    templates: list[tuple[str, int, str, np.ndarray]] = field(default_factory=list)
    # (alert id, the deployment's model id or None, the crop's bytes) of alerts still held
    crops: list[tuple[int, str | None, bytes]] = field(default_factory=list)


def gather(ctx: Ctx, org: Organisation) -> Gallery:
    """Read every record ``org`` holds that a search compares (see the module doc)."""
    from openlfr.governance.sharing import load_template

    gallery = Gallery()
    templates: dict[int, np.ndarray] = {}

    def template_of(image: SharedImage) -> np.ndarray:
        if image.id not in templates:
            templates[image.id] = load_template(ctx, image)
        return templates[image.id]

    for entry in _entries_of_org(ctx, org):
        gallery.templates.append(("watchlist_entry", entry.id, entry.shared_image.template_model,
                                  template_of(entry.shared_image)))
    for image in _images_of_org(ctx, org):
        gallery.templates.append(("shared_image", image.id, image.template_model, template_of(image)))
    seen: set[int] = set()
    for media, dep in _crops_of_org(ctx, org):
        if media.alert_id in seen:
            continue  # one crop an alert
        try:
            data = media_bytes(ctx, media)
        except NotFoundError:  # erased or deleted meanwhile
            continue
        seen.add(int(media.alert_id))
        gallery.crops.append((int(media.alert_id), dep.model_id or None, data))
    return gallery


def compare(gallery: Gallery, photo: bytes, embed: Embed = embed_largest) -> SearchReport:
    """Compare the face in ``photo`` with every record of ``gallery``; needs no store."""
    report = SearchReport()
    probes: dict[str, np.ndarray | None] = {}

    def probe(model_id: str) -> np.ndarray | None:
        if model_id not in probes:
            try:
                probes[model_id] = embed(model_id, photo)
            except ModelError:
                probes[model_id] = None
        return probes[model_id]

    def match(kind: str, object_id: int, model_id: str, template: np.ndarray) -> None:
        mine = probe(model_id)
        if mine is None:
            report.skip(f"face model {model_id} not installed here")
            return
        report.searched[kind] += 1
        score = float(np.dot(mine, template))
        threshold = threshold_of(model_id)
        if score >= threshold:
            report.hits.append(Hit(kind, object_id, round(score, 6), threshold, model_id))

    for kind, object_id, model_id, template in gallery.templates:
        match(kind, object_id, model_id, template)
    for alert_id, crop_model, data in gallery.crops:
        if not crop_model:
            report.skip("deployment without a face model")
            continue
        if probe(crop_model) is None:
            report.skip(f"face model {crop_model} not installed here")
            continue
        try:
            face = embed(crop_model, data)
        except OpenLFRError:
            report.skip("crop that cannot be read as an image")
            continue
        if face is None:
            report.skip("crop in which no face was found")
            continue
        match("alert", alert_id, crop_model, face)
    report.hits.sort(key=lambda h: (-h.score, h.kind, h.object_id))
    return report


def search_org(ctx: Ctx, org: Organisation, photo: bytes, embed: Embed = embed_largest) -> SearchReport:
    """Compare the face in ``photo`` with every record ``org`` holds (see the module doc), in the
    caller's transaction (:func:`gather` then :func:`compare`)."""
    return compare(gather(ctx, org), photo, embed)


def describe(ctx: Ctx, kind: str, object_id: int) -> tuple[str, bool]:
    """What a found record is, in a few words that name nobody (an alert's camera, hour and
    review state; an entry's watchlist and dates; a shared image's agreement and dates; never a
    label, a subject reference or a reason, which may be another person's), and whether its
    face is still held (so it can be shown to the person judging the finding)."""
    from openlfr.store.models import Camera

    if kind == "alert":
        alert = ctx.session.get(Alert, object_id)
        if alert is not None:
            cam = ctx.session.get(Camera, alert.camera_id)
            state = REVIEW_STATES.get(alert.review_outcome or "", "not reviewed")
            gone = alert.pseudonymised_at is not None or alert.deleted_at is not None
            return (f"alert {object_id}: camera {cam.name if cam else alert.camera_id}"
                    f"{' (' + cam.location + ')' if cam and cam.location else ''}, "
                    f"{alert.at:%Y-%m-%d %H:%M} UTC, deployment {alert.deployment_id}, {state}"
                    f"{', erased' if gone else ''}"), not gone
    elif kind == "watchlist_entry":
        entry = ctx.session.get(WatchlistEntry, object_id)
        if entry is not None:
            removed = f", removed {entry.removed_at:%Y-%m-%d}" if entry.removed_at else ""
            return (f"watchlist entry {object_id}: watchlist {entry.watchlist_id}, added "
                    f"{entry.added_at:%Y-%m-%d}{removed}"), entry.shared_image.image_blob is not None
    elif kind == "shared_image":
        image = ctx.session.get(SharedImage, object_id)
        if image is not None:
            deleted = f", deleted {image.deleted_at:%Y-%m-%d}" if image.deleted_at else ""
            return (f"shared image {object_id}: agreement {image.agreement_id}, shared "
                    f"{image.shared_at:%Y-%m-%d}{deleted}"), image.image_blob is not None
    return f"{kind.replace('_', ' ')} {object_id}: no longer held", False


def summaries(ctx: Ctx, items: Iterable[tuple[str, int]]) -> dict[tuple[str, int], str]:
    """:func:`describe`'s words for each found record."""
    return {(kind, object_id): describe(ctx, kind, object_id)[0] for kind, object_id in items}


__all__ = [
    "KINDS",
    "Embed",
    "Gallery",
    "compare",
    "describe",
    "gather",
    "Hit",
    "SearchReport",
    "embed_largest",
    "registry_name",
    "search_org",
    "summaries",
    "threshold_of",
]
