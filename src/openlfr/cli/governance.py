"""Governance commands: ``openlfr user|agreement|share|force|camera|deployment`` (as the user
logged in), ``openlfr retention|audit`` (at the machine) and ``openlfr demo-setup``.
:func:`register` adds them, and the log-in and organisation commands of
:mod:`openlfr.cli.auth`, to the main app.

Each command is one transaction on the store (``OPENLFR_DATABASE_URL``, default SQLite in
the data directory). A command that acts for a user does so only on that user's credential
(``openlfr login NAME``, or ``OPENLFR_TOKEN``), checked before it does anything, and calls
the same services as the HTTP API, which check the user's role and organisation; there is
no way to act by naming a user. Refused or invalid actions print one line and exit 2.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from openlfr.cli.auth import governance, verify
from openlfr.cli.auth import register as register_auth
from openlfr.cli.support import fail as _fail
from openlfr.cli.support import about_file, new_password, print_rows
from openlfr.cli.support import user_errors as _errors
from openlfr.errors import InputError, OpenLFRError
from openlfr.governance.grounds import LegalBasis, WatchlistCategory

#: the watchlist categories, for --help
_CATEGORIES = ", ".join(f"{c.value} ({c.rule.words}{'; needs --warrant-ref' if c.rule.needs_reference else ''})"
                        for c in WatchlistCategory)

user_app = typer.Typer(help="Users of your own organisation (its admins only).", no_args_is_help=True)
agreement_app = typer.Typer(help="Data-sharing agreements between a police force and an operator.",
                            no_args_is_help=True)
share_app = typer.Typer(help="Share images under an agreement; the force's ledger.", no_args_is_help=True)
force_app = typer.Typer(help="A police force's central view of everything its images were used for.",
                        no_args_is_help=True)
camera_app = typer.Typer(help="Cameras and their signage checks.", no_args_is_help=True)
deployment_app = typer.Typer(help="Governed watchlists and authorised deployments.", no_args_is_help=True)
retention_app = typer.Typer(help="Delete what has reached the end of its retention period.", no_args_is_help=True)
audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)

JsonOut = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
# the same form for the same thing in every command: users by name; cameras by name or id; the rest by id
UserName = Annotated[str, typer.Argument(help="The user's name.")]
AgreementId = Annotated[int, typer.Argument(help="The agreement's id (openlfr agreement list).")]
DeploymentId = Annotated[int, typer.Argument(help="The deployment's id (openlfr deployment list).")]
WatchlistId = Annotated[int, typer.Argument(
    help="The watchlist's id (printed by watchlist-create; openlfr deployment show).")]
ImageId = Annotated[int, typer.Argument(help="The shared image's id (openlfr share list).")]
CameraRef = Annotated[str, typer.Argument(help="The camera's name or id (openlfr camera list).")]
ROLES_HELP = "admin, supplier, operator_admin, authorising_officer, reviewer or auditor (as your organisation allows)"


def _template_fn() -> Callable[[bytes], Any]:
    try:
        from openlfr.face.analyzer import enrolment_template
    except ImportError as err:  # pragma: no cover - the face pipeline ships with openlfr
        raise InputError(f"the face pipeline is not available: {err}") from err
    return enrolment_template


@contextmanager
def _acting(action: str, with_templates: bool = False) -> Iterator[tuple[Any, Any]]:
    """(the store, the logged-in user's credential), checked before anything else happens:
    without a valid credential the command is refused, the refusal audited as ``<action>.refused``."""
    with governance() as gov:
        me = verify(gov, action)
        if with_templates:
            gov.template_fn = _template_fn()
        yield gov, me


@contextmanager
def _as_user(action: str, with_templates: bool = False) -> Iterator[tuple[Any, Any]]:
    """One transaction acting as the logged-in user: (ctx, credential)."""
    with _acting(action, with_templates) as (gov, me), gov.transaction() as ctx:
        yield ctx, me


@contextmanager
def _tx() -> Iterator[Any]:
    """One transaction at the machine, as no user (the retention sweep, the audit log)."""
    with governance() as gov, gov.transaction() as ctx:
        yield ctx


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


def _role(text: str) -> Any:
    from openlfr.governance import Role

    try:
        return Role(text)
    except ValueError:
        raise InputError(f"--role must be one of {', '.join(r.value for r in Role)}, not {text!r}") from None


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value else ""


# ---------------------------------------------------------------- users
@user_app.command("add")
@_errors
def user_add(
    name: UserName, role: Annotated[str, typer.Option(help=ROLES_HELP)],
    rank: Annotated[Optional[str], typer.Option(help="Police rank (police users; authorising officers need one).")] = None,
) -> None:
    """Add a user to your own organisation (you must be its admin); their password from the
    prompt, or OPENLFR_NEW_PASSWORD."""
    from openlfr.governance import parse, users
    from openlfr.governance.schemas import UserCreate

    with _acting("user.create") as (gov, me):
        data = parse(UserCreate, name=name, role=_role(role), rank=rank)
        secret = new_password(f"Password for {name}")
        with gov.transaction() as ctx:
            user = users.create_user(ctx, me, data, secret)
            typer.echo(f"user {user.id} {user.name} ({user.role}{', ' + user.rank if user.rank else ''}) "
                       f"of {user.organisation}")


@user_app.command("list")
@_errors
def user_list(json_out: JsonOut = False) -> None:
    """The users of your organisation (an oversight body's auditors: everyone's)."""
    from openlfr.governance import users

    with _as_user("user.list") as (ctx, me):
        print_rows([{"id": u.id, "name": u.name, "role": u.role, "rank": u.rank or "", "organisation": u.organisation,
               "active": u.active} for u in users.list_users(ctx, me)], json_out)


@user_app.command("deactivate")
@_errors
def user_deactivate(name: UserName, reason: Annotated[str, typer.Option(help="Why (recorded in the audit log).")]) -> None:
    """Offboard a user of your organisation: every session and token of theirs ends at once."""
    from openlfr.governance import users

    with _as_user("user.deactivate") as (ctx, me):
        if not reason.strip():
            raise InputError("--reason is required to deactivate a user")
        users.deactivate(ctx, me, name, reason.strip())
        typer.echo(f"user {name} deactivated; their sessions and tokens are revoked")


@user_app.command("role")
@_errors
def user_role(name: UserName, role: Annotated[str, typer.Option(help=ROLES_HELP)],
              rank: Annotated[Optional[str], typer.Option(help="Police rank.")] = None) -> None:
    """Change the role (and rank) of a user of your organisation; their sessions end."""
    from openlfr.governance import users

    with _as_user("user.role") as (ctx, me):
        user = users.set_role(ctx, me, name, _role(role), rank)
        typer.echo(f"user {user.name} is now {user.role}{', ' + user.rank if user.rank else ''}; "
                   f"their sessions and tokens are revoked")


@user_app.command("password")
@_errors
def user_password(name: UserName) -> None:
    """Set a new password for a user of your organisation (prompt, or OPENLFR_NEW_PASSWORD); their sessions end."""
    from openlfr.governance import users

    with _acting("user.password") as (gov, me):
        secret = new_password(f"New password for {name}")
        with gov.transaction() as ctx:
            users.reset_password(ctx, me, name, secret)
    typer.echo(f"password set for {name}; their sessions and tokens are revoked")


# ---------------------------------------------------------------- agreements
@agreement_app.command("create")
@_errors
def agreement_create(
    operator: Annotated[str, typer.Option(help="The operator organisation the images are shared with.")],
    purpose: Annotated[str, typer.Option(help="What the images are shared for.")],
    lawful_basis: Annotated[str, typer.Option(help="e.g. 'DPA 2018 s.35'.")],
    valid_from: Annotated[str, typer.Option("--from", help="ISO date/time (UTC if no zone).")],
    valid_until: Annotated[str, typer.Option("--until", help="ISO date/time (UTC if no zone).")],
    limit: Annotated[int, typer.Option(help="Most images shared at any time.")],
    category: Annotated[list[str], typer.Option(help="Allowed watchlist category (repeat): " + _CATEGORIES + ".")],
    allow_under_18: Annotated[bool, typer.Option(help="Allow images of under-18s.")] = False,
) -> None:
    """A supplier of a police force offers an agreement (a draft until a senior officer of the force approves it)."""
    from openlfr.governance import agreements

    with _as_user("agreement.create") as (ctx, me):  # the fields are checked after the caller: refusals audited
        row = agreements.create_from(ctx, me, dict(
            operator=operator, purpose=purpose, lawful_basis=lawful_basis, valid_from=_when(valid_from),
            valid_until=_when(valid_until), image_limit=limit, allowed_categories=category,
            allow_under_18=allow_under_18))
        typer.echo(f"agreement {row.id} created (draft)")


def _agreement_action(name: str, needs_reason: bool) -> None:
    def command(
        agreement_id: AgreementId,
        reason: Annotated[str, typer.Option(help="Why (recorded in the audit log).")] = "",
    ) -> None:
        from openlfr.governance import agreements

        with _as_user(f"agreement.{name}") as (ctx, me):
            if needs_reason and not reason.strip():
                raise InputError(f"--reason is required to {name} an agreement")
            fn = getattr(agreements, name)
            row = fn(ctx, me, agreement_id, reason) if needs_reason else fn(ctx, me, agreement_id)
            typer.echo(f"agreement {row.id} is {row.status}")

    command.__doc__ = {"approve": "Approve a draft agreement (an authorising officer of the force, of the required rank).",
                       "suspend": "Pause sharing under an agreement.",
                       "resume": "Lift a suspension.",
                       "end": "End an agreement and purge its images and templates."}[name]
    agreement_app.command(name)(_errors(command))


for _name, _reason in (("approve", False), ("suspend", True), ("resume", False), ("end", True)):
    _agreement_action(_name, _reason)


@agreement_app.command("list")
@_errors
def agreement_list(json_out: JsonOut = False) -> None:
    """The agreements your organisation is party to."""
    from openlfr.governance import agreements
    from openlfr.governance.sharing import live_image_count

    with _as_user("agreement.list") as (ctx, me):
        print_rows([{"id": a.id, "force": a.force, "operator": a.operator, "status": a.status,
               "from": a.valid_from.isoformat(), "until": a.valid_until.isoformat(),
               "images": f"{live_image_count(ctx, a.id)}/{a.image_limit}", "categories": ",".join(a.allowed_categories)}
              for a in agreements.list_agreements(ctx, me)], json_out)


# ---------------------------------------------------------------- sharing and the force's view
@share_app.command("add")
@_errors
def share_add(
    agreement_id: AgreementId,
    image: Annotated[Path, typer.Argument(help="The face photo (JPEG or PNG) of the person shared.")],
    category: Annotated[str, typer.Option(help="The watchlist category: " + _CATEGORIES + ".")],
    reason: Annotated[str, typer.Option(help="Why this person is shared.")],
    subject: Annotated[str, typer.Option(
        help="Pseudonymous subject reference, a code such as MPS-2026-000123: never a name or a date of birth.")],
    image_date: Annotated[str, typer.Option(help="When the image was taken (YYYY-MM-DD).")],
    warrant_ref: Annotated[str, typer.Option(
        help="The warrant or court reference (required for the wanted categories and court orders).")] = "",
    under_18: Annotated[bool, typer.Option(help="The subject is under 18.")] = False,
) -> None:
    """Share one image under an agreement (a supplier of its force)."""
    from openlfr.governance import sharing

    with _acting("image.share", with_templates=True) as (gov, me):
        if not image.is_file():
            _fail(f"{image} is not a file")
        day = _day(image_date)
        try:
            prepared = sharing.prepare_image(gov.template_fn, image.read_bytes(), label=str(image))
        except OpenLFRError as err:  # name the file given, not the bytes the face pipeline saw
            raise InputError(about_file(err, image)) from None
        with gov.transaction() as ctx:  # the fields are checked after the caller: refusals audited
            row = sharing.share_image_from(ctx, me, dict(
                agreement_id=agreement_id, category=category, reason=reason, subject_ref=subject, image_date=day,
                warrant_ref=warrant_ref, under_18=under_18), prepared)
            typer.echo(f"image {row.id} shared under agreement {agreement_id} (sha256 {row.sha256[:16]}..., "
                       f"quality {row.quality:.2f})")


@share_app.command("revoke")
@_errors
def share_revoke(image_id: ImageId,
                 reason: Annotated[str, typer.Option(help="Why it is withdrawn (recorded in the audit log).")]) -> None:
    """Withdraw an image: deleted everywhere, its ledger rows kept."""
    from openlfr.governance import sharing

    with _as_user("image.revoke") as (ctx, me):
        sharing.revoke_image(ctx, me, image_id, reason)
        typer.echo(f"image {image_id} revoked and deleted")


@share_app.command("list")
@_errors
def share_list(force: Annotated[Optional[str], typer.Option(help="The police force (oversight auditors).")] = None,
               json_out: JsonOut = False) -> None:
    """The force's ledger: every image it shared, by whoever in the force, under every agreement, live or purged."""
    from openlfr.governance import sharing

    with _as_user("ledger.view") as (ctx, me):
        print_rows([{"image": v.image_id, "agreement": v.agreement_id, "operator": v.operator, "status": v.status,
               "subject": v.subject_ref, "category": v.category, "sha256": v.sha256[:16], "shared_by": v.shared_by,
               "shared": v.shared_at.isoformat(), "deleted": _iso(v.deleted_at)}
              for v in sharing.force_ledger(ctx, me, force)], json_out)


@force_app.command("view")
@_errors
def force_view(force: Annotated[Optional[str], typer.Option(help="The police force (oversight auditors).")] = None,
               json_out: JsonOut = False) -> None:
    """The central view: the force's agreements, every image it shared with its uses (watchlists,
    deployments, alerts) and deletion, and the deployments and alerts that used its images."""
    from sqlalchemy import select

    from openlfr.governance import central
    from openlfr.store.models import Organisation

    with _as_user("force.view") as (ctx, me):
        view = central.force_view(ctx, me, force)
        orgs = dict(ctx.session.execute(select(Organisation.id, Organisation.name)).all())
        doc = {
            "force": view.force,
            "agreements": [{"id": a.id, "operator": a.operator, "status": a.status, "purpose": a.purpose,
                            "from": a.valid_from.isoformat(), "until": a.valid_until.isoformat(),
                            "limit": a.image_limit} for a in view.agreements],
            "images": [{"image": h.image.image_id, "agreement": h.image.agreement_id, "operator": h.image.operator,
                        "status": h.image.status, "subject": h.image.subject_ref, "category": h.image.category,
                        "sha256": h.image.sha256, "shared_by": h.image.shared_by,
                        "shared": h.image.shared_at.isoformat(), "deleted": _iso(h.image.deleted_at),
                        "deletion_reason": h.image.deletion_reason or "",
                        "uses": [{"kind": u.kind, "id": u.id, "organisation": u.organisation, "at": _iso(u.at),
                                  "detail": u.detail} for u in h.uses]} for h in view.images],
            "deployments": [{"id": d.id, "organisation": orgs.get(d.organisation_id, ""), "kind": d.kind,
                             "status": d.status, "purpose": d.purpose, "start": d.start.isoformat(),
                             "end": d.end.isoformat()} for d in view.deployments],
            "alerts": [{"id": a.id, "deployment": a.deployment_id, "camera": a.camera_id, "at": a.at.isoformat(),
                        "score": round(a.score, 4), "outcome": a.review_outcome or "", "deleted": _iso(a.deleted_at)}
                       for a in view.alerts],
        }
    if json_out:
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        return
    typer.echo(f"central view of {doc['force']}")
    for part in ("agreements", "images", "deployments", "alerts"):
        typer.echo(f"{part} ({len(doc[part])}):")
        if not doc[part]:
            typer.echo("  (none)")
        for row in doc[part]:
            uses = row.pop("uses", None) if part == "images" else None
            typer.echo("  " + "  ".join(f"{k}={v}" for k, v in row.items()))
            for use in uses or []:
                typer.echo(f"    {use['kind']} {use['id']}" + (f" ({use['organisation']})" if use["organisation"] else "")
                           + f" {use['at']}: {use['detail']}")


# ---------------------------------------------------------------- cameras
@camera_app.command("add")
@_errors
def camera_add(
    name: Annotated[str, typer.Argument(help="A name for the camera, unique in this installation.")],
    location: Annotated[str, typer.Option(help="Where it is and what it faces, e.g. 'North gate, facing the square'.")],
    zone: Annotated[str, typer.Option(help="The area it covers, e.g. 'public square' (optional).")] = "",
    stream: Annotated[str, typer.Option(
        help="How to read it: an rtsp:// or http(s):// stream, a webcam (webcam:0), a video file or a folder of "
             "frames (optional; a camera without one is not run).")] = "",
) -> None:
    """Register a camera of your organisation (operator admin)."""
    from openlfr.governance import cameras, parse
    from openlfr.governance.schemas import CameraCreate

    with _as_user("camera.add") as (ctx, me):
        data = parse(CameraCreate, name=name, location=location, zone=zone, stream_url=stream)
        typer.echo(f"camera {cameras.add_camera(ctx, me, data).id} {name}")


@camera_app.command("networks")
@_errors
def camera_networks(networks: Annotated[list[str], typer.Argument(
        help="CIDR blocks your cameras stream from (e.g. 10.20.0.0/16); 'none' allows none.")]) -> None:
    """Set the networks your organisation's cameras may stream from (operator admin; audited)."""
    from openlfr.governance import cameras

    with _as_user("camera.networks") as (ctx, me):
        kept = cameras.set_camera_networks(ctx, me, [] if networks == ["none"] else networks)
    typer.echo(f"camera networks: {', '.join(kept) or 'none (no network camera may run)'}")


@camera_app.command("signage")
@_errors
def camera_signage(
    camera: CameraRef,
    text: Annotated[str, typer.Option(help="The notice's text (it must say that facial recognition is in use).")],
    deployment: Annotated[Optional[int], typer.Option(
        help="The deployment the check is for (a deployment starts only on checks recorded for it).")] = None,
    checked_on: Annotated[Optional[str], typer.Option(
        help="YYYY-MM-DD (default today; not after today, nor more than OPENLFR_SIGNAGE_BACKDATE_DAYS before).")] = None,
    photo: Annotated[Optional[Path], typer.Option(help="A JPEG or PNG photo of the notice (stored encrypted).")] = None,
) -> None:
    """Record a check of the public notice at a camera, for a deployment."""
    from openlfr.governance import cameras

    if photo is not None and not photo.is_file():
        _fail(f"{photo} is not a file")
    raw = photo.read_bytes() if photo is not None else None
    with _as_user("signage.record") as (ctx, me):
        ctx.require(me, None, "signage.record")  # first: an unknown camera is a refusal, audited
        camera_id = cameras.find_camera(ctx, camera).id
        day = _day(checked_on) if checked_on else ctx.now().date()
        row = cameras.record_signage_from(ctx, me, dict(camera_id=camera_id, text=text, checked_on=day,
                                                        deployment_id=deployment), raw)
        typer.echo(f"signage for camera {camera} checked on {day}"
                   + (f" for deployment {deployment}" if deployment is not None else "")
                   + (f", photo sha256 {row.photo_sha256[:16]}..." if row.photo_sha256 else ""))


@camera_app.command("list")
@_errors
def camera_list(json_out: JsonOut = False) -> None:
    """Your organisation's cameras with their latest current signage check."""
    from openlfr.governance import cameras

    with _as_user("camera.list") as (ctx, me):
        today = ctx.now().date()
        rows = []
        for c in cameras.list_cameras(ctx, me):
            sign = cameras.current_signage(ctx, c.id, today)
            rows.append({"id": c.id, "name": c.name, "location": c.location,
                         "signage": sign.checked_on.isoformat() if sign else "NONE CURRENT"})
        print_rows(rows, json_out)


# ---------------------------------------------------------------- watchlists and deployments
@deployment_app.command("watchlist-create")
@_errors
def watchlist_create(name: Annotated[str, typer.Argument(help="The watchlist's name.")], criteria: Annotated[str, typer.Option(help="Inclusion criteria.")],
                     category: Annotated[list[str], typer.Option(
                         help="A category its entries may have (repeat; the composition criteria): "
                              + _CATEGORIES + ".")],
                     cap: Annotated[int, typer.Option(help="Size cap.")] = 2000) -> None:
    """Create a governed watchlist of your organisation (entries come only from images shared with
    it, of its categories)."""
    from openlfr.governance import watchlists

    with _as_user("watchlist.create") as (ctx, me):  # the fields are checked after the caller: refusals audited
        row = watchlists.create_watchlist_from(ctx, me, dict(name=name, criteria=criteria, categories=category,
                                                             size_cap=cap))
        typer.echo(f"watchlist {row.id} {name}")


@deployment_app.command("watchlist-add")
@_errors
def watchlist_add(watchlist_id: WatchlistId, image_id: ImageId,
                  label: Annotated[str, typer.Option(help="What reviewers see for this entry (no more than needed).")],
                  reason: Annotated[str, typer.Option(help="Why this person is on the watchlist.")],
                  review_date: Annotated[str, typer.Option(help="When the entry must be reviewed (YYYY-MM-DD).")],
                  under_18: Annotated[bool, typer.Option(help="The person is under 18.")] = False) -> None:
    """Put a shared image on a governed watchlist."""
    from openlfr.governance import parse, watchlists
    from openlfr.governance.schemas import WatchlistAdd

    with _as_user("watchlist.add") as (ctx, me):
        data = parse(WatchlistAdd, watchlist_id=watchlist_id, shared_image_id=image_id, label=label, reason=reason,
                     review_date=_day(review_date), under_18=under_18)
        typer.echo(f"entry {watchlists.add_entry(ctx, me, data).id} added to watchlist {watchlist_id}")


@deployment_app.command("watchlist-retemplate")
@_errors
def watchlist_retemplate(watchlist_id: WatchlistId) -> None:
    """Re-make every template of a watchlist with the configured face model (--face-model),
    from the encrypted shared images; audited per image. Frozen snapshots keep theirs."""
    from openlfr.governance import watchlists

    with _acting("watchlist.retemplate", True) as (gov, me):
        prepared = watchlists.prepare_retemplate(gov, me, watchlist_id)  # the face model runs with no lock held
        with gov.transaction() as ctx:
            done = watchlists.retemplate(ctx, me, watchlist_id, prepared)
        typer.echo(f"watchlist {watchlist_id}: {done['retemplated']} template(s) re-made, "
                   f"{done['unchanged']} already of this model")


@deployment_app.command("request")
@_errors
def deployment_request(
    purpose: Annotated[str, typer.Option(help="What the deployment is for.")],
    watchlist: Annotated[int, typer.Option(help="The watchlist's id.")],
    camera: Annotated[list[str], typer.Option(help="A camera's name or id (repeat for each camera).")],
    start: Annotated[str, typer.Option(help="ISO date/time (UTC if no zone).")],
    end: Annotated[str, typer.Option(help="ISO date/time (UTC if no zone).")],
    legal_basis: Annotated[str, typer.Option(
        help="The legal basis: " + "; ".join(f"{b.value} ({b.words})" for b in LegalBasis)
             + ". A police force's must be a dpa2018_s35 one; anyone else's must not.")],
    dpia: Annotated[str, typer.Option(help="DPIA reference.")],
    dpia_date: Annotated[str, typer.Option(help="When the DPIA was signed off (YYYY-MM-DD, not after today).")],
    eia_ref: Annotated[str, typer.Option(help="Equality impact assessment reference.")],
    eia_date: Annotated[str, typer.Option(help="When the equality impact assessment was signed off (YYYY-MM-DD).")],
    necessity: Annotated[str, typer.Option(
        help="Why it is necessary and why less intrusive means will not do (at least 10 words).")],
    proportionality: Annotated[str, typer.Option(
        help="Why its intrusion is proportionate to its aim (at least 10 words).")],
    threshold: Annotated[Optional[float], typer.Option(help="Similarity threshold (cosine), or give --false-alert-rate.")] = None,
    false_alert_rate: Annotated[Optional[float], typer.Option(
        help="Tolerated false alerts per face searched: the threshold is calibrated for the watchlist's size "
             "on the cohort in OPENLFR_CALIBRATION_COHORT.")] = None,
    confirmations: Annotated[int, typer.Option(help="Different reviewers who must confirm an alert.")] = 2,
    kind: Annotated[str, typer.Option(help="live (cameras) or retrospective (recorded footage).")] = "live",
    police_review: Annotated[bool, typer.Option(help="Only police reviewers may confirm its alerts.")] = False,
    urgent: Annotated[bool, typer.Option(
        help="The urgency route: an officer of OPENLFR_URGENT_MIN_RANK may authorise it; an officer of the "
             "usual rank must review it within OPENLFR_URGENT_REVIEW_HOURS or it ends.")] = False,
    urgency_reason: Annotated[str, typer.Option(help="Why it cannot wait (required with --urgent).")] = "",
) -> None:
    """Ask for a deployment (with a threshold, or a target false-alert rate to calibrate one),
    with its legal basis, DPIA, equality impact assessment, necessity and proportionality."""
    from openlfr.evaluation.cohort import configured_calibrator
    from openlfr.governance import cameras, deployments

    with _acting("deployment.request") as (gov, me):
        calibrate = configured_calibrator() if false_alert_rate is not None else None
        with gov.transaction() as ctx:  # the fields are checked after the caller: a refusal is audited
            ctx.require(me, None, "deployment.request")
            camera_ids = [cameras.find_camera(ctx, c).id for c in camera]
            dep = deployments.request_from(ctx, me, dict(
                kind=kind, purpose=purpose, watchlist_id=watchlist, camera_ids=camera_ids, start=_when(start),
                end=_when(end), threshold=threshold, target_false_alert_rate=false_alert_rate,
                legal_basis=legal_basis, dpia_ref=dpia, dpia_date=dpia_date, eia_ref=eia_ref, eia_date=eia_date,
                necessity=necessity, proportionality=proportionality, urgent=urgent, urgency_reason=urgency_reason,
                confirmations_required=confirmations, police_review_required=police_review), calibrate)
            how = f"calibrated threshold {dep.threshold:.4f}" if dep.calibration else f"threshold {dep.threshold}"
            typer.echo(f"deployment {dep.id} requested ({dep.kind}, {how})")


@deployment_app.command("authorise")
@_errors
def deployment_authorise(
    deployment_id: DeploymentId,
    note: Annotated[str, typer.Option(help="The authoriser's note (recorded with the authorisation).")] = "",
    require_police_review: Annotated[bool, typer.Option(help="Only police reviewers may confirm its alerts.")] = False,
    threshold_reason: Annotated[str, typer.Option(
        help="Why a threshold looser than the face model's FPIR-1% point is needed (refused without one).")] = "",
) -> None:
    """Authorise a deployment and freeze its watchlist (a senior officer of the force that supplied
    every image, never the requester)."""
    from openlfr.evaluation.cohort import configured_floor
    from openlfr.governance import deployments

    floor_fn = configured_floor()
    with _as_user("deployment.authorise") as (ctx, me):
        dep = deployments.authorise(ctx, me, deployment_id, note, require_police_review=require_police_review,
                                    threshold_reason=threshold_reason, floor_fn=floor_fn)
        typer.echo(f"deployment {dep.id} authorised; watchlist snapshot {dep.snapshot_size} entries, "
                   f"sha256 {dep.snapshot_hash}")
        if dep.retro_review_due is not None:
            typer.echo(f"urgent: an officer of the usual rank must review it by {dep.retro_review_due:%Y-%m-%d %H:%M} "
                       "UTC (openlfr deployment review), or it ends")


@deployment_app.command("refuse")
@_errors
def deployment_refuse(deployment_id: DeploymentId, reason: Annotated[str, typer.Option(help="Why (recorded in the audit log).")]
                      ) -> None:
    """Refuse a requested deployment (an authorising officer of a supplying force, never the requester)."""
    from openlfr.governance import deployments

    with _as_user("deployment.refuse") as (ctx, me):
        deployments.refuse(ctx, me, deployment_id, reason)
        typer.echo(f"deployment {deployment_id} refused")


@deployment_app.command("review")
@_errors
def deployment_review(
    deployment_id: DeploymentId,
    outcome: Annotated[str, typer.Option(help="upheld (it runs on) or ended (it ends now).")],
    note: Annotated[str, typer.Option(help="The reasons of the review.")],
) -> None:
    """The retrospective review of an urgent deployment (an officer of the same force, of the usual
    rank, not the one who authorised it)."""
    from openlfr.governance import deployments

    with _as_user("deployment.retro_review") as (ctx, me):
        dep = deployments.retro_review(ctx, me, deployment_id, outcome, note)
        typer.echo(f"deployment {deployment_id} review: {outcome}; it is {dep.status}")


@deployment_app.command("show")
@_errors
def deployment_show(deployment_id: DeploymentId, json_out: JsonOut = False) -> None:
    """One deployment with its grounds and its watchlist's composition (as the authoriser sees it
    before authorising; frozen once authorised)."""
    from openlfr.api.views import deployment_out
    from openlfr.governance import deployments

    with _as_user("deployment.list") as (ctx, me):
        found = [d for d in deployments.list_deployments(ctx, me) if d.id == deployment_id]
        if not found:
            raise InputError(f"no deployment {deployment_id} that you may see")
        out = deployment_out(found[0], ctx).model_dump(mode="json")
    if json_out:
        sys.stdout.write(json.dumps(out, indent=2) + "\n")
        return
    comp = out.pop("composition")
    for key in ("watchlist", "cameras", "camera_ids"):
        out.pop(key, None)
    for key, value in out.items():
        typer.echo(f"{key}: {value}")
    typer.echo(_composition_text(comp))


def _composition_text(comp: dict[str, Any] | None) -> str:
    """A composition summary in one paragraph."""
    if comp is None:
        return "composition: not available"
    cats = "; ".join(f"{c['entries']} {c['category']} ({c['seriousness']})" for c in comp["categories"])
    due = ", ".join(f"entry {r['entry_id']} on {r['review_date']}" for r in comp["review_due"]) or "none"
    return (f"composition: {comp['entries']} entries ({cats}); {comp['under_18']} under 18; oldest image "
            f"{comp['oldest_image'] or '-'}; due for review within {comp['review_warning_days']} days: {due}")


@deployment_app.command("start")
@_errors
def deployment_start(deployment_id: DeploymentId) -> None:
    """Go live (inside the window, every camera with current signage)."""
    from openlfr.governance import deployments

    with _as_user("deployment.start") as (ctx, me):
        typer.echo(f"deployment {deployments.start(ctx, me, deployment_id).id} is live")


@deployment_app.command("end")
@_errors
def deployment_end(deployment_id: DeploymentId,
                   reason: Annotated[str, typer.Option(help="Why it ends (recorded in the audit log).")] = "") -> None:
    """End (or cancel) a deployment; its snapshot is deleted by the retention sweep."""
    from openlfr.governance import deployments

    with _as_user("deployment.end") as (ctx, me):
        typer.echo(f"deployment {deployment_id} is {deployments.end(ctx, me, deployment_id, reason).status}")


@deployment_app.command("threshold")
@_errors
def deployment_threshold(deployment_id: DeploymentId,
                         value: Annotated[float, typer.Argument(help="The new similarity threshold (cosine).")]) -> None:
    """Change the threshold of a deployment not yet authorised."""
    from openlfr.governance import deployments

    with _as_user("deployment.threshold") as (ctx, me):
        deployments.set_threshold(ctx, me, deployment_id, value)
        typer.echo(f"deployment {deployment_id} threshold {value}")


@deployment_app.command("list")
@_errors
def deployment_list(json_out: JsonOut = False) -> None:
    """The deployments your organisation runs, authorised or supplied images to."""
    from openlfr.governance import deployments

    from openlfr.api.views import deployment_composition

    with _as_user("deployment.list") as (ctx, me):
        rows = []
        for d in deployments.list_deployments(ctx, me):
            comp = deployment_composition(d, ctx)
            rows.append({"id": d.id, "kind": d.kind, "status": d.status, "purpose": d.purpose,
                         "cameras": ",".join(c.name for c in d.cameras), "start": d.start.isoformat(),
                         "end": d.end.isoformat(), "threshold": d.threshold, "legal_basis": d.legal_basis,
                         "urgent": d.urgent, "snapshot": d.snapshot_hash or "",
                         "snapshot_deleted": bool(d.snapshot_deleted_at),
                         **({"composition": comp} if json_out else {"entries": comp["entries"] if comp else "",
                                                                     "under_18": comp["under_18"] if comp else ""})})
        print_rows(rows, json_out)


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
    checkpoints: Annotated[Optional[Path], typer.Option(
        help="A checkpoints file (openlfr audit checkpoints, or GET /api/public/checkpoints) kept from "
             "earlier: every signed head in it must still be in the chain, signed by its pinned key.")] = None,
) -> None:
    """Recompute the hash chain; report the first broken event (exit 1 if broken; exit 2, creating
    nothing, when there is no store or it holds no audit log). With --checkpoints, also one
    line per checkpoint whose signature is bad, whose key is not the file's (or this
    installation's), or whose event is gone or has another hash: a rewrite (exit 1)."""
    from openlfr.audit import checkpoints as cps
    from openlfr.audit import verify, verify_export
    from openlfr.audit.chain import check_anchors, verify_records
    from openlfr.audit.export import read_export

    pinned, signed = cps.read_file(checkpoints) if checkpoints is not None else (None, [])
    anchors = []
    for item in head or []:
        seq, _, digest = item.partition(":")
        if not seq.isdigit() or len(digest) != 64:
            raise InputError(f"--head must be SEQ:HASH (64 hex digits), not {item!r}")
        anchors.append((int(seq), digest.lower()))
    records: list[Any] = []
    installation_key = None
    if export is None:
        result, store = _verify_existing_store(verify, anchors, records)
        installation_key = _installation_public_key() if checkpoints is not None else None
    elif checkpoints is not None:
        header, records = read_export(export)
        result, store = verify_records(records, int(header["head_seq"]), str(header["head_hash"])), None
        result = check_anchors(result, records, anchors) if result.ok else result
    else:
        result, store = verify_export(export, anchors), None
    typer.echo(result.message())
    if store is not None:
        typer.echo(store.message())
    bad = False
    if checkpoints is not None:
        problems = []
        if pinned and installation_key and pinned.lower() != installation_key:
            problems.append(f"the file's key {cps.key_id(pinned)[:16]}... is not this installation's signing key "
                            f"{cps.key_id(installation_key)[:16]}...")
        problems += cps.verify(signed, records, public_key=pinned or installation_key)
        for line in problems:
            typer.echo(f"CHECKPOINT FAILS: {line}")
        newest = f" (latest #{signed[-1].seq} of {signed[-1].at})" if signed else ""
        typer.echo(f"checkpoints: {len(signed)} checked{newest}, " + (f"{len(problems)} problem(s)" if problems
                   else "every one signed by the key and still in the chain"))
        bad = bool(problems)
    if bad or not result.ok or (store is not None and not store.ok):
        raise typer.Exit(1)


def _installation_public_key() -> str | None:
    """This installation's checkpoint public key (hex), or ``None`` without a key (nothing created)."""
    from openlfr.audit.checkpoints import Signer, signing_key_path
    from openlfr.config import get_settings
    from openlfr.store.keys import open_keyring

    path = signing_key_path(Path(get_settings().data_dir) / "blobs")
    if not path.exists():
        return None
    try:
        return Signer(path, open_keyring(create=False)).public_key()
    except OpenLFRError:
        return None  # no keyring here: the file's own key is used


def _verify_existing_store(verify: Any, anchors: list[tuple[int, str]],
                           records: list[Any] | None = None) -> tuple[Any, Any]:
    """Verify the configured store's chain, then compare the store with it (with the
    encryption key, if there is one, to check the files), creating or migrating nothing.
    ``records``, when given, receives the chain's events (for the checkpoints)."""
    from sqlalchemy import func, inspect, select
    from sqlalchemy.exc import DBAPIError

    from openlfr.audit.consistency import check_store
    from openlfr.config import get_settings
    from openlfr.errors import NotFoundError
    from openlfr.store import BlobStore, make_engine, session_factory
    from openlfr.store.keys import open_keyring
    from openlfr.store.models import AuditEvent
    from openlfr.store.settings import existing_database_url

    blobs = None
    folder = Path(get_settings().data_dir) / "blobs"
    if folder.is_dir():
        try:
            blobs = BlobStore(folder, open_keyring(create=False))
        except OpenLFRError:
            blobs = None  # no key here: the files cannot be checked (the result says so)

    url = existing_database_url()
    engine = make_engine(url)
    try:
        if "audit_events" not in inspect(engine).get_table_names():
            raise NotFoundError(f"{engine.url.render_as_string(hide_password=True)} is not an openlfr store "
                                "(no audit log table)")
        with session_factory(engine)() as session:
            if session.execute(select(func.count()).select_from(AuditEvent)).scalar_one() == 0:
                raise NotFoundError("the store's audit log is empty: nothing to verify (a new, emptied or "
                                    "replaced store)")
            result = verify(session, anchors)
            if records is not None:
                from openlfr.audit.chain import load_records

                records.extend(load_records(session))
            return result, (check_store(session, blobs) if result.ok else None)
    except DBAPIError as err:
        raise NotFoundError(f"cannot read the store: {str(err.orig).splitlines()[0]}") from None
    finally:
        engine.dispose()


@audit_app.command("export")
@_errors
def audit_export(path: Annotated[Path, typer.Argument(help="The JSON Lines file to write.")]) -> None:
    """Write the chain head and every event (JSON Lines) for an outside auditor."""
    from openlfr.audit import export_chain

    with _tx() as ctx:
        result = export_chain(ctx.session, path, now=ctx.now())
    typer.echo(f"{result.count} events written to {path}; head #{result.head_seq} {result.head_hash}")
    if not result.ok:
        typer.echo(f"warning: {result.message()}", err=True)
        raise typer.Exit(1)


@audit_app.command("checkpoints")
@_errors
def audit_checkpoints(path: Annotated[Path, typer.Argument(help="The JSON file to write.")]) -> None:
    """Write every signed checkpoint and the installation's public key (JSON) for an outside
    auditor: keep it, and give it to 'openlfr audit verify --checkpoints' on the next visit."""
    from openlfr.audit import checkpoints as cps

    with governance() as gov, gov.reading() as ctx:
        doc = cps.export_checkpoints(ctx.session, gov.signer, path, now=ctx.now())
    items = doc["checkpoints"]
    latest = f"; latest #{items[-1]['seq']} {items[-1]['head_hash']}" if items else ""
    typer.echo(f"{len(items)} checkpoints written to {path}; key {doc['key_id'] or '(none yet)'}{latest}")


# ---------------------------------------------------------------- demo
# ``openlfr demo-setup`` lives in :mod:`openlfr.cli.demo` (registered below)


def register(app: typer.Typer) -> None:
    """Add the governance commands, and those of :mod:`openlfr.cli.auth` (log in, organisations,
    enrolment), to the main ``openlfr`` app."""
    register_auth(app)
    app.add_typer(user_app, name="user")
    app.add_typer(agreement_app, name="agreement")
    app.add_typer(share_app, name="share")
    app.add_typer(force_app, name="force")
    from openlfr.cli.cameras import register as register_cameras

    register_cameras(camera_app)  # camera edit, camera status
    app.add_typer(camera_app, name="camera")
    app.add_typer(deployment_app, name="deployment")
    app.add_typer(retention_app, name="retention")
    app.add_typer(audit_app, name="audit")
    from openlfr.cli.demo import demo_setup

    app.command("demo-setup")(demo_setup)
