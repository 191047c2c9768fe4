"""Helpers for the API tests: the app under uvicorn on a free loopback port, a store of three
organisations (the estate, which hosts the installation; a police force; an oversight body)
whose first admins enrolled with one-time tokens and made their own users (each with a
password), a live deployment, and raising alerts as the pipeline does."""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import cv2
import httpx
import numpy as np
import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "governance"))
from govkit import fake_template, grounds  # noqa: E402

from openlfr.governance import Actor, Governance, OrgKind, Role, parse  # noqa: E402
from openlfr.governance import agreements, cameras, credentials, deployments, organisations  # noqa: E402
from openlfr.governance import sharing, users, watchlists  # noqa: E402
from openlfr.governance.schemas import (  # noqa: E402
    AgreementCreate, CameraCreate, DeploymentRequest, OrganisationCreate, ShareImage, SignageCreate, UserCreate,
    WatchlistAdd, WatchlistCreate,
)
from openlfr.pipeline.events import AlertEvent  # noqa: E402
from openlfr.pipeline.records import AlertRecord, store_alert  # noqa: E402

PASSWORD = "a long test password"
KEY = bytes(range(32))
ESTATE, FORCE, OVERSIGHT = "Estate Ltd", "Met Police", "ICO"
# the parties, and the first admin each enrolled with its one-time token
ORGS = {ESTATE: (OrgKind.SITE_OPERATOR, True), FORCE: (OrgKind.POLICE_FORCE, False),
        OVERSIGHT: (OrgKind.OVERSIGHT_BODY, False)}
ADMINS = {"estate-admin": ESTATE, "met-admin": FORCE, "ico-admin": OVERSIGHT}
# name -> (role, organisation, rank): each made by its own organisation's admin
STAFF: dict[str, tuple[Role, str, str | None]] = {
    "admin": (Role.OPERATOR_ADMIN, ESTATE, None),
    "reviewer": (Role.REVIEWER, ESTATE, None), "reviewer2": (Role.REVIEWER, ESTATE, None),
    "met": (Role.SUPPLIER, FORCE, None),
    "officer": (Role.AUTHORISING_OFFICER, FORCE, "superintendent"),
    "met-reviewer": (Role.REVIEWER, FORCE, None),
    "dpo": (Role.AUDITOR, OVERSIGHT, None),
}
ORG_ADMIN = {org: name for name, org in ADMINS.items()}
USERS: dict[str, Role] = {name: Role.ADMIN for name in ADMINS} | {name: r for name, (r, _, _) in STAFF.items()}
# one user per role for the route table (the auditor is the oversight body's)
ROLE_USER = {Role.ADMIN: "estate-admin", Role.OPERATOR_ADMIN: "admin", Role.SUPPLIER: "met",
             Role.AUTHORISING_OFFICER: "officer", Role.REVIEWER: "reviewer", Role.AUDITOR: "dpo"}
LABELS = ("Subject Alpha Label", "Subject Beta Label")
SUBJECT_REFS = ("SUBJREF-7781", "SUBJREF-7782")
WARRANT_REF = "WA-2029-00123"  # a warrant reference (the watchlist's category needs one)
ENTRY_REASON = "warrant WR-55501 for burglary"


def png(seed: int, size: int = 64) -> bytes:
    """A small, decodable PNG."""
    img = np.random.default_rng(seed).integers(0, 255, (size, size, 3), dtype=np.uint8)
    return cv2.imencode(".png", img)[1].tobytes()


def _lfw_faces() -> list[bytes] | None:
    """Two photos of one LFW person and one of another (watchlist images, probe), if the shared
    data is present: screenshots then show real faces. Read in place, never copied into the repo."""
    import os
    lfw = Path(os.environ.get("OPENLFR_DATA", Path(__file__).resolve().parents[3] / "shared" / "data")) / "lfw"
    people = [lfw / "Tony_Blair", lfw / "Colin_Powell"]
    # Tony_Blair_0002 to list: _0001 has a second, smaller face that real enrolment refuses
    files = [people[0] / "Tony_Blair_0002.jpg", people[1] / "Colin_Powell_0001.jpg", people[0] / "Tony_Blair_0001.jpg"]
    if not all(f.is_file() for f in files):
        return None
    return [f.read_bytes() for f in files]


FACES = _lfw_faces()


def watchlist_image(i: int) -> bytes:
    """The i-th watchlist image: a real face when the shared data is there, else noise."""
    return FACES[i] if FACES else png(i)


def probe_crop(i: int) -> bytes:
    """An alert's probe crop: the centre of another photo of the listed person, or noise."""
    if not FACES:
        return png(100 + i, 48)
    img = cv2.imdecode(np.frombuffer(FACES[2], np.uint8), cv2.IMREAD_COLOR)
    return cv2.imencode(".jpg", img[60:190, 60:190])[1].tobytes()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve(app: object) -> Iterator[str]:
    """Run ``app`` under uvicorn in a thread on a free loopback port; yields the base URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def bearer_tokens(url: str) -> dict[str, str]:
    """A bearer token for every user of the test store (logged in through the API)."""
    with httpx.Client(base_url=url, timeout=10) as c:
        out = {}
        for name in USERS:
            r = c.post("/api/auth/token", json={"name": name, "password": PASSWORD})
            r.raise_for_status()
            out[name] = r.json()["token"]
    return out


@dataclass
class Site:
    """The running server and what is in its store."""

    url: str
    gov: Governance
    app: object
    deployment_id: int
    camera_id: int
    entry_ids: list[int]
    agreement_id: int
    snapshot_hash: str
    tokens: dict[str, str] = field(default_factory=dict)

    def client(self, user: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[user]}"} if user else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=10, follow_redirects=False)

    def login(self, name: str, password: str = PASSWORD) -> str:
        """A new bearer token of ``name`` (through ``POST /api/auth/token``)."""
        r = httpx.post(f"{self.url}/api/auth/token", json={"name": name, "password": password}, timeout=10)
        r.raise_for_status()
        return r.json()["token"]

    def bearer(self, token: str) -> httpx.Client:
        """A client that sends ``token`` as its bearer token."""
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=10)

    def raise_alert(self, entry: int = 0, score: float = 0.81, announce: bool = True) -> int:
        """Store an alert as the pipeline does and (unless ``announce`` is false, as for a
        camera worker in another process) announce it on the bus; returns its id."""
        at = datetime.now(UTC)
        rec = AlertRecord(deployment_id=self.deployment_id, camera_id=self.camera_id, entry_id=self.entry_ids[entry],
                          label=LABELS[entry], score=score, at=at, track_id="t1", frame_index=10, video_time=0.4,
                          box=[1, 2, 30, 40], quality=0.9, crop=probe_crop(entry), snapshot_hash=self.snapshot_hash,
                          pass_window_s=0)  # each its own pass
        with self.gov.transaction() as ctx:
            stored = store_alert(ctx, rec, "test-worker")
        assert stored is not None
        alert_id = stored.alert_id
        if not announce:
            return alert_id
        self.app.state.bus.publish(AlertEvent(
            alert_id=alert_id, cursor=stored.cursor, deployment_id=self.deployment_id, camera_id=self.camera_id,
            entry_id=self.entry_ids[entry], label=LABELS[entry], score=score, at=at.isoformat(), track_id="t1",
            frame_index=10, video_time=0.4, box=[1, 2, 30, 40]))
        return alert_id


def actor(gov: Governance, name: str) -> Actor:
    """A fresh credential of ``name`` (as a command-line login gives, without hashing a password)."""
    from sqlalchemy import select

    from openlfr.store.models import User

    with gov.transaction() as ctx:
        user = ctx.session.execute(select(User).where(User.name == name)).scalar_one()
        token, _ = credentials.new_token(ctx.session, user, "cli", timedelta(days=30), ctx.now())
    return Actor(token, name)


def register(gov: Governance, name: str, kind: OrgKind, *, host: bool = False) -> str:
    """Register an organisation (machine-local) and return its one-time enrolment token."""
    with gov.transaction() as ctx:
        _, enrolment = organisations.register(ctx, OrganisationCreate(name=name, kind=kind), "test-setup", is_host=host)
        return enrolment.token


def organisation(gov: Governance, name: str, kind: OrgKind, admin: str,
                 staff: dict[str, tuple[Role, str | None]] | None = None) -> None:
    """Register an organisation, enrol its first admin and let the admin add ``staff`` (name ->
    (role, rank)), every one with :data:`PASSWORD`."""
    token = register(gov, name, kind)
    with gov.transaction() as ctx:
        organisations.enrol(ctx, token, admin, PASSWORD)
    if staff:
        by = actor(gov, admin)
        with gov.transaction() as ctx:
            for user, (role, rank) in staff.items():
                users.create_user(ctx, by, UserCreate(name=user, role=role, rank=rank), PASSWORD)


def build_store(gov: Governance) -> tuple[int, int, list[int], int, str]:
    """Three organisations with their admins and users (passwords for all), an agreement offered
    by the force's supplier and approved by its superintendent, two shared images on the
    estate's watchlist, a camera with signage, and a live deployment the estate requested and
    the force's officer authorised. Returns (deployment, camera, entries, agreement, hash)."""
    now = datetime.now(UTC)
    tokens = {org: register(gov, org, kind, host=host) for org, (kind, host) in ORGS.items()}
    with gov.transaction() as ctx:
        for name, org in ADMINS.items():
            organisations.enrol(ctx, tokens[org], name, PASSWORD)
    admins = {org: actor(gov, name) for name, org in ADMINS.items()}
    with gov.transaction() as ctx:
        for name, (role, org, rank) in STAFF.items():
            users.create_user(ctx, admins[org], UserCreate(name=name, role=role, rank=rank), PASSWORD)
    met, officer, admin = actor(gov, "met"), actor(gov, "officer"), actor(gov, "admin")
    with gov.transaction() as ctx:
        ag = agreements.create(ctx, met, parse(
            AgreementCreate, operator=ESTATE, purpose="locate people wanted on warrant",
            lawful_basis="DPA 2018 s.35", valid_from=now - timedelta(hours=1), valid_until=now + timedelta(days=30),
            image_limit=50, allowed_categories=["wanted_by_court", "missing_at_risk"]))
        agreements.approve(ctx, officer, ag.id)
        images = [sharing.share_image(ctx, met, ShareImage(
            agreement_id=ag.id, category="wanted_by_court", warrant_ref=WARRANT_REF, reason="warrant",
            subject_ref=SUBJECT_REFS[i], image_date=date(2026, 1, 1)), watchlist_image(i)) for i in range(2)]
        wl = watchlists.create_watchlist(ctx, admin, WatchlistCreate(name="wanted", criteria="warrant",
                                                                     categories=["wanted_by_court"], size_cap=10))
        entries = [watchlists.add_entry(ctx, admin, WatchlistAdd(
            watchlist_id=wl.id, shared_image_id=img.id, label=LABELS[i], reason=ENTRY_REASON,
            review_date=(now + timedelta(days=14)).date())) for i, img in enumerate(images)]
        cam = cameras.add_camera(ctx, admin, CameraCreate(name="north-gate", location="North gate, Estate Road"))
        dep = deployments.request(ctx, admin, parse(
            DeploymentRequest, purpose="locate wanted people at the estate", watchlist_id=wl.id, camera_ids=[cam.id],
            start=now - timedelta(minutes=5), end=now + timedelta(hours=8), threshold=0.6, **grounds()))
        cameras.record_signage(ctx, admin, SignageCreate(camera_id=cam.id, deployment_id=dep.id,
                                                         text="Live facial recognition in use", checked_on=now.date()))
        deployments.authorise(ctx, officer, dep.id)
        deployments.start(ctx, admin, dep.id)
        return dep.id, cam.id, [e.id for e in entries], ag.id, dep.snapshot_hash


def grounds_json(**over: object) -> dict[str, str]:
    """A deployment request's grounds (the estate's: UK GDPR) as JSON or form fields."""
    return {k: str(v) for k, v in grounds(**over).items()}


def make_gov(root: Path) -> Governance:
    return Governance(f"sqlite:///{root / 'openlfr.db'}", blob_root=root / "blobs", key=KEY,
                      template_fn=fake_template)


def console_login(client, name: str, password: str = PASSWORD):  # noqa: ANN001, ANN201
    """Log in through the console's form as a browser does: fetch the form (and its CSRF
    cookie), then post it with the token."""
    client.get("/login")
    token = client.cookies.get("openlfr_login_csrf", path="/login") or ""
    return client.post("/login", data={"name": name, "password": password, "csrf_token": token})
