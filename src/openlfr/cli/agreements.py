"""``openlfr agreement``, ``openlfr share`` and ``openlfr force``: data-sharing agreements
between a police force and an operator, the images shared under them, and the force's ledger
and central view, as the user logged in. :func:`register` adds the three groups to the main app."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from openlfr.cli.args import CATEGORIES_HELP, AgreementId, ImageId, iso, parse_day, parse_when
from openlfr.cli.store import acting, as_user
from openlfr.cli.support import JsonOption, about_file, fail, print_json, print_rows, user_errors
from openlfr.errors import InputError, OpenLFRError

agreement_app = typer.Typer(help="Data-sharing agreements between a police force and an operator.",
                            no_args_is_help=True)
share_app = typer.Typer(help="Share images under an agreement; the force's ledger.", no_args_is_help=True)
force_app = typer.Typer(help="A police force's central view of everything its images were used for.",
                        no_args_is_help=True)


@agreement_app.command("create")
@user_errors
def agreement_create(
    operator: Annotated[str, typer.Option(help="The operator organisation the images are shared with.")],
    purpose: Annotated[str, typer.Option(help="What the images are shared for.")],
    lawful_basis: Annotated[str, typer.Option(help="e.g. 'DPA 2018 s.35'.")],
    valid_from: Annotated[str, typer.Option("--from", help="ISO date/time (UTC if no zone).")],
    valid_until: Annotated[str, typer.Option("--until", help="ISO date/time (UTC if no zone).")],
    limit: Annotated[int, typer.Option(help="Most images shared at any time.")],
    category: Annotated[list[str], typer.Option(help="Allowed watchlist category (repeat): " + CATEGORIES_HELP + ".")],
    allow_under_18: Annotated[bool, typer.Option(help="Allow images of under-18s.")] = False,
) -> None:
    """A supplier of a police force offers an agreement (a draft until a senior officer of the force approves it)."""
    from openlfr.governance import agreements

    with as_user("agreement.create") as (ctx, me):  # the fields are checked after the caller: refusals audited
        row = agreements.create_from(ctx, me, dict(
            operator=operator, purpose=purpose, lawful_basis=lawful_basis, valid_from=parse_when(valid_from),
            valid_until=parse_when(valid_until), image_limit=limit, allowed_categories=category,
            allow_under_18=allow_under_18))
        typer.echo(f"agreement {row.id} created (draft)")


def _agreement_action(name: str, needs_reason: bool) -> None:
    def command(
        agreement_id: AgreementId,
        reason: Annotated[str, typer.Option(help="Why (recorded in the audit log).")] = "",
    ) -> None:
        from openlfr.governance import agreements

        with as_user(f"agreement.{name}") as (ctx, me):
            if needs_reason and not reason.strip():
                raise InputError(f"--reason is required to {name} an agreement")
            fn = getattr(agreements, name)
            row = fn(ctx, me, agreement_id, reason) if needs_reason else fn(ctx, me, agreement_id)
            typer.echo(f"agreement {row.id} is {row.status}")

    command.__doc__ = {"approve": "Approve a draft agreement (an authorising officer of the force, of the required "
                                  "rank).",
                       "suspend": "Pause sharing under an agreement.",
                       "resume": "Lift a suspension.",
                       "end": "End an agreement and purge its images and templates."}[name]
    agreement_app.command(name)(user_errors(command))


for _name, _reason in (("approve", False), ("suspend", True), ("resume", False), ("end", True)):
    _agreement_action(_name, _reason)


@agreement_app.command("list")
@user_errors
def agreement_list(json_out: JsonOption = False) -> None:
    """The agreements your organisation is party to."""
    from openlfr.governance import agreements
    from openlfr.governance.sharing import live_image_count

    with as_user("agreement.list") as (ctx, me):
        print_rows([{"id": a.id, "force": a.force, "operator": a.operator, "status": a.status,
               "from": a.valid_from.isoformat(), "until": a.valid_until.isoformat(),
               "images": f"{live_image_count(ctx, a.id)}/{a.image_limit}", "categories": ",".join(a.allowed_categories)}
              for a in agreements.list_agreements(ctx, me)], json_out)


# ---------------------------------------------------------------- sharing and the force's view
@share_app.command("add")
@user_errors
def share_add(
    agreement_id: AgreementId,
    image: Annotated[Path, typer.Argument(help="The face photo (JPEG or PNG) of the person shared.")],
    category: Annotated[str, typer.Option(help="The watchlist category: " + CATEGORIES_HELP + ".")],
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

    with acting("image.share", with_templates=True) as (gov, me):
        if not image.is_file():
            fail(f"{image} is not a file")
        day = parse_day(image_date)
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
@user_errors
def share_revoke(image_id: ImageId,
                 reason: Annotated[str, typer.Option(help="Why it is withdrawn (recorded in the audit log).")]) -> None:
    """Withdraw an image: deleted everywhere, its ledger rows kept."""
    from openlfr.governance import sharing

    with as_user("image.revoke") as (ctx, me):
        sharing.revoke_image(ctx, me, image_id, reason)
        typer.echo(f"image {image_id} revoked and deleted")


@share_app.command("list")
@user_errors
def share_list(force: Annotated[Optional[str], typer.Option(help="The police force (oversight auditors).")] = None,
               json_out: JsonOption = False) -> None:
    """The force's ledger: every image it shared, by whoever in the force, under every agreement, live or purged."""
    from openlfr.governance import sharing

    with as_user("ledger.view") as (ctx, me):
        print_rows([{"image": v.image_id, "agreement": v.agreement_id, "operator": v.operator, "status": v.status,
               "subject": v.subject_ref, "category": v.category, "sha256": v.sha256[:16], "shared_by": v.shared_by,
               "shared": v.shared_at.isoformat(), "deleted": iso(v.deleted_at)}
              for v in sharing.force_ledger(ctx, me, force)], json_out)


@force_app.command("view")
@user_errors
def force_view(force: Annotated[Optional[str], typer.Option(help="The police force (oversight auditors).")] = None,
               json_out: JsonOption = False) -> None:
    """The central view: the force's agreements, every image it shared with its uses (watchlists,
    deployments, alerts) and deletion, and the deployments and alerts that used its images."""
    from sqlalchemy import select

    from openlfr.governance import central
    from openlfr.store.models import Organisation

    with as_user("force.view") as (ctx, me):
        view = central.force_view(ctx, me, force)
        orgs = dict(ctx.session.execute(select(Organisation.id, Organisation.name)).all())
        doc: dict[str, Any] = {
            "force": view.force,
            "agreements": [{"id": a.id, "operator": a.operator, "status": a.status, "purpose": a.purpose,
                            "from": a.valid_from.isoformat(), "until": a.valid_until.isoformat(),
                            "limit": a.image_limit} for a in view.agreements],
            "images": [{"image": h.image.image_id, "agreement": h.image.agreement_id, "operator": h.image.operator,
                        "status": h.image.status, "subject": h.image.subject_ref, "category": h.image.category,
                        "sha256": h.image.sha256, "shared_by": h.image.shared_by,
                        "shared": h.image.shared_at.isoformat(), "deleted": iso(h.image.deleted_at),
                        "deletion_reason": h.image.deletion_reason or "",
                        "uses": [{"kind": u.kind, "id": u.id, "organisation": u.organisation, "at": iso(u.at),
                                  "detail": u.detail} for u in h.uses]} for h in view.images],
            "deployments": [{"id": d.id, "organisation": orgs.get(d.organisation_id, ""), "kind": d.kind,
                             "status": d.status, "purpose": d.purpose, "start": d.start.isoformat(),
                             "end": d.end.isoformat()} for d in view.deployments],
            "alerts": [{"id": a.id, "deployment": a.deployment_id, "camera": a.camera_id, "at": a.at.isoformat(),
                        "score": round(a.score, 4), "outcome": a.review_outcome or "", "deleted": iso(a.deleted_at)}
                       for a in view.alerts],
        }
    if json_out:
        print_json(doc)
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
                where = f" ({use['organisation']})" if use["organisation"] else ""
                typer.echo(f"    {use['kind']} {use['id']}" + where
                           + f" {use['at']}: {use['detail']}")


def register(app: typer.Typer) -> None:
    """Add ``openlfr agreement``, ``openlfr share`` and ``openlfr force`` to the main app."""
    app.add_typer(agreement_app, name="agreement")
    app.add_typer(share_app, name="share")
    app.add_typer(force_app, name="force")
