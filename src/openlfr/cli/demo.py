"""``openlfr demo-setup``: a small example estate that runs the main job end to end.

Built by the same steps real parties take (organisations registered at the machine, first
admins enrolled by one-time token, users made by their own admins, then each acting as
themselves): an approved agreement; the police supplier shares Lin-Manuel Miranda's photo and
a few LFW people onto a watchlist; two cameras stream the shared clips (the Hamilton clip, in
which Miranda appears, and the street clip) through the real source path, paced at real time
and looping, as cameras would; a live deployment on both whose signage was checked for it.
``openlfr serve`` then runs the cameras, and an alert reaches the reviewers' queue.

Rerunning it on a store that holds the demo succeeds: it says so, and starts a fresh demo
deployment when the last one is no longer live (that needs the demo users' password).
"""

from __future__ import annotations

import os
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from openlfr.cli.store import open_store
from openlfr.cli.support import progress, user_errors
from openlfr.errors import InputError, OpenLFRError

DEMO_HOST, DEMO_FORCE, DEMO_OVERSIGHT = "Estate Ltd", "Metropolitan Police", "Information Commissioner's Office"
# (organisation, kind, its first admin, who enrols with the organisation's one-time token)
DEMO_ORGS = [(DEMO_HOST, "site_operator", "estate-admin"), (DEMO_FORCE, "police_force", "met-admin"),
             (DEMO_OVERSIGHT, "oversight_body", "ico-admin")]
# (user, role, rank, organisation): each made by its own organisation's admin
DEMO_USERS = [("met", "supplier", None, DEMO_FORCE),
              ("supt-brown", "authorising_officer", "superintendent", DEMO_FORCE),
              ("alice", "operator_admin", None, DEMO_HOST),
              ("ruth", "reviewer", None, DEMO_HOST), ("sam", "reviewer", None, DEMO_HOST),
              ("ico", "auditor", None, DEMO_OVERSIGHT),
              # the estate's data protection officer: people's requests (/console/requests)
              ("dana", "dpo", None, DEMO_HOST)]
DEMO_REVIEWERS = [name for name, role, _, _ in DEMO_USERS if role == "reviewer"]
DEMO_PURPOSE = "Locate wanted violent offenders at the estate"
# (camera, location, clip under <shared data>/video): Miranda appears in the Hamilton clip
DEMO_CAMERAS = [("north-gate", "North gate, facing the square", "short_hamilton_clip.mp4"),
                ("station-exit", "Station exit B", "street_1080p.mp4")]
DEMO_REFERENCE = "lin-manuel-miranda.png"  # under <shared data>/video/references
#: how the demo cameras read their clips: at real time, starting again at the end
DEMO_CAMERA_SETTINGS = {"paced": True, "loop": True}
SIGN_TEXT = "Live facial recognition in use today. Complaints: dpo@estate.example"


def shared_data() -> Path:
    """The project's shared data: ``OPENLFR_DATA``, else ``../shared/data`` beside a source checkout."""
    env = os.environ.get("OPENLFR_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2].parent / "shared" / "data"


def _demo_images(folder: Optional[Path], count: int) -> list[Path]:
    folder = folder or shared_data() / "lfw"
    if not folder.is_dir():
        raise InputError(f"image folder {folder} not found; pass --images DIR with a few face photos")
    people = sorted(p for p in folder.iterdir() if p.is_dir())
    paths = [sorted(p.glob("*.jpg"))[0] for p in people if any(p.glob("*.jpg"))] if people else []
    if not paths:
        paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    if not paths:
        raise InputError(f"no .jpg/.png images in {folder}")
    return paths[:count]


def demo_recording(clip: Path) -> tuple[Path | None, str]:
    """Where a demo camera reads ``clip`` from, and a note for the user.

    Cameras may read recordings only inside the recording folders
    (:func:`openlfr.governance.camera_sources.file_roots`): the clip is used in place when it is
    inside one, else copied (private, 0600) into the first one's ``demo`` folder."""
    from openlfr.governance.camera_sources import file_roots

    if not clip.is_file():
        return None, f"{clip} not found: the camera has no stream"
    real, roots = clip.resolve(), file_roots()
    if any(real == r or r in real.parents for r in roots):
        return real, ""
    dest_dir = roots[0] / "demo"
    dest_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    for d in (roots[0], dest_dir):
        if d.stat().st_uid == os.getuid():
            d.chmod(0o700)
    dest = dest_dir / clip.name
    if not dest.is_file() or dest.stat().st_size != clip.stat().st_size:
        shutil.copyfile(clip, dest)
        dest.chmod(0o600)
    return dest, f"copied {clip.name} to {dest_dir} (cameras read recordings only there: OPENLFR_CAMERA_FILE_ROOTS)"


def _log_in(gov: Any, pw: dict[str, str], names: list[str], me: dict[str, Any]) -> None:
    from openlfr.cli.auth import cli_place
    from openlfr.governance import login as auth

    for name in names:
        result = auth.log_in(gov, name, pw[name], "cli", timedelta(hours=1), cli_place())
        if result is None:
            raise InputError(f"demo user {name} could not log in with the password given (--password)")
        me[name] = result[0]


def _deploy(gov: Any, me: dict[str, Any], watchlist_id: int, cams: list[int], threshold: float | None) -> int:
    """Request (alice), authorise (supt-brown), record the signage checks for it and start
    (alice) an 8-hour live deployment of the demo watchlist on ``cams``; its id."""
    from openlfr.face import registry
    from openlfr.governance import cameras, deployments, parse
    from openlfr.governance.grounds import LegalBasis
    from openlfr.governance.schemas import DeploymentRequest, SignageCreate

    alice, supt = me["alice"], me["supt-brown"]
    with gov.transaction() as ctx:
        now = ctx.now()
        dep = deployments.request(ctx, alice, parse(
            DeploymentRequest, purpose=DEMO_PURPOSE, watchlist_id=watchlist_id,
            camera_ids=cams, start=now, end=now + timedelta(hours=8),
            threshold=threshold or registry.model_threshold(),
            legal_basis=LegalBasis.GDPR_UNLAWFUL_ACTS, dpia_ref="DPIA-DEMO-1",
            dpia_date=now.date() - timedelta(days=14), eia_ref="EIA-DEMO-1",
            eia_date=now.date() - timedelta(days=14),
            necessity="Repeated violent offences near the square; patrols alone have not located the suspects.",
            proportionality="Only people wanted on warrant are listed, for eight hours at two signed cameras; "
                            "every other face is discarded at once."))
        deployments.authorise(ctx, supt, dep.id, "demo")
        for cam_id in cams:  # the notices checked for this deployment, then it may start
            cameras.record_signage(ctx, alice, SignageCreate(
                camera_id=cam_id, deployment_id=dep.id, checked_on=now.date(), text=SIGN_TEXT))
        deployments.start(ctx, alice, dep.id)
        return dep.id


def _log_out(gov: Any, me: dict[str, Any]) -> None:
    from contextlib import suppress

    from openlfr.governance import login as auth

    with gov.transaction() as ctx:
        for actor in me.values():
            with suppress(OpenLFRError):
                auth.logout(ctx, actor)


def demo_state(gov: Any) -> dict[str, Any] | None:
    """The demo already in the store: {"deployment", "live", "watchlist", "cameras"}; ``None``
    when the store holds no demo. (A non-demo store that is not empty raises.)"""
    from sqlalchemy import select

    from openlfr.store.models import Deployment, Organisation, User

    with gov.transaction() as ctx:
        if ctx.session.execute(select(Organisation.id)).first() is None:
            return None
        host = ctx.session.execute(select(Organisation).where(Organisation.name == DEMO_HOST)).scalars().first()
        alice = ctx.session.execute(select(User).where(User.name == "alice")).scalars().first()
        dep = ctx.session.execute(select(Deployment).where(Deployment.purpose == DEMO_PURPOSE)
                                  .order_by(Deployment.id.desc())).scalars().first()
        if host is None or not host.is_host or alice is None or dep is None:
            raise InputError("the store is not empty and holds no demo; demo-setup needs an empty store "
                             "(use another --data-dir or OPENLFR_DATABASE_URL)")
        now = ctx.now()
        live = dep.status == "live" and dep.start <= now < dep.end
        return {"deployment": dep.id, "live": live, "watchlist": dep.watchlist_id,
                "cameras": [c.id for c in dep.cameras], "end": dep.end}


def next_step(host: str = "127.0.0.1", port: int = 8000) -> str:
    """What to do once the demo is served (for demo-setup and serve)."""
    return (f"log in as {DEMO_REVIEWERS[0]} (or {', '.join(DEMO_REVIEWERS[1:])}) at http://{host}:{port}/login: "
            "an alert for Lin-Manuel Miranda (on the demo watchlist) arrives in the queue within a minute")


@user_errors
def demo_setup(
    images: Annotated[Optional[Path], typer.Option(help="Folder of face photos (default ../shared/data/lfw).")] = None,
    count: Annotated[int, typer.Option(help="How many LFW images to share beside Lin-Manuel Miranda's.")] = 5,
    threshold: Annotated[Optional[float], typer.Option(
        help="Deployment threshold (cosine similarity; default: the face model's own default).")] = None,
    password: Annotated[Optional[str], typer.Option(
        envvar="OPENLFR_DEMO_PASSWORD",
        help="One password for every demo user (default: a different random one each, printed once).")] = None,
) -> None:
    """Create an example estate that runs live facial recognition end to end, by the same steps
    real parties take; then 'openlfr serve' runs its cameras.

    The estate (the host), the Metropolitan Police and an oversight body, each with its first admin
    enrolled by one-time token; users made by their own organisation's admin; then, each logged
    in as themselves, an approved agreement, shared images (Lin-Manuel Miranda's photo from the
    shared data and a few LFW people, with warrant references) on a watchlist, two cameras
    streaming the shared clips (paced at real time, looping) and a live 8-hour deployment whose
    signage was checked for it. Verifies the audit log. On a store that already holds the demo it
    says so, and starts a fresh demo deployment if the last one is no longer live (with --password)."""
    import secrets

    from openlfr.audit import verify as verify_chain
    from openlfr.governance import agreements, cameras, organisations, parse, sharing, users, watchlists
    from openlfr.governance.grounds import WatchlistCategory
    from openlfr.governance.schemas import (AgreementCreate, CameraCreate, OrganisationCreate, OrgKind, Role,
                                            ShareImage, UserCreate, WatchlistAdd, WatchlistCreate)

    by = organisations.machine_user()
    me: dict[str, Any] = {}  # user name -> credential, while the demo acts
    with open_store(with_templates=True) as gov:
        state = demo_state(gov)
        if state is not None:
            _again(gov, state, password, threshold)
            return
        paths = _demo_images(images, count)
        reference = shared_data() / "video" / "references" / DEMO_REFERENCE
        if reference.is_file():
            paths = [reference, *paths]
        else:
            typer.echo(f"note: {reference} not found: Lin-Manuel Miranda is not on the demo watchlist")
        now = gov.clock()
        everyone = [admin for _, _, admin in DEMO_ORGS] + [name for name, *_ in DEMO_USERS]
        pw = {name: password or secrets.token_urlsafe(12) for name in everyone}
        with gov.transaction() as ctx:
            for org, kind, admin in DEMO_ORGS:  # registered at the machine, tokens redeemed by their admins
                _, enrolment = organisations.register(ctx, OrganisationCreate(name=org, kind=OrgKind(kind)), by,
                                                      is_host=org == DEMO_HOST)
                organisations.enrol(ctx, enrolment.token, admin, pw[admin])
        _log_in(gov, pw, [admin for _, _, admin in DEMO_ORGS], me)
        admin_of = {org: me[admin] for org, _, admin in DEMO_ORGS}
        with gov.transaction() as ctx:
            for name, role, rank, org in DEMO_USERS:
                users.create_user(ctx, admin_of[org], UserCreate(name=name, role=Role(role), rank=rank), pw[name])
        _log_in(gov, pw, [name for name, *_ in DEMO_USERS], me)
        met, supt, alice = me["met"], me["supt-brown"], me["alice"]
        try:
            with gov.transaction() as ctx:
                ag = agreements.create(ctx, met, parse(
                    AgreementCreate, operator=DEMO_HOST,
                    purpose="Locate people wanted on warrant for violent offences",
                    lawful_basis="DPA 2018 s.35 (law enforcement)", valid_from=now,
                    valid_until=now + timedelta(days=90), image_limit=50,
                    allowed_categories=[WatchlistCategory.WANTED_SERIOUS, WatchlistCategory.MISSING_AT_RISK]))
                agreements.approve(ctx, supt, ag.id)
            cams, notes = [], []
            for name, where, clip in DEMO_CAMERAS:
                source, note = demo_recording(shared_data() / "video" / clip)
                notes += [note] if note else []
                with gov.transaction() as ctx:
                    cam = cameras.add_camera(ctx, alice, CameraCreate(name=name, location=where, zone="public square",
                                                                      stream_url=str(source or "")))
                    if source is not None:  # a recording played as a camera would: real time, for ever
                        cameras.update_camera(ctx, alice, cam.id, {"settings": DEMO_CAMERA_SETTINGS})
                    cams.append(cam.id)
            for note in notes:
                typer.echo(note)
            with gov.transaction() as ctx:
                wl = watchlists.create_watchlist(ctx, alice, WatchlistCreate(
                    name="warrants", criteria="Wanted on warrant for a violent offence; image under 12 months old",
                    categories=[WatchlistCategory.WANTED_SERIOUS], size_cap=100))
            shared = 0
            with progress("shared", len(paths), "images") as bar:
                for i, path in enumerate(paths):
                    try:
                        prepared = sharing.prepare_image(gov.template_fn, path.read_bytes(), label=path.name)
                        with gov.transaction() as ctx:
                            img = sharing.share_image(ctx, met, ShareImage(
                                agreement_id=ag.id, category=WatchlistCategory.WANTED_SERIOUS,
                                reason=f"warrant W-{1000 + i}", warrant_ref=f"WA/{now.year}/{1000 + i:05d}",
                                subject_ref=f"MET-{i:04d}", image_date=now.date() - timedelta(days=30)), prepared)
                            watchlists.add_entry(ctx, alice, WatchlistAdd(
                                watchlist_id=wl.id, shared_image_id=img.id, label=path.stem,
                                reason=f"warrant W-{1000 + i}",
                                review_date=now.date() + timedelta(days=14)))
                        shared += 1
                        typer.echo(f"shared {path.name} as image {img.id}")
                    except OpenLFRError as err:  # an unusable photo is skipped, and its refusal audited
                        typer.echo(f"skipped {path.name}: {err}")
                    bar.advance(note=f"{i + 1 - shared} skipped" if i + 1 > shared else "")
                bar.done(f"{shared} of {len(paths)} images shared onto the watchlist")
            if not shared:
                raise InputError("none of the images could be shared")
            dep = _deploy(gov, me, wl.id, cams, threshold)
        finally:  # the demo's own sessions end with it
            _log_out(gov, me)
        with gov.transaction() as ctx:
            result = verify_chain(ctx.session)
    typer.echo(f"demo estate ready: agreement {ag.id}, {shared} images on watchlist {wl.id}, "
               f"deployment {dep} live on cameras {cams}")
    typer.echo(result.message())
    typer.echo("log-ins (name: password): "
               + ", ".join(f"{n}: {pw[n]} ({r.replace('_', ' ')}{', ' + k if k else ''}, {o})"
                           for n, r, k, o in DEMO_USERS)
               + "; each organisation's user admin: " + ", ".join(f"{a}: {pw[a]} ({o})" for o, _, a in DEMO_ORGS))
    typer.echo("next: openlfr serve (the console and API, and the cameras); then " + next_step())


def _again(gov: Any, state: dict[str, Any], password: str | None, threshold: float | None) -> None:
    """demo-setup on a store that holds the demo: say so; start a fresh deployment if needed."""
    reset = ("passwords are not shown again: reset one with 'openlfr admin break-glass NAME --reason ...' "
             "(the estate's users) or by the organisation's admin ('openlfr user password NAME')")
    if state["live"]:
        typer.echo(f"the demo is already set up: deployment {state['deployment']} is live on cameras "
                   f"{state['cameras']} until {state['end']:%Y-%m-%d %H:%M} UTC; {reset}")
        typer.echo("next: openlfr serve; then " + next_step())
        return
    if not password:
        raise InputError(f"the demo is set up but its deployment {state['deployment']} is no longer live; to start "
                         "a fresh one, run demo-setup again with the demo users' password (--password or "
                         f"OPENLFR_DEMO_PASSWORD); {reset}")
    me: dict[str, Any] = {}
    try:
        _log_in(gov, {n: password for n in ("alice", "supt-brown")}, ["alice", "supt-brown"], me)
        dep = _deploy(gov, me, state["watchlist"], state["cameras"], threshold)
    finally:
        _log_out(gov, me)
    typer.echo(f"the demo is already set up; its deployment {state['deployment']} was no longer live, so "
               f"deployment {dep} was requested, authorised and started on cameras {state['cameras']}")
    typer.echo("next: openlfr serve; then " + next_step())


def register(app: typer.Typer) -> None:
    """Add ``openlfr demo-setup`` to the main app."""
    app.command("demo-setup")(demo_setup)
