"""``openlfr deployment``: governed watchlists and authorised deployments (request, authorise,
start, end...), as the user logged in. :func:`register` adds the group to the main app."""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from openlfr.cli.args import CATEGORIES_HELP, DeploymentId, ImageId, WatchlistId, parse_day, parse_when
from openlfr.cli.jobs import BACKGROUND_HELP, announce
from openlfr.cli.store import acting, as_user
from openlfr.cli.support import JsonOption, print_json, print_rows, user_errors
from openlfr.errors import InputError
from openlfr.governance.grounds import LegalBasis

deployment_app = typer.Typer(help="Governed watchlists and authorised deployments.", no_args_is_help=True)


@deployment_app.command("watchlist-create")
@user_errors
def watchlist_create(name: Annotated[str, typer.Argument(help="The watchlist's name.")],
                     criteria: Annotated[str, typer.Option(help="Inclusion criteria.")],
                     category: Annotated[list[str], typer.Option(
                         help="A category its entries may have (repeat; the composition criteria): "
                              + CATEGORIES_HELP + ".")],
                     cap: Annotated[int, typer.Option(help="Size cap.")] = 2000) -> None:
    """Create a governed watchlist of your organisation (entries come only from images shared with
    it, of its categories)."""
    from openlfr.governance import watchlists

    with as_user("watchlist.create") as (ctx, me):  # the fields are checked after the caller: refusals audited
        row = watchlists.create_watchlist_from(ctx, me, dict(name=name, criteria=criteria, categories=category,
                                                             size_cap=cap))
        typer.echo(f"watchlist {row.id} {name}")


@deployment_app.command("watchlist-add")
@user_errors
def watchlist_add(watchlist_id: WatchlistId, image_id: ImageId,
                  label: Annotated[str, typer.Option(help="What reviewers see for this entry (no more than needed).")],
                  reason: Annotated[str, typer.Option(help="Why this person is on the watchlist.")],
                  review_date: Annotated[str, typer.Option(help="When the entry must be reviewed (YYYY-MM-DD).")],
                  under_18: Annotated[bool, typer.Option(help="The person is under 18.")] = False) -> None:
    """Put a shared image on a governed watchlist."""
    from openlfr.governance import parse, watchlists
    from openlfr.governance.schemas import WatchlistAdd

    with as_user("watchlist.add") as (ctx, me):
        data = parse(WatchlistAdd, watchlist_id=watchlist_id, shared_image_id=image_id, label=label, reason=reason,
                     review_date=parse_day(review_date), under_18=under_18)
        typer.echo(f"entry {watchlists.add_entry(ctx, me, data).id} added to watchlist {watchlist_id}")


@deployment_app.command("watchlist-retemplate")
@user_errors
def watchlist_retemplate(watchlist_id: WatchlistId,
                         background: Annotated[bool, typer.Option(
                             "--background", help=BACKGROUND_HELP + " A worker uses its own configured face "
                                                                    "model.")] = False) -> None:
    """Re-make every template of a watchlist with the configured face model (--face-model),
    from the encrypted shared images; audited per image. Frozen snapshots keep theirs."""
    from openlfr.governance import watchlists

    with acting("watchlist.retemplate", True) as (gov, me):
        if background:
            from openlfr.jobs import RETEMPLATE, submit

            done = announce(submit(gov, me, RETEMPLATE, {"watchlist": watchlist_id}))
            if done is None:  # queued
                return
        else:
            prepared = watchlists.prepare_retemplate(gov, me, watchlist_id)  # the face model runs with no lock held
            with gov.transaction() as ctx:
                done = watchlists.retemplate(ctx, me, watchlist_id, prepared)
        typer.echo(f"watchlist {watchlist_id}: {done['retemplated']} template(s) re-made, "
                   f"{done['unchanged']} already of this model")


@deployment_app.command("request")
@user_errors
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
    threshold: Annotated[Optional[float], typer.Option(
        help="Similarity threshold (cosine), or give --false-alert-rate.")] = None,
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

    with acting("deployment.request") as (gov, me):
        calibrate = configured_calibrator() if false_alert_rate is not None else None
        with gov.transaction() as ctx:  # the fields are checked after the caller: a refusal is audited
            ctx.require(me, None, "deployment.request")
            camera_ids = [cameras.find_camera(ctx, c).id for c in camera]
            dep = deployments.request_from(ctx, me, dict(
                kind=kind, purpose=purpose, watchlist_id=watchlist, camera_ids=camera_ids, start=parse_when(start),
                end=parse_when(end), threshold=threshold, target_false_alert_rate=false_alert_rate,
                legal_basis=legal_basis, dpia_ref=dpia, dpia_date=dpia_date, eia_ref=eia_ref, eia_date=eia_date,
                necessity=necessity, proportionality=proportionality, urgent=urgent, urgency_reason=urgency_reason,
                confirmations_required=confirmations, police_review_required=police_review), calibrate)
            how = f"calibrated threshold {dep.threshold:.4f}" if dep.calibration else f"threshold {dep.threshold}"
            typer.echo(f"deployment {dep.id} requested ({dep.kind}, {how})")


@deployment_app.command("authorise")
@user_errors
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
    with as_user("deployment.authorise") as (ctx, me):
        dep = deployments.authorise(ctx, me, deployment_id, note, require_police_review=require_police_review,
                                    threshold_reason=threshold_reason, floor_fn=floor_fn)
        typer.echo(f"deployment {dep.id} authorised; watchlist snapshot {dep.snapshot_size} entries, "
                   f"sha256 {dep.snapshot_hash}")
        if dep.retro_review_due is not None:
            typer.echo(f"urgent: an officer of the usual rank must review it by {dep.retro_review_due:%Y-%m-%d %H:%M} "
                       "UTC (openlfr deployment review), or it ends")


@deployment_app.command("refuse")
@user_errors
def deployment_refuse(deployment_id: DeploymentId,
                      reason: Annotated[str, typer.Option(help="Why (recorded in the audit log).")]
                      ) -> None:
    """Refuse a requested deployment (an authorising officer of a supplying force, never the requester)."""
    from openlfr.governance import deployments

    with as_user("deployment.refuse") as (ctx, me):
        deployments.refuse(ctx, me, deployment_id, reason)
        typer.echo(f"deployment {deployment_id} refused")


@deployment_app.command("review")
@user_errors
def deployment_review(
    deployment_id: DeploymentId,
    outcome: Annotated[str, typer.Option(help="upheld (it runs on) or ended (it ends now).")],
    note: Annotated[str, typer.Option(help="The reasons of the review.")],
) -> None:
    """The retrospective review of an urgent deployment (an officer of the same force, of the usual
    rank, not the one who authorised it)."""
    from openlfr.governance import deployments

    with as_user("deployment.retro_review") as (ctx, me):
        dep = deployments.retro_review(ctx, me, deployment_id, outcome, note)
        typer.echo(f"deployment {deployment_id} review: {outcome}; it is {dep.status}")


@deployment_app.command("show")
@user_errors
def deployment_show(deployment_id: DeploymentId, json_out: JsonOption = False) -> None:
    """One deployment with its grounds and its watchlist's composition (as the authoriser sees it
    before authorising; frozen once authorised)."""
    from openlfr.governance.deployment_view import deployment_out  # the staff read model, shared with the API
    from openlfr.governance import deployments

    with as_user("deployment.list") as (ctx, me):
        found = [d for d in deployments.list_deployments(ctx, me) if d.id == deployment_id]
        if not found:
            raise InputError(f"no deployment {deployment_id} that you may see")
        out = deployment_out(found[0], ctx).model_dump(mode="json")
    if json_out:
        print_json(out)
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
@user_errors
def deployment_start(deployment_id: DeploymentId) -> None:
    """Go live (inside the window, every camera with current signage)."""
    from openlfr.governance import deployments

    with as_user("deployment.start") as (ctx, me):
        typer.echo(f"deployment {deployments.start(ctx, me, deployment_id).id} is live")


@deployment_app.command("end")
@user_errors
def deployment_end(deployment_id: DeploymentId,
                   reason: Annotated[str, typer.Option(help="Why it ends (recorded in the audit log).")] = "") -> None:
    """End (or cancel) a deployment; its snapshot is deleted by the retention sweep."""
    from openlfr.governance import deployments

    with as_user("deployment.end") as (ctx, me):
        typer.echo(f"deployment {deployment_id} is {deployments.end(ctx, me, deployment_id, reason).status}")


@deployment_app.command("threshold")
@user_errors
def deployment_threshold(deployment_id: DeploymentId,
                         value: Annotated[float, typer.Argument(
                             help="The new similarity threshold (cosine).")]) -> None:
    """Change the threshold of a deployment not yet authorised."""
    from openlfr.governance import deployments

    with as_user("deployment.threshold") as (ctx, me):
        deployments.set_threshold(ctx, me, deployment_id, value)
        typer.echo(f"deployment {deployment_id} threshold {value}")


@deployment_app.command("list")
@user_errors
def deployment_list(json_out: JsonOption = False) -> None:
    """The deployments your organisation runs, authorised or supplied images to."""
    from openlfr.governance import deployments
    from openlfr.governance.composition import deployment_composition

    with as_user("deployment.list") as (ctx, me):
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


def register(app: typer.Typer) -> None:
    """Add ``openlfr deployment`` to the main app."""
    app.add_typer(deployment_app, name="deployment")
