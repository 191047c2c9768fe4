"""Helpers for the governance tests: a settable clock, a fast fake template function and an
:class:`Estate` that builds the usual actors and objects."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import numpy as np

from openlfr.errors import NoFaceError
from openlfr.governance import Actor, Governance, OrgKind, Role, parse
from openlfr.governance import agreements, cameras, credentials, deployments, organisations, sharing, users, watchlists
from openlfr.governance.schemas import (
    AgreementCreate, CameraCreate, DeploymentRequest, OrganisationCreate, ShareImage, SignageCreate, UserCreate,
    WatchlistAdd, WatchlistCreate,
)

T0 = datetime(2030, 3, 1, 9, 0, tzinfo=UTC)
KEY = bytes(range(32))


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> datetime:
        self.now += timedelta(**kwargs)
        return self.now


FAKE_MODEL = "fake-test-model:00000000"


NOFACE_PIXEL = (0, 0, 0)  # the first pixel of an as_image(b"noface...") picture


def as_image(data: bytes) -> bytes:
    """``data`` itself if it is a JPEG or PNG, else a small PNG made from it (deterministic, one
    per distinct ``data``) that passes the image gate; ``b"noface..."`` gives one the fake
    template function finds no face in."""
    import io

    from PIL import Image

    from openlfr.face.image_gate import sniff

    if sniff(data):
        return data
    seed = int.from_bytes(hashlib.sha256(data).digest()[:8], "little")
    pixels = np.random.default_rng(seed).integers(16, 255, (16, 16, 3), dtype=np.uint8)
    if data.startswith(b"noface"):
        pixels[0, 0] = NOFACE_PIXEL
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "PNG")
    return out.getvalue()


def _no_face(image: bytes) -> bool:
    if image.startswith(b"noface"):
        return True
    if not image.startswith(b"\x89PNG"):
        return False
    import io

    from PIL import Image

    with Image.open(io.BytesIO(image)) as img:
        return img.size == (16, 16) and img.convert("RGB").getpixel((0, 0)) == NOFACE_PIXEL


def fake_template(image: bytes) -> tuple[np.ndarray, float, str]:
    """A deterministic unit vector from the bytes; ``as_image(b"noface...")`` images have no face."""
    if _no_face(image):
        raise NoFaceError("no face found in the image")
    seed = int.from_bytes(hashlib.sha256(image).digest()[:8], "little")
    vec = np.random.default_rng(seed).standard_normal(128).astype(np.float32)
    return vec / np.linalg.norm(vec), 0.9, FAKE_MODEL


# the structured grounds of a deployment request (a site operator's: UK GDPR; police=True: DPA
# 2018 s.35); dated before every test clock
def grounds(*, police: bool = False, **over: object) -> dict[str, object]:
    """Valid ``DeploymentRequest`` grounds, with ``over`` replacing any of them."""
    from openlfr.governance.grounds import LegalBasis

    base: dict[str, object] = {
        "legal_basis": LegalBasis.S35_SCH8_STATUTORY if police else LegalBasis.GDPR_UNLAWFUL_ACTS,
        "dpia_ref": "DPIA-2024-01", "dpia_date": date(2024, 6, 3), "eia_ref": "EIA-2024-01",
        "eia_date": date(2024, 6, 3),
        "necessity": "Serious violent offences in the area continue; patrols and CCTV review have failed to locate "
                     "suspects.",
        "proportionality": "Only wanted people are listed; other faces are discarded at once and signage warns "
                           "passers-by.",
    }
    return base | over


# watchlist categories of the usual agreement and watchlist; the first needs a warrant reference
CATEGORIES = ("wanted_by_court", "missing_at_risk")
WARRANT = "WA-2029-00123"
SIGN_TEXT = "Live facial recognition in use"

ADMIN_PASSWORD = "an admin password for tests"
FORCE = "Met Police"
OVERSIGHT = "ICO"


def token_for(gov: Governance, name: str) -> Actor:
    """A fresh credential of user ``name`` (as a login would give, without the password hashing)."""
    from datetime import timedelta

    from sqlalchemy import select

    from openlfr.store.models import User

    with gov.transaction() as ctx:
        user = ctx.session.execute(select(User).where(User.name == name)).scalar_one()
        token, _ = credentials.new_token(ctx.session, user, "cli", timedelta(days=3650), ctx.now())
    return Actor(token, name)


@dataclass
class Estate:
    """Builds the usual cast and objects: three organisations (the estate, the host; a police
    force; an oversight body), their first admins enrolled by one-time token, and users made by
    those admins. Each role attribute is that user's credential (an :class:`Actor`)."""

    gov: Governance
    clock: Clock
    admin: Actor = None  # type: ignore[assignment]  # operator admin of the estate
    supplier: Actor = None  # type: ignore[assignment]  # "met": supplier of the force
    officer: Actor = None  # type: ignore[assignment]  # superintendent of the force
    officer2: Actor = None  # type: ignore[assignment]  # a second superintendent of the force
    auditor: Actor = None  # type: ignore[assignment]  # "dpo": auditor of the oversight body
    reviewer: Actor = None  # type: ignore[assignment]  # reviewer of the estate
    estate_admin: Actor = None  # type: ignore[assignment]  # user admins of each organisation
    force_admin: Actor = None  # type: ignore[assignment]
    oversight_admin: Actor = None  # type: ignore[assignment]
    operator: str = "Estate Ltd"
    force: str = FORCE
    signed: set[int] = field(default_factory=set)  # cameras whose deployments get signage checks (camera())

    def setup_users(self) -> None:
        with self.gov.transaction() as ctx:
            tokens = {}
            for name, kind, host in [(self.operator, OrgKind.SITE_OPERATOR, True), (FORCE, OrgKind.POLICE_FORCE, False),
                                     (OVERSIGHT, OrgKind.OVERSIGHT_BODY, False)]:
                _, enrolment = organisations.register(ctx, OrganisationCreate(name=name, kind=kind), "test-setup",
                                                      is_host=host)
                tokens[name] = enrolment.token
            for name, org in [("estate-admin", self.operator), ("force-admin", FORCE), ("ico-admin", OVERSIGHT)]:
                organisations.enrol(ctx, tokens[org], name, ADMIN_PASSWORD)
        self.estate_admin = token_for(self.gov, "estate-admin")
        self.force_admin = token_for(self.gov, "force-admin")
        self.oversight_admin = token_for(self.gov, "ico-admin")
        cast = [("admin", Role.OPERATOR_ADMIN, None, self.estate_admin),
                ("reviewer", Role.REVIEWER, None, self.estate_admin),
                ("met", Role.SUPPLIER, None, self.force_admin),
                ("officer", Role.AUTHORISING_OFFICER, "superintendent", self.force_admin),
                ("officer2", Role.AUTHORISING_OFFICER, "chief_superintendent", self.force_admin),
                ("dpo", Role.AUDITOR, None, self.oversight_admin)]
        with self.gov.transaction() as ctx:
            for name, role, rank, by in cast:
                users.create_user(ctx, by, UserCreate(name=name, role=role, rank=rank), None)
        for attr, name in [("admin", "admin"), ("reviewer", "reviewer"), ("supplier", "met"), ("officer", "officer"),
                           ("officer2", "officer2"), ("auditor", "dpo")]:
            setattr(self, attr, token_for(self.gov, name))

    def organisation(self, name: str, kind: OrgKind) -> Actor:
        """Register another organisation, enrol its first admin and return the admin's credential."""
        admin = f"{name.lower().replace(' ', '-')}-admin"
        with self.gov.transaction() as ctx:
            _, enrolment = organisations.register(ctx, OrganisationCreate(name=name, kind=kind), "test-setup")
            organisations.enrol(ctx, enrolment.token, admin, ADMIN_PASSWORD)
        return token_for(self.gov, admin)

    def user(self, name: str, role: Role, *, org: str = "estate", rank: str | None = None,
             by: Actor | None = None) -> Actor:
        """Another user of the estate (``org="estate"``), the force or the oversight body, and its credential."""
        by = by or {"estate": self.estate_admin, "force": self.force_admin, "oversight": self.oversight_admin}[org]
        with self.gov.transaction() as ctx:
            users.create_user(ctx, by, UserCreate(name=name, role=role, rank=rank), None)
        return token_for(self.gov, name)

    def agreement(self, *, days: float = 30, limit: int = 10, categories: tuple[str, ...] = CATEGORIES,
                  under_18: bool = False, approve: bool = True, start_offset_days: float = 0,
                  operator: str | None = None) -> int:
        start = self.clock.now + timedelta(days=start_offset_days)
        data = parse(AgreementCreate, operator=operator or self.operator, purpose="locate people wanted on warrant",
                     lawful_basis="DPA 2018 s.35", valid_from=start, valid_until=start + timedelta(days=days),
                     image_limit=limit, allowed_categories=list(categories), allow_under_18=under_18)
        with self.gov.transaction() as ctx:
            row = agreements.create(ctx, self.supplier, data)
            if approve:
                agreements.approve(ctx, self.officer, row.id)
            return row.id

    def share(self, agreement_id: int, image: bytes, *, category: str = CATEGORIES[0], subject: str = "S-1",
              under_18: bool = False, warrant: str = WARRANT) -> int:
        data = ShareImage(agreement_id=agreement_id, category=category, reason="warrant 123", warrant_ref=warrant,
                          subject_ref=subject, image_date=date(2029, 12, 1), under_18=under_18)
        with self.gov.transaction() as ctx:
            return sharing.share_image(ctx, self.supplier, data, as_image(image)).id

    def watchlist(self, image_ids: list[int], *, name: str = "wl", cap: int = 100,
                  categories: tuple[str, ...] = CATEGORIES) -> int:
        with self.gov.transaction() as ctx:
            wl = watchlists.create_watchlist(ctx, self.admin, WatchlistCreate(
                name=name, criteria="warrant", categories=list(categories), size_cap=cap))
            for i, image_id in enumerate(image_ids):
                watchlists.add_entry(ctx, self.admin, WatchlistAdd(
                    watchlist_id=wl.id, shared_image_id=image_id, label=f"person {i}", reason="warrant",
                    review_date=(self.clock.now + timedelta(days=14)).date()))
            return wl.id

    def camera(self, name: str = "cam1", *, signage: bool = True) -> int:
        """A camera of the estate; with ``signage``, every deployment :meth:`request` asks for
        on it gets a signage check of its own (a deployment starts only on checks made for it)."""
        with self.gov.transaction() as ctx:
            cam = cameras.add_camera(ctx, self.admin, CameraCreate(name=name, location="north gate"))
        if signage:
            self.signed.add(cam.id)
        return cam.id

    def signage(self, deployment_id: int, camera_ids: list[int], *, photo: bytes | None = None) -> list[int]:
        """Record today's signage check of each camera for the deployment; the record ids."""
        with self.gov.transaction() as ctx:
            return [cameras.record_signage(ctx, self.admin, SignageCreate(
                camera_id=c, deployment_id=deployment_id, text=SIGN_TEXT, checked_on=self.clock.now.date()),
                photo=photo).id for c in camera_ids]

    def request(self, watchlist_id: int, camera_ids: list[int], *, hours: float = 8, offset_hours: float = 0,
                threshold: float = 0.6, **over: object) -> int:
        """Request a deployment as the estate's operator admin (``over``: other request fields)."""
        start = self.clock.now + timedelta(hours=offset_hours)
        data = parse(DeploymentRequest, purpose="locate wanted people at the estate", watchlist_id=watchlist_id,
                     camera_ids=camera_ids, start=start, end=start + timedelta(hours=hours), threshold=threshold,
                     **grounds(**over))
        with self.gov.transaction() as ctx:
            dep = deployments.request(ctx, self.admin, data).id
        if signed := [c for c in camera_ids if c in self.signed]:
            self.signage(dep, signed)
        return dep

    def live_deployment(self, n_images: int = 3) -> tuple[int, int, list[int]]:
        """(deployment id, camera id, shared image ids) of a deployment that is live now."""
        ag = self.agreement()
        images = [self.share(ag, f"img-{i}".encode(), subject=f"S-{i}") for i in range(n_images)]
        wl = self.watchlist(images)
        cam = self.camera()
        dep = self.request(wl, [cam])
        with self.gov.transaction() as ctx:
            deployments.authorise(ctx, self.officer2, dep)
            deployments.start(ctx, self.admin, dep)
        return dep, cam, images
