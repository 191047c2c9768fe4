"""Governance commands: ``openlfr user|agreement|share|camera|deployment|retention|audit`` and
``openlfr demo-setup``. :func:`register` adds them to the main app.

Each command is one transaction on the store (``OPENLFR_DATABASE_URL``, default SQLite in
the data directory); the acting user is named with ``--as`` (or ``OPENLFR_USER``) and the
services check that user's role. Refused or invalid actions print one line and exit 2.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from openlfr.cli_support import fail as _fail
from openlfr.cli_support import user_errors as _errors
from openlfr.errors import InputError, OpenLFRError
from openlfr.governance.schemas import Role
from openlfr.matching.similarity import DEFAULT_THRESHOLD


user_app = typer.Typer(help="Users and their roles.", no_args_is_help=True)
agreement_app = typer.Typer(help="Data-sharing agreements between a supplier and an operator.", no_args_is_help=True)
share_app = typer.Typer(help="Share images under an agreement; the supplier's ledger.", no_args_is_help=True)
camera_app = typer.Typer(help="Cameras and their signage checks.", no_args_is_help=True)
deployment_app = typer.Typer(help="Governed watchlists and authorised deployments.", no_args_is_help=True)
retention_app = typer.Typer(help="Delete what has reached the end of its retention period.", no_args_is_help=True)
audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)

Actor = Annotated[str, typer.Option("--as", envvar="OPENLFR_USER", help="Acting user (or OPENLFR_USER).")]
JsonOut = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]






def _template_fn() -> Callable[[bytes], Any]:
    try:
        from openlfr.face.analyzer import enrolment_template
    except ImportError as err:  # pragma: no cover - the face pipeline ships with openlfr
        raise InputError(f"the face pipeline is not available: {err}") from err
    return enrolment_template


def _governance(with_templates: bool = False) -> Any:
    from openlfr.governance import Governance

    return Governance(template_fn=_template_fn() if with_templates else None)


@contextmanager
def _tx(with_templates: bool = False) -> Iterator[Any]:
    gov = _governance(with_templates)
    try:
        with gov.transaction() as ctx:
            yield ctx
    finally:
        gov.close()


def _when(text: str) -> datetime:
    """ISO date or datetime; naive values are taken as UTC."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError as err:
        raise InputError(f"{text!r} is not an ISO date or date-time (e.g. 2030-03-01T09:00)") from err
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as err:
        raise InputError(f"{text!r} is not an ISO date (YYYY-MM-DD)") from err


def _out(rows: list[dict[str, Any]], json_out: bool) -> None:
    if json_out:
        sys.stdout.write(json.dumps(rows, indent=2, default=str) + "\n")
        return
    if not rows:
        typer.echo("(none)")
    for row in rows:
        typer.echo("  ".join(f"{k}={v}" for k, v in row.items()))


# ---------------------------------------------------------------- users
@user_app.command("add")
@_errors
def user_add(
    name: str, role: Annotated[str, typer.Option(help="supplier, operator_admin, authorising_officer, reviewer, auditor")],
    actor: Annotated[str, typer.Option(
        "--as", envvar="OPENLFR_USER", help="Acting operator admin (not needed for the first user).")] = "setup",
    organisation: Annotated[str, typer.Option("--org", help="The user's organisation.")] = "",
) -> None:
    """Add a user (the first user of a new store must be an operator_admin)."""
    from openlfr.governance import parse, users
    from openlfr.governance.schemas import UserCreate

    data = parse(UserCreate, name=name, role=role, organisation=organisation)
    with _tx() as ctx:
        user = users.create_user(ctx, actor, data)
        typer.echo(f"user {user.id} {user.name} ({user.role})")


@user_app.command("list")
@_errors
def user_list(json_out: JsonOut = False) -> None:
    """List users."""
    from openlfr.governance import users

    with _tx() as ctx:
        _out([{"id": u.id, "name": u.name, "role": u.role, "organisation": u.organisation}
              for u in users.list_users(ctx)], json_out)


# ---------------------------------------------------------------- agreements
@agreement_app.command("create")
@_errors
def agreement_create(
    actor: Actor,
    operator: Annotated[str, typer.Option(help="Organisation the images are shared with.")],
    purpose: Annotated[str, typer.Option()],
    lawful_basis: Annotated[str, typer.Option(help="e.g. 'DPA 2018 s.35'.")],
    valid_from: Annotated[str, typer.Option("--from", help="ISO date/time (UTC if no zone).")],
    valid_until: Annotated[str, typer.Option("--until", help="ISO date/time (UTC if no zone).")],
    limit: Annotated[int, typer.Option(help="Most images shared at any time.")],
    category: Annotated[list[str], typer.Option(help="Allowed watchlist category (repeat).")],
    allow_under_18: Annotated[bool, typer.Option(help="Allow images of under-18s.")] = False,
) -> None:
    """A supplier offers an agreement (a draft until an authorising officer approves it)."""
    from openlfr.governance import agreements, parse
    from openlfr.governance.schemas import AgreementCreate

    data = parse(AgreementCreate, operator=operator, purpose=purpose, lawful_basis=lawful_basis,
                 valid_from=_when(valid_from), valid_until=_when(valid_until), image_limit=limit,
                 allowed_categories=category, allow_under_18=allow_under_18)
    with _tx() as ctx:
        row = agreements.create(ctx, actor, data)
        typer.echo(f"agreement {row.id} created (draft)")


def _agreement_action(name: str, needs_reason: bool) -> None:
    def command(
        agreement_id: int, actor: Actor,
        reason: Annotated[str, typer.Option(help="Why (recorded in the audit log).")] = "",
    ) -> None:
        from openlfr.governance import agreements

        if needs_reason and not reason.strip():
            _fail(f"--reason is required to {name} an agreement")
        with _tx() as ctx:
            fn = getattr(agreements, name)
            row = fn(ctx, actor, agreement_id, reason) if needs_reason else fn(ctx, actor, agreement_id)
            typer.echo(f"agreement {row.id} is {row.status}")

    command.__doc__ = {"approve": "Approve a draft agreement (authorising officer).",
                       "suspend": "Pause sharing under an agreement.",
                       "resume": "Lift a suspension.",
                       "end": "End an agreement and purge its images and templates."}[name]
    agreement_app.command(name)(_errors(command))


for _name, _reason in (("approve", False), ("suspend", True), ("resume", False), ("end", True)):
    _agreement_action(_name, _reason)


@agreement_app.command("list")
@_errors
def agreement_list(json_out: JsonOut = False) -> None:
    """List agreements."""
    from openlfr.governance import agreements
    from openlfr.governance.sharing import live_image_count

    with _tx() as ctx:
        _out([{"id": a.id, "supplier": a.supplier.name, "operator": a.operator, "status": a.status,
               "from": a.valid_from.isoformat(), "until": a.valid_until.isoformat(),
               "images": f"{live_image_count(ctx, a.id)}/{a.image_limit}", "categories": ",".join(a.allowed_categories)}
              for a in agreements.list_agreements(ctx)], json_out)


# ---------------------------------------------------------------- sharing
@share_app.command("add")
@_errors
def share_add(
    agreement_id: int, image: Path, actor: Actor,
    category: Annotated[str, typer.Option()],
    reason: Annotated[str, typer.Option(help="Why this person is shared.")],
    subject: Annotated[str, typer.Option(help="Pseudonymous subject reference (not a name).")],
    image_date: Annotated[str, typer.Option(help="When the image was taken (YYYY-MM-DD).")],
    under_18: Annotated[bool, typer.Option(help="The subject is under 18.")] = False,
) -> None:
    """Share one image under an agreement (its supplier only)."""
    from openlfr.governance import sharing
    from openlfr.governance.schemas import ShareImage

    if not image.is_file():
        _fail(f"{image} is not a file")
    data = ShareImage(agreement_id=agreement_id, category=category, reason=reason, subject_ref=subject,
                      image_date=_day(image_date), under_18=under_18)
    with _tx(with_templates=True) as ctx:
        row = sharing.share_image(ctx, actor, data, image.read_bytes())
        typer.echo(f"image {row.id} shared under agreement {agreement_id} (sha256 {row.sha256[:16]}..., "
                   f"quality {row.quality:.2f})")


@share_app.command("revoke")
@_errors
def share_revoke(image_id: int, actor: Actor, reason: Annotated[str, typer.Option()]) -> None:
    """Withdraw an image: deleted everywhere, its ledger rows kept."""
    from openlfr.governance import sharing

    with _tx() as ctx:
        sharing.revoke_image(ctx, actor, image_id, reason)
        typer.echo(f"image {image_id} revoked and deleted")


@share_app.command("list")
@_errors
def share_list(actor: Actor, supplier: Annotated[Optional[str], typer.Option(help="Supplier to show (auditors).")] = None,
               json_out: JsonOut = False) -> None:
    """The supplier's view: every image it shared, under every agreement, live or purged."""
    from openlfr.governance import sharing

    with _tx() as ctx:
        _out([{"image": v.image_id, "agreement": v.agreement_id, "operator": v.operator, "status": v.status,
               "subject": v.subject_ref, "category": v.category, "sha256": v.sha256[:16],
               "shared": v.shared_at.isoformat(), "deleted": v.deleted_at.isoformat() if v.deleted_at else ""}
              for v in sharing.supplier_view(ctx, actor, supplier)], json_out)


# ---------------------------------------------------------------- cameras
@camera_app.command("add")
@_errors
def camera_add(name: str, actor: Actor, location: Annotated[str, typer.Option()],
               zone: Annotated[str, typer.Option()] = "", stream: Annotated[str, typer.Option()] = "") -> None:
    """Register a camera."""
    from openlfr.governance import cameras, parse
    from openlfr.governance.schemas import CameraCreate

    data = parse(CameraCreate, name=name, location=location, zone=zone, stream_url=stream)
    with _tx() as ctx:
        typer.echo(f"camera {cameras.add_camera(ctx, actor, data).id} {name}")


@camera_app.command("signage")
@_errors
def camera_signage(camera_id: int, actor: Actor, text: Annotated[str, typer.Option(help="The notice's text.")],
                   checked_on: Annotated[Optional[str], typer.Option(help="YYYY-MM-DD (default today).")] = None) -> None:
    """Record a check of the public notice at a camera."""
    from openlfr.governance import cameras, parse
    from openlfr.governance.schemas import SignageCreate

    day = _day(checked_on) if checked_on else datetime.now(UTC).date()
    data = parse(SignageCreate, camera_id=camera_id, text=text, checked_on=day)
    with _tx() as ctx:
        cameras.record_signage(ctx, actor, data)
        typer.echo(f"signage for camera {camera_id} checked on {day}")


@camera_app.command("list")
@_errors
def camera_list(json_out: JsonOut = False) -> None:
    """List cameras with their latest current signage check."""
    from openlfr.governance import cameras

    with _tx() as ctx:
        today = ctx.now().date()
        rows = []
        for c in cameras.list_cameras(ctx):
            sign = cameras.current_signage(ctx, c.id, today)
            rows.append({"id": c.id, "name": c.name, "location": c.location,
                         "signage": sign.checked_on.isoformat() if sign else "NONE CURRENT"})
        _out(rows, json_out)


# ---------------------------------------------------------------- watchlists and deployments
@deployment_app.command("watchlist-create")
@_errors
def watchlist_create(name: str, actor: Actor, criteria: Annotated[str, typer.Option(help="Inclusion criteria.")],
                     cap: Annotated[int, typer.Option(help="Size cap.")] = 2000) -> None:
    """Create a governed watchlist (entries come only from shared images)."""
    from openlfr.governance import parse, watchlists
    from openlfr.governance.schemas import WatchlistCreate

    data = parse(WatchlistCreate, name=name, criteria=criteria, size_cap=cap)
    with _tx() as ctx:
        typer.echo(f"watchlist {watchlists.create_watchlist(ctx, actor, data).id} {name}")


@deployment_app.command("watchlist-add")
@_errors
def watchlist_add(watchlist_id: int, image_id: int, actor: Actor, label: Annotated[str, typer.Option()],
                  reason: Annotated[str, typer.Option()],
                  review_date: Annotated[str, typer.Option(help="When the entry must be reviewed (YYYY-MM-DD).")],
                  under_18: Annotated[bool, typer.Option()] = False) -> None:
    """Put a shared image on a governed watchlist."""
    from openlfr.governance import parse, watchlists
    from openlfr.governance.schemas import WatchlistAdd

    data = parse(WatchlistAdd, watchlist_id=watchlist_id, shared_image_id=image_id, label=label, reason=reason,
                 review_date=_day(review_date), under_18=under_18)
    with _tx() as ctx:
        typer.echo(f"entry {watchlists.add_entry(ctx, actor, data).id} added to watchlist {watchlist_id}")


@deployment_app.command("request")
@_errors
def deployment_request(
    actor: Actor, purpose: Annotated[str, typer.Option()], watchlist: Annotated[int, typer.Option(help="Watchlist id.")],
    camera: Annotated[list[int], typer.Option(help="Camera id (repeat).")],
    start: Annotated[str, typer.Option(help="ISO date/time (UTC if no zone).")],
    end: Annotated[str, typer.Option(help="ISO date/time (UTC if no zone).")],
    dpia: Annotated[str, typer.Option(help="DPIA reference.")],
    necessity: Annotated[str, typer.Option(help="Necessity and proportionality statement.")],
    threshold: Annotated[Optional[float], typer.Option(help="Similarity threshold (cosine), or give --false-alert-rate.")] = None,
    false_alert_rate: Annotated[Optional[float], typer.Option(
        help="Tolerated false alerts per face seen: the threshold is calibrated for the watchlist's size "
             "on the cohort in OPENLFR_CALIBRATION_COHORT.")] = None,
    confirmations: Annotated[int, typer.Option(help="Different reviewers who must confirm an alert.")] = 2,
) -> None:
    """Ask for a deployment (with a threshold, or a target false-alert rate to calibrate one)."""
    from openlfr.evaluation.cohort import configured_calibrator
    from openlfr.governance import deployments, parse
    from openlfr.governance.schemas import DeploymentRequest

    data = parse(DeploymentRequest, purpose=purpose, watchlist_id=watchlist, camera_ids=camera, start=_when(start),
                 end=_when(end), threshold=threshold, target_false_alert_rate=false_alert_rate, dpia_ref=dpia,
                 necessity=necessity, confirmations_required=confirmations)
    calibrate = configured_calibrator() if false_alert_rate is not None else None
    with _tx() as ctx:
        dep = deployments.request(ctx, actor, data, calibrate)
        how = f"calibrated threshold {dep.threshold:.4f}" if dep.calibration else f"threshold {dep.threshold}"
        typer.echo(f"deployment {dep.id} requested ({how})")


@deployment_app.command("authorise")
@_errors
def deployment_authorise(deployment_id: int, actor: Actor, note: Annotated[str, typer.Option()] = "") -> None:
    """Authorise a deployment and freeze its watchlist (authorising officer, not the requester)."""
    from openlfr.governance import deployments

    with _tx() as ctx:
        dep = deployments.authorise(ctx, actor, deployment_id, note)
        typer.echo(f"deployment {dep.id} authorised; watchlist snapshot {dep.snapshot_size} entries, "
                   f"sha256 {dep.snapshot_hash}")


@deployment_app.command("start")
@_errors
def deployment_start(deployment_id: int, actor: Actor) -> None:
    """Go live (inside the window, every camera with current signage)."""
    from openlfr.governance import deployments

    with _tx() as ctx:
        typer.echo(f"deployment {deployments.start(ctx, actor, deployment_id).id} is live")


@deployment_app.command("end")
@_errors
def deployment_end(deployment_id: int, actor: Actor, reason: Annotated[str, typer.Option()] = "") -> None:
    """End (or cancel) a deployment; its snapshot is deleted by the retention sweep."""
    from openlfr.governance import deployments

    with _tx() as ctx:
        typer.echo(f"deployment {deployment_id} is {deployments.end(ctx, actor, deployment_id, reason).status}")


@deployment_app.command("threshold")
@_errors
def deployment_threshold(deployment_id: int, value: float, actor: Actor) -> None:
    """Change the threshold of a deployment not yet authorised."""
    from openlfr.governance import deployments

    with _tx() as ctx:
        deployments.set_threshold(ctx, actor, deployment_id, value)
        typer.echo(f"deployment {deployment_id} threshold {value}")


@deployment_app.command("list")
@_errors
def deployment_list(json_out: JsonOut = False) -> None:
    """List deployments."""
    from openlfr.governance import deployments

    with _tx() as ctx:
        _out([{"id": d.id, "status": d.status, "purpose": d.purpose, "cameras": ",".join(c.name for c in d.cameras),
               "start": d.start.isoformat(), "end": d.end.isoformat(), "threshold": d.threshold,
               "snapshot": d.snapshot_hash or "", "snapshot_deleted": bool(d.snapshot_deleted_at)}
              for d in deployments.list_deployments(ctx)], json_out)


# ---------------------------------------------------------------- retention and audit
@retention_app.command("sweep")
@_errors
def retention_sweep() -> None:
    """Delete expired alerts, crops, footage and snapshots; expire agreements (each deletion audited)."""
    from openlfr.governance import retention

    with _tx() as ctx:
        typer.echo(retention.sweep(ctx).summary())


@audit_app.command("verify")
@_errors
def audit_verify(
    export: Annotated[Optional[Path], typer.Option(help="Verify an exported file instead of the database.")] = None,
    head: Annotated[Optional[list[str]], typer.Option(
        help="An earlier head SEQ:HASH that must still be in the chain (repeat).")] = None,
) -> None:
    """Recompute the hash chain; report the first broken event (exit 1 if broken)."""
    from openlfr.audit import verify, verify_export

    anchors = []
    for item in head or []:
        seq, _, digest = item.partition(":")
        if not seq.isdigit() or len(digest) != 64:
            raise InputError(f"--head must be SEQ:HASH (64 hex digits), not {item!r}")
        anchors.append((int(seq), digest.lower()))
    if export is not None:
        result = verify_export(export, anchors)
    else:
        with _tx() as ctx:
            result = verify(ctx.session, anchors)
    typer.echo(result.message())
    if not result.ok:
        raise typer.Exit(1)


@audit_app.command("export")
@_errors
def audit_export(path: Path) -> None:
    """Write the chain head and every event (JSON Lines) for an outside auditor."""
    from openlfr.audit import export_chain

    with _tx() as ctx:
        result = export_chain(ctx.session, path, now=ctx.now())
    typer.echo(f"{result.count} events written to {path}; head #{result.head_seq} {result.head_hash}")
    if not result.ok:
        typer.echo(f"warning: {result.message()}", err=True)
        raise typer.Exit(1)


# ---------------------------------------------------------------- demo
def _demo_images(folder: Optional[Path], count: int) -> list[Path]:
    if folder is None:  # the project's shared data beside a source checkout, or OPENLFR_DATA
        shared = os.environ.get("OPENLFR_DATA") or Path(__file__).resolve().parents[2].parent / "shared" / "data"
        folder = Path(shared) / "lfw"
    if not folder.is_dir():
        raise InputError(f"image folder {folder} not found; pass --images DIR with a few face photos")
    people = sorted(p for p in folder.iterdir() if p.is_dir())
    paths = [sorted(p.glob("*.jpg"))[0] for p in people if any(p.glob("*.jpg"))] if people else []
    if not paths:
        paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    if not paths:
        raise InputError(f"no .jpg/.png images in {folder}")
    return paths[:count]


DEMO_USERS = [("met", Role.SUPPLIER, "Metropolitan Police"),
              ("supt-brown", Role.AUTHORISING_OFFICER, "Metropolitan Police"),
              ("ruth", Role.REVIEWER, "Estate Ltd"), ("sam", Role.REVIEWER, "Estate Ltd"),
              ("dpo", Role.AUDITOR, "Estate Ltd")]


@_errors
def demo_setup(
    images: Annotated[Optional[Path], typer.Option(help="Folder of face photos (default ../shared/data/lfw).")] = None,
    count: Annotated[int, typer.Option(help="How many images to share.")] = 5,
    threshold: Annotated[float, typer.Option(help="Deployment threshold (cosine similarity).")] = DEFAULT_THRESHOLD,
    password: Annotated[Optional[str], typer.Option(
        envvar="OPENLFR_DEMO_PASSWORD", help="Console password of every demo user (default: a random one, printed).")] = None,
) -> None:
    """Create a small example estate: users who can log in to the console, an approved agreement,
    shared images, a watchlist, two cameras with signage and a live 8-hour deployment; then
    verify the audit log."""
    import secrets

    from openlfr.api.auth import set_password
    from openlfr.audit import verify
    from openlfr.governance import agreements, cameras, deployments, parse, sharing, users, watchlists
    from openlfr.governance.schemas import (AgreementCreate, CameraCreate, DeploymentRequest, Role, ShareImage,
                                            SignageCreate, UserCreate, WatchlistAdd, WatchlistCreate)

    paths = _demo_images(images, count)
    gov = _governance(with_templates=True)
    try:
        now = gov.clock()
        with gov.transaction() as ctx:
            if users.list_users(ctx):
                raise InputError("the store already has users; demo-setup needs an empty store "
                                 "(use another --data-dir or OPENLFR_DATABASE_URL)")
            pw = password or secrets.token_urlsafe(9)
            made = [users.create_user(ctx, "setup", UserCreate(name="alice", role=Role.OPERATOR_ADMIN,
                                                                organisation="Estate Ltd"))]
            for name, role, org in DEMO_USERS:
                made.append(users.create_user(ctx, "alice", UserCreate(name=name, role=role, organisation=org)))
            for user in made:
                set_password(ctx, "alice", user, pw)
            ag = agreements.create(ctx, "met", parse(
                AgreementCreate, operator="Estate Ltd", purpose="Locate people wanted on warrant for violent offences",
                lawful_basis="DPA 2018 s.35 (law enforcement)", valid_from=now, valid_until=now + timedelta(days=90),
                image_limit=50, allowed_categories=["wanted-violent", "missing-vulnerable"]))
            agreements.approve(ctx, "supt-brown", ag.id)
            cams = []
            for name, where in [("north-gate", "North gate, facing the square"), ("station-exit", "Station exit B")]:
                cam = cameras.add_camera(ctx, "alice", CameraCreate(name=name, location=where, zone="public square"))
                cameras.record_signage(ctx, "alice", SignageCreate(
                    camera_id=cam.id, text="Live facial recognition in use today. Complaints: dpo@estate.example",
                    checked_on=now.date()))
                cams.append(cam.id)
            wl = watchlists.create_watchlist(ctx, "alice", WatchlistCreate(
                name="warrants", criteria="Wanted on warrant for a violent offence; image under 12 months old",
                size_cap=100))
        shared = 0
        for i, path in enumerate(paths):
            try:
                with gov.transaction() as ctx:
                    img = sharing.share_image(ctx, "met", ShareImage(
                        agreement_id=ag.id, category="wanted-violent", reason=f"warrant W-{1000 + i}",
                        subject_ref=f"MET-{i:04d}", image_date=now.date() - timedelta(days=30)), path.read_bytes())
                    watchlists.add_entry(ctx, "alice", WatchlistAdd(
                        watchlist_id=wl.id, shared_image_id=img.id, label=path.stem, reason=f"warrant W-{1000 + i}",
                        review_date=now.date() + timedelta(days=14)))
                shared += 1
                typer.echo(f"shared {path.name} as image {img.id}")
            except OpenLFRError as err:  # an unusable photo is skipped, and its refusal audited
                typer.echo(f"skipped {path.name}: {err}")
        if not shared:
            raise InputError("none of the images could be shared")
        with gov.transaction() as ctx:
            dep = deployments.request(ctx, "alice", parse(
                DeploymentRequest, purpose="Locate wanted violent offenders at the estate", watchlist_id=wl.id,
                camera_ids=cams, start=now, end=now + timedelta(hours=8), threshold=threshold, dpia_ref="DPIA-DEMO-1",
                necessity="Repeated violent offences near the square; patrols alone have not located the suspects."))
            deployments.authorise(ctx, "supt-brown", dep.id, "demo")
            deployments.start(ctx, "alice", dep.id)
        with gov.transaction() as ctx:
            result = verify(ctx.session)
        typer.echo(f"demo estate ready: agreement {ag.id}, {shared} images on watchlist {wl.id}, "
                   f"deployment {dep.id} live on cameras {cams}")
        typer.echo(result.message())
        typer.echo("try: openlfr share list --as met; openlfr deployment list; openlfr audit verify")
        typer.echo(f"console log-ins (password {pw}): alice (operator admin), "
                   + ", ".join(f"{n} ({r.value.replace('_', ' ')})" for n, r, _ in DEMO_USERS)
                   + "; start it with: openlfr serve")
    finally:
        gov.close()


def register(app: typer.Typer) -> None:
    """Add the governance commands to the main ``openlfr`` app."""
    app.add_typer(user_app, name="user")
    app.add_typer(agreement_app, name="agreement")
    app.add_typer(share_app, name="share")
    app.add_typer(camera_app, name="camera")
    app.add_typer(deployment_app, name="deployment")
    app.add_typer(retention_app, name="retention")
    app.add_typer(audit_app, name="audit")
    app.command("demo-setup")(demo_setup)
