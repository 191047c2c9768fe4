"""Alert commands: ``openlfr alert list|review|outcome|due|escalations|resolve|delete|hold|release|holds``,
as the user logged in (``openlfr login NAME``, or ``OPENLFR_TOKEN``).

They call the same services as the HTTP API and the console (two-person review, escalations
owned by the authorising force's officers, engagement outcomes), which check the user's role
and organisation; there is no way to act by naming a user. Refused or invalid actions print
one line and exit 2, and are audited.
"""

from __future__ import annotations

from typing import Annotated

import typer

from openlfr.cli.store import as_user
from openlfr.cli.support import JsonOption, print_rows, user_errors
from openlfr.governance.grounds import EngagementResult

alert_app = typer.Typer(help="Alerts: review, escalations, what happened after a verified alert, early "
                        "deletion and legal holds.",
                        no_args_is_help=True)

Note = Annotated[str, typer.Option(help="Why (kept with the decision and audited).")]
AlertId = Annotated[int, typer.Argument(help="The alert's id (openlfr alert list).")]
RESULTS = ", ".join(r.value for r in EngagementResult)


@alert_app.command("list")
@user_errors
def list_alerts(json_out: JsonOption = False) -> None:
    """The alerts still held that you may review, newest first (reviewers)."""
    from openlfr.governance import Role, outcomes, reviews
    from openlfr.store.models import Camera

    with as_user("alert.list") as (ctx, me):
        user = ctx.require(me, {Role.REVIEWER}, "alert.list")
        rows = []
        for a in reviews.reviewable_alerts(ctx, user):
            camera = ctx.session.get(Camera, a.camera_id)
            # as this reviewer may see it: blind to the others' decisions until they have decided
            state, confirmed, _ = reviews.blind_view(a, reviews.reviews_of(ctx, a.id), user.id)
            done = outcomes.outcome_of(ctx.session, a.id)
            rows.append({"id": a.id, "deployment": a.deployment_id, "camera": camera.name if camera else "?",
                         "at": a.at.isoformat(), "score": round(a.score, 4), "status": state,
                         "confirmations": confirmed,
                         "outcome": done.result if done else ("due" if outcomes.outcome_due(ctx.session, a) else "")})
    print_rows(rows, json_out)


@alert_app.command("review")
@user_errors
def review(alert_id: AlertId, decision: Annotated[str, typer.Option(help="confirm, dismiss or escalate.")],
           note: Note = "") -> None:
    """Confirm, dismiss or escalate an alert (verified after the confirmations its deployment
    requires, each by a different reviewer; an escalation goes to the authorising force's officers)."""
    from openlfr.governance import reviews

    with as_user(f"alert.{decision}") as (ctx, me):
        alert = reviews.review(ctx, me, alert_id, decision, note)
        state = reviews.status(alert, reviews.reviews_of(ctx, alert.id))
    typer.echo(f"alert {alert_id}: {decision} recorded; now {state.replace('_', ' ')}")


@alert_app.command("outcome")
@user_errors
def outcome(alert_id: AlertId, result: Annotated[str, typer.Option(help=f"What happened: {RESULTS}.")],
            officer: Annotated[str, typer.Option(help="Who engaged: a name or collar number.")],
            note: Annotated[str, typer.Option(help="What happened, in words.")] = "") -> None:
    """Record what happened after a verified alert (once; it cannot be changed)."""
    from openlfr.governance import outcomes
    from openlfr.rights.keys import open_text

    with as_user("alert.outcome") as (ctx, me):
        row = outcomes.record_outcome(ctx, me, alert_id, result, note, officer)
        engaged = open_text(ctx, row.officer)  # stored sealed under the alert's erasure key
    typer.echo(f"alert {alert_id}: outcome recorded ({row.result.replace('_', ' ')}, officer {engaged})")


@alert_app.command("due")
@user_errors
def due(json_out: JsonOption = False) -> None:
    """Verified alerts whose outcome you may record and nobody has yet, oldest first."""
    from openlfr.governance import outcomes

    with as_user("alert.outcomes_due") as (ctx, me):
        rows = outcomes.outcomes_due(ctx, me)
    print_rows([{"alert": d.alert_id, "deployment": d.deployment_id, "at": d.at.isoformat(),
            "verified": d.verified_at.isoformat() if d.verified_at else ""} for d in rows], json_out)


@alert_app.command("escalations")
@user_errors
def escalations(json_out: JsonOption = False) -> None:
    """The escalations your role and organisation own: open ones and those resolved this week."""
    from openlfr.governance import reviews

    with as_user("escalation.list") as (ctx, me):
        rows = reviews.escalations(ctx, me)
    print_rows([{"id": e.id, "alert": e.alert_id, "deployment": e.deployment_id, "status": e.status,
            "opened_by": e.opened_by, "opened": e.opened_at.isoformat(), "reason": e.reason,
            "resolved_by": e.resolved_by or ""} for e in rows], json_out)


@alert_app.command("resolve")
@user_errors
def resolve(escalation_id: Annotated[int, typer.Argument(help="The escalation's id (openlfr alert escalations).")],
            decision: Annotated[str, typer.Option(help="confirm or dismiss.")], note: Note = "") -> None:
    """Resolve an escalation your role and organisation own (not one you escalated): dismiss
    settles the alert as false; confirm counts as one of the confirmations it requires."""
    from openlfr.governance import reviews

    with as_user("escalation.resolve") as (ctx, me):
        esc = reviews.resolve_escalation(ctx, me, escalation_id, decision, note)
        from openlfr.store.models import Alert

        alert = ctx.session.get(Alert, esc.alert_id)
        state = reviews.status(alert, reviews.reviews_of(ctx, alert.id))
    typer.echo(f"escalation {escalation_id}: {decision} recorded; alert {esc.alert_id} now {state.replace('_', ' ')}")


# --- early deletion and legal holds (operator admins and DPOs: governance.alert_lifecycle) ---
@alert_app.command("delete")
@user_errors
def delete(alert_id: AlertId,
           reason: Annotated[str, typer.Option(help="Why this alert is deleted before its retention ends (audited).")]
           = "") -> None:
    """Delete one alert early, with a reason: its crop, key, details and notes go, the counts stay.
    Refused under a legal hold (operator admins and DPOs of the deployment's organisation,
    DPOs of the force that authorised it)."""
    from openlfr.governance import alert_lifecycle

    with as_user("alert.delete") as (ctx, me):
        wiped = alert_lifecycle.delete_alert(ctx, me, alert_id, reason)
    typer.echo(f"alert {alert_id}: deleted ({len(wiped.media_deleted)} crops/footage deleted, "
               f"key {'destroyed' if wiped.key_destroyed else 'already gone'}); its counts stay in the reports")


@alert_app.command("hold")
@user_errors
def hold(alert_id: AlertId,
         proceeding: Annotated[str, typer.Option(help="The proceeding the alert is kept for, by name.")] = "",
         review_date: Annotated[str, typer.Option(help="When the hold must be reviewed: YYYY-MM-DD, in the future.")]
         = "") -> None:
    """Hold an alert past its retention for a named proceeding, until the hold is released."""
    from openlfr.governance import alert_lifecycle

    with as_user("alert.hold") as (ctx, me):
        row = alert_lifecycle.place_hold(ctx, me, alert_id, proceeding, review_date)
    typer.echo(f"alert {alert_id}: held (hold {row.id}) for {row.proceeding!r}, review by {row.review_date:%Y-%m-%d}")


@alert_app.command("release")
@user_errors
def release(hold_id: Annotated[int, typer.Argument(help="The hold's id (openlfr alert holds).")],
            reason: Annotated[str, typer.Option(help="Why the alert need no longer be kept (audited).")] = "") -> None:
    """Release a legal hold: the alert's retention applies again from the next sweep."""
    from openlfr.governance import alert_lifecycle

    with as_user("alert.hold_release") as (ctx, me):
        row = alert_lifecycle.release_hold(ctx, me, hold_id, reason)
    typer.echo(f"hold {hold_id} released: alert {row.alert_id}'s retention applies again from the next sweep")


@alert_app.command("holds")
@user_errors
def holds(due: Annotated[bool, typer.Option("--due", help="Only the holds whose review date has come.")] = False,
          json_out: JsonOption = False) -> None:
    """The legal holds in force on alerts you may keep, by review date ("due": review it now)."""
    from openlfr.governance import alert_lifecycle

    with as_user("alert.holds") as (ctx, me):
        rows = alert_lifecycle.holds(ctx, me, due_only=due)
    print_rows([{"id": h.id, "alert": h.alert_id, "deployment": h.deployment_id, "proceeding": h.proceeding,
                 "review_date": h.review_date.isoformat(), "due": "due" if h.due else "",
                 "placed_by": h.placed_by, "placed": h.placed_at.isoformat()} for h in rows], json_out)


def register(app: typer.Typer) -> None:
    """Add ``openlfr alert`` to the main app."""
    app.add_typer(alert_app, name="alert")
