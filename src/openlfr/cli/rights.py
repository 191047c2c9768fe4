"""People's requests: ``openlfr request open|verify|photo|search|finding|extend|decide|show|list|letter``,
as the user logged in (``openlfr login NAME``, or ``OPENLFR_TOKEN``): the data protection officer
of the organisation the request is addressed to (an oversight body's auditor may show and list,
without the requester's details).

They call the same service as the HTTP API and the console (:mod:`openlfr.rights.requests`),
which checks the role, the organisation and every rule; refused or invalid actions print one
line, exit 2 and are audited.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from openlfr.cli.args import parse_when
from openlfr.cli.store import acting, as_user
from openlfr.cli.support import JsonOption, about_file, print_json, print_rows, user_errors
from openlfr.errors import InputError, OpenLFRError
from openlfr.rights.requests import Decision, Reason, RequestKind

request_app = typer.Typer(help="People's requests (access, erasure, restriction, objection, complaints): "
                          "the data protection officer's work.", no_args_is_help=True)

RequestId = Annotated[int, typer.Argument(help="The request's id (openlfr request list).")]
KINDS = ", ".join(k.value for k in RequestKind)
DECISIONS = ", ".join(d.value for d in Decision)
REASONS = ", ".join(r.value for r in Reason)


def _due(row: Any) -> str:
    return f"{row.due_at:%Y-%m-%d %H:%M} UTC"


def _view_dict(v: Any) -> dict[str, Any]:
    out = asdict(v)
    for key, value in out.items():
        if isinstance(value, datetime):
            out[key] = value.isoformat()
    return out


@request_app.command("open")
@user_errors
def open_(kind: Annotated[str, typer.Argument(help=f"What the person asks for: {KINDS}.")],
          name: Annotated[str, typer.Option(help="The requester's name (kept encrypted under the request's key).")],
          contact: Annotated[str, typer.Option(help="Where to send the answer: a postal or email address.")],
          details: Annotated[str, typer.Option(help="What the person said (where, when, what they ask).")] = "",
          received: Annotated[str, typer.Option(
              help="When the request was received (YYYY-MM-DD or YYYY-MM-DDTHH:MM, UTC); the clock starts "
                   "then. Default: now.")] = "",
          follows: Annotated[int | None, typer.Option(
              help="An earlier, decided request of the same person (an erasure after an access request): "
                   "its confirmed findings are copied.")] = None) -> None:
    """Record a request received by your organisation; the one-month clock starts."""
    from openlfr.rights import requests

    with as_user("request.open") as (ctx, me):
        row = requests.open_request(ctx, me, kind, name, contact, details,
                                    received_at=parse_when(received) if received else None, follows_id=follows)
        typer.echo(f"request {row.id} opened ({row.kind}, {row.regime}), due {_due(row)}")


@request_app.command("verify")
@user_errors
def verify_(request_id: RequestId,
            evidence: Annotated[str, typer.Option(
                help="A short reference to the evidence seen, e.g. 'passport seen by J. Smith, ref V-123' "
                     "(never a scan; at most 200 characters).")]) -> None:
    """Record that you verified the requester's identity."""
    from openlfr.rights import requests

    with as_user("request.verify") as (ctx, me):
        requests.verify_identity(ctx, me, request_id, evidence)
    typer.echo(f"request {request_id}: identity verified")


@request_app.command("photo")
@user_errors
def photo(request_id: RequestId,
          image: Annotated[Path, typer.Argument(
              help="The requester's photo: a JPEG or PNG showing one face.")]) -> None:
    """Hold the requester's photo (encrypted, only for this request) for the search by face."""
    from openlfr.rights import requests

    if not image.is_file():
        raise InputError(f"{image} is not a file")
    with as_user("request.photo", with_templates=True) as (ctx, me):
        try:
            requests.attach_photo(ctx, me, request_id, image.read_bytes())
        except OpenLFRError as err:  # name the file given
            raise type(err)(about_file(err, image)) from None
    typer.echo(f"request {request_id}: photo held for the search (deleted when the request is decided)")


def _finding_rows(findings: list[Any]) -> list[dict[str, Any]]:
    return [{"finding": f.id, "kind": f.kind, "record": f.object_id, "score": round(f.score, 4),
             "threshold": f.threshold, "model": f.model_id, "verdict": f.verdict or "to review",
             **({"summary": f.summary} if hasattr(f, "summary") else {})} for f in findings]


@request_app.command("search")
@user_errors
def search(request_id: RequestId, json_out: JsonOption = False) -> None:
    """Search the requester's face against your watchlists, alerts' crops and shared images; each
    finding then needs your verdict (openlfr request finding)."""
    from openlfr.rights import requests

    with acting("request.search") as (gov, me):
        requests.search_request(gov, me, request_id)  # no write lock held while faces are compared
        with gov.reading() as ctx:
            found = requests.view(ctx, me, request_id).findings
    print_rows(_finding_rows(found), json_out)


@request_app.command("finding")
@user_errors
def finding(finding_id: Annotated[int, typer.Argument(help="The finding's id (openlfr request show ID).")],
            verdict: Annotated[str, typer.Option(help="Whose record it is: requester or someone_else.")]) -> None:
    """Say whether a record the search found is the requester's."""
    from openlfr.rights import requests

    with as_user("request.finding") as (ctx, me):
        row = requests.review_finding(ctx, me, finding_id, verdict)
    typer.echo(f"finding {finding_id} ({row.kind} {row.object_id}): {row.verdict}")


@request_app.command("finding-image")
@user_errors
def finding_image(finding_id: Annotated[int, typer.Argument(help="The finding's id (openlfr request show ID).")],
                  out: Annotated[Path, typer.Option(help="Where to write the image (a new file, mode 0600).")]) -> None:
    """Write the face of the record a finding points at, to compare with the requester's photo
    before the verdict (while the request is open; audited)."""
    from openlfr.rights import requests
    from openlfr.store.settings import write_private

    if out.exists():
        raise InputError(f"{out} exists: give a new file name")
    with as_user("request.view_finding") as (ctx, me):
        data = requests.finding_image(ctx, me, finding_id)
    write_private(out, data)
    typer.echo(f"finding {finding_id}: the record's face written to {out} ({len(data)} bytes)")


@request_app.command("extend")
@user_errors
def extend(request_id: RequestId,
           reason: Annotated[str, typer.Option(help="Why (a complex or numerous request); recorded and audited.")]
           ) -> None:
    """Extend the clock by two months, once (UK GDPR Art. 12(3); refused under DPA 2018 Part 3)."""
    from openlfr.rights import requests

    with as_user("request.extend") as (ctx, me):
        row = requests.extend(ctx, me, request_id, reason)
        typer.echo(f"request {request_id}: extended, now due {_due(row)}")


@request_app.command("decide")
@user_errors
def decide(request_id: RequestId,
           decision: Annotated[str, typer.Option(help=f"The answer: {DECISIONS}.")],
           reason: Annotated[list[str] | None, typer.Option(
               help=f"A reason (repeat for several; needed to refuse or grant in part): {REASONS}.")] = None,
           note: Annotated[str, typer.Option(help="Words to the requester, included in the letter.")] = "") -> None:
    """Decide and answer: a granted erasure erases every record confirmed as the requester's; the
    photo is deleted and the letter written (openlfr request letter)."""
    from openlfr.rights import requests

    with as_user("request.decide") as (ctx, me):
        row = requests.decide(ctx, me, request_id, decision, reason or [], note)
        typer.echo(f"request {request_id}: {row.decision}"
                   f"{' (' + ', '.join(row.decision_reasons) + ')' if row.decision_reasons else ''}; "
                   f"{'in time' if row.decided_at is not None and row.decided_at <= row.due_at else 'LATE'}; "
                   "letter ready")


@request_app.command("show")
@user_errors
def show(request_id: RequestId, json_out: JsonOption = False) -> None:
    """One request: its clock, requester, identity check, findings and decision."""
    from openlfr.rights import requests

    with as_user("request.view") as (ctx, me):
        v = requests.view(ctx, me, request_id)
    if json_out:
        print_json(_view_dict(v))
        return
    clock = "overdue" if v.overdue else f"{v.days_left} days left"
    typer.echo(f"request {v.id}: {v.kind} to {v.organisation} ({v.regime}), {v.status}")
    typer.echo(f"  received {v.received_at:%Y-%m-%d %H:%M} UTC, due {v.due_at:%Y-%m-%d %H:%M} UTC"
               f"{' (extended)' if v.extended else ''}{'' if v.decided_at else ', ' + clock}")
    typer.echo(f"  requester: {v.requester_name}; contact: {v.contact}")
    if v.details:
        typer.echo(f"  details: {v.details}")
    typer.echo(f"  identity verified: {'yes' if v.identity_verified else 'no'}; photo held: "
               f"{'yes' if v.has_photo else 'no'}")
    for f in v.findings:
        typer.echo(f"  finding {f.id}: {f.summary}; score {f.score:.3f} (threshold {f.threshold:g}, {f.model_id}); "
                   f"{f.verdict or 'to review'}")
    if v.decision:
        typer.echo(f"  decision: {v.decision}{' (' + ', '.join(v.reasons) + ')' if v.reasons else ''} on "
                   f"{v.decided_at:%Y-%m-%d %H:%M} UTC, {'in time' if v.answered_in_time else 'late'}")


@request_app.command("list")
@user_errors
def list_(open_only: Annotated[bool, typer.Option("--open", help="Only requests not yet decided.")] = False,
          json_out: JsonOption = False) -> None:
    """The requests you may see, soonest due first."""
    from openlfr.rights import requests

    with as_user("request.list") as (ctx, me):
        rows = requests.queue(ctx, me, open_only=open_only)
    print_rows([{"id": v.id, "kind": v.kind, "organisation": v.organisation, "status": v.status,
                 "requester": v.requester_name, "due": v.due_at.isoformat(), "days_left": v.days_left,
                 "overdue": v.overdue, "decision": v.decision or ""} for v in rows], json_out)


@request_app.command("letter")
@user_errors
def letter(request_id: RequestId,
           out: Annotated[Path | None, typer.Option(help="Write the letter to this file instead of printing it.")]
           = None) -> None:
    """The outcome letter of a decided request (plain text)."""
    from openlfr.rights import requests

    with as_user("request.letter") as (ctx, me):
        text = requests.letter(ctx, me, request_id)
    if out is None:
        typer.echo(text, nl=False)
        return
    out.write_text(text, encoding="utf-8")
    typer.echo(f"letter of request {request_id} written to {out}")


def register(app: typer.Typer) -> None:
    """Add ``openlfr request`` to the main app."""
    app.add_typer(request_app, name="request")
