"""Alert commands: ``openlfr alert list|review|outcome|due|escalations|resolve``, as the user
logged in (``openlfr login NAME``, or ``OPENLFR_TOKEN``).

They call the same services as the HTTP API and the console (two-person review, escalations
owned by the authorising force's officers, engagement outcomes), which check the user's role
and organisation; there is no way to act by naming a user. Refused or invalid actions print
one line and exit 2, and are audited.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer

from openlfr.cli_auth import governance, verify
from openlfr.cli_support import print_rows, user_errors
from openlfr.governance.grounds import EngagementResult

alert_app = typer.Typer(help="Alerts: review, escalations, and what happened after a verified alert.",
                        no_args_is_help=True)

JsonOut = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
Note = Annotated[str, typer.Option(help="Why (kept with the decision and audited).")]
AlertId = Annotated[int, typer.Argument(help="The alert's id (openlfr alert list).")]
RESULTS = ", ".join(r.value for r in EngagementResult)


@contextmanager
def _as_user(action: str) -> Iterator[tuple[Any, Any]]:
    """One transaction acting as the logged-in user: (ctx, credential), the credential checked first."""
    with governance() as gov:
        me = verify(gov, action)
        with gov.transaction() as ctx:
            yield ctx, me


@alert_app.command("list")
@user_errors
def list_alerts(json_out: JsonOut = False) -> None:
    """The alerts still held that you may review, newest first (reviewers)."""
    from openlfr.api import views
    from openlfr.governance import Role

    with _as_user("alert.list") as (ctx, me):
        alerts = views.list_alerts(ctx, ctx.require(me, {Role.REVIEWER}, "alert.list"))
    print_rows([{"id": a.id, "deployment": a.deployment_id, "camera": a.camera, "at": a.at.isoformat(),
            "score": round(a.score, 4), "status": a.status, "confirmations": a.confirmations,
            "outcome": a.outcome.result if a.outcome else ("due" if a.outcome_due else "")} for a in alerts], json_out)


@alert_app.command("review")
@user_errors
def review(alert_id: AlertId, decision: Annotated[str, typer.Option(help="confirm, dismiss or escalate.")],
           note: Note = "") -> None:
    """Confirm, dismiss or escalate an alert (verified after the confirmations its deployment
    requires, each by a different reviewer; an escalation goes to the authorising force's officers)."""
    from openlfr.governance import reviews

    with _as_user(f"alert.{decision}") as (ctx, me):
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

    with _as_user("alert.outcome") as (ctx, me):
        row = outcomes.record_outcome(ctx, me, alert_id, result, note, officer)
    typer.echo(f"alert {alert_id}: outcome recorded ({row.result.replace('_', ' ')}, officer {row.officer})")


@alert_app.command("due")
@user_errors
def due(json_out: JsonOut = False) -> None:
    """Verified alerts whose outcome you may record and nobody has yet, oldest first."""
    from openlfr.governance import outcomes

    with _as_user("alert.outcomes_due") as (ctx, me):
        rows = outcomes.outcomes_due(ctx, me)
    print_rows([{"alert": d.alert_id, "deployment": d.deployment_id, "at": d.at.isoformat(),
            "verified": d.verified_at.isoformat() if d.verified_at else ""} for d in rows], json_out)


@alert_app.command("escalations")
@user_errors
def escalations(json_out: JsonOut = False) -> None:
    """The escalations your role and organisation own: open ones and those resolved this week."""
    from openlfr.governance import reviews

    with _as_user("escalation.list") as (ctx, me):
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

    with _as_user("escalation.resolve") as (ctx, me):
        esc = reviews.resolve_escalation(ctx, me, escalation_id, decision, note)
        from openlfr.store.models import Alert

        alert = ctx.session.get(Alert, esc.alert_id)
        state = reviews.status(alert, reviews.reviews_of(ctx, alert.id))
    typer.echo(f"escalation {escalation_id}: {decision} recorded; alert {esc.alert_id} now {state.replace('_', ' ')}")


def register(app: typer.Typer) -> None:
    """Add ``openlfr alert`` to the main app."""
    app.add_typer(alert_app, name="alert")
