"""People's requests as records: access, erasure, restriction, objection and complaints.

CONTRACT (written by the lead; H3 implements the bodies, H4 builds pages on these names).
Every function takes the actor's credential, checks the role in the service layer (a DPO of the
organisation the request is addressed to; an oversight auditor may read), audits every step
(personal fields sealed under ``request:<id>``, see :mod:`openlfr.rights.keys`) and raises
openlfr errors (InputError, NotFoundError, PermissionDenied, RuleViolation) with a clear line.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import select

from openlfr.errors import InputError, NotFoundError
from openlfr.governance.context import Ctx, Governance
from openlfr.governance.credentials import Actor
from openlfr.governance.errors import PermissionDenied, RuleViolation
from openlfr.governance.schemas import OrgKind, Role
from openlfr.rights.clock import CLOCK_LAW, EXTENSION_MONTHS, days_left, due_date
from openlfr.rights.keys import (
    ERASED,
    destroy_key,
    open_bytes,
    open_text,
    request_ref,
    seal_bytes,
    seal_text,
)
from openlfr.store.models import Alert, Organisation, RequestFinding, RightsRequest, SharedImage, User, WatchlistEntry


class RequestKind(StrEnum):
    """What the person asks for."""

    ACCESS = "access"
    ERASURE = "erasure"
    RESTRICTION = "restriction"
    OBJECTION = "objection"
    COMPLAINT = "complaint"


class Decision(StrEnum):
    """How a request was answered."""

    GRANTED = "granted"
    PARTLY = "partly"  # granted in part (some records withheld under a restriction)
    REFUSED = "refused"
    NOTHING_HELD = "nothing_held"  # the search found nothing of the person


class Reason(StrEnum):
    """Reasons a decision may give (DPA 2018 s.45(4) restrictions police may rely on, UK GDPR
    Art. 12(5) and 17(3) grounds, and the system's own)."""

    AVOID_OBSTRUCTING_INQUIRY = "avoid_obstructing_inquiry"  # s.45(4)(a)
    AVOID_PREJUDICING_CRIME = "avoid_prejudicing_crime"  # s.45(4)(b)
    PUBLIC_SECURITY = "public_security"  # s.45(4)(c)
    NATIONAL_SECURITY = "national_security"  # s.45(4)(d)
    RIGHTS_OF_OTHERS = "rights_of_others"  # s.45(4)(e)
    MANIFESTLY_UNFOUNDED = "manifestly_unfounded"  # Art. 12(5) / s.53
    LEGAL_CLAIMS = "legal_claims"  # Art. 17(3)(e): kept for a legal proceeding (a legal hold)
    IDENTITY_NOT_VERIFIED = "identity_not_verified"
    NOT_HELD_BY_US = "not_held_by_us"  # held by another controller (e.g. the supplying force)


@dataclass(frozen=True)
class FindingView:
    """A record the search found, as the DPO reviewing it sees it."""

    id: int
    kind: str  # alert | watchlist_entry | shared_image
    object_id: int
    score: float
    threshold: float
    model_id: str
    verdict: str | None  # None (not reviewed) | requester | someone_else
    summary: str  # what the record is (e.g. "alert 17: north-gate, 2026-12-03 10:00 UTC, dismissed")
    held: bool = True  # its face is still held (erased or deleted records have none to show)


@dataclass(frozen=True)
class RequestView:
    """A request as its DPO sees it (requester fields opened; ``[erased]`` once erased)."""

    id: int
    kind: str
    organisation: str
    regime: str  # uk_gdpr | dpa_part3
    status: str  # received | verified | searched | decided | erased
    received_at: datetime
    due_at: datetime
    days_left: int  # whole days to the due date (negative: overdue)
    overdue: bool
    extended: bool
    requester_name: str
    contact: str
    details: str
    identity_verified: bool
    has_photo: bool
    decision: str | None
    reasons: list[str]
    decision_note: str
    decided_at: datetime | None
    answered_in_time: bool | None  # None while open
    follows_id: int | None
    findings: list[FindingView] = field(default_factory=list)


@dataclass(frozen=True)
class RequestCounts:
    """For the public report: requests received, answered, answered in time and refused."""

    received: int
    answered: int
    answered_in_time: int
    refused: int
    open_overdue: int


#: what an oversight auditor is shown in place of the requester's sealed fields
WITHHELD = "[withheld]"
VERDICTS = ("requester", "someone_else")
#: DPA 2018 s.45(4)(a)-(d): restrictions only a competent authority (a police force, Part 3) may rely on
PART3_ONLY = frozenset({Reason.AVOID_OBSTRUCTING_INQUIRY, Reason.AVOID_PREJUDICING_CRIME, Reason.PUBLIC_SECURITY,
                        Reason.NATIONAL_SECURITY})
#: kinds whose answer depends on what the search by face found
SEARCHED_KINDS = frozenset({RequestKind.ACCESS, RequestKind.ERASURE})
MAX_NAME, MAX_CONTACT, MAX_DETAILS, MAX_EVIDENCE, MAX_REASON = 200, 500, 5000, 200, 1000
# a run of base64 characters or the marks of image data: an evidence *reference* is short text
_BLOB_LIKE = re.compile(r"[A-Za-z0-9+/=_-]{40,}|data:|base64|JFIF|Exif|\x89PNG|IHDR", re.IGNORECASE)


# --- checks -----------------------------------------------------------------------------------------
def _choice(enum: type[StrEnum], value: str, what: str) -> Any:
    try:
        return enum(str(value).strip())
    except ValueError:
        raise InputError(f"unknown {what} {value!r}; the {what}s are: {', '.join(e.value for e in enum)}") from None


def _text(value: str, what: str, limit: int, *, required: bool = True) -> str:
    text = (value or "").strip()
    if required and not text:
        raise InputError(f"{what} is empty")
    if len(text) > limit:
        raise InputError(f"{what} is too long ({len(text)} characters; at most {limit})")
    if any(not (ch.isprintable() or ch in "\n\t") for ch in text):
        raise InputError(f"{what} holds control characters")
    return text


def _regime(org: Organisation) -> str:
    kind = OrgKind(org.kind)
    if kind is OrgKind.POLICE_FORCE:
        return "dpa_part3"
    if kind is OrgKind.SITE_OPERATOR:
        return "uk_gdpr"
    raise PermissionDenied(f"{org.name} is an oversight body: requests are made to the controller (a police force "
                           "or a site operator)")


def _dpo(ctx: Ctx, actor: Actor, action: str, object_type: str = "request", object_id: Any = "") -> User:
    """The acting DPO (audited refusal otherwise)."""
    return ctx.require(actor, {Role.DPO}, action, object_type, object_id)


def _own(ctx: Ctx, user: User, request_id: int, action: str, *, open_only: bool = True) -> RightsRequest:
    """The request, addressed to the DPO's own organisation (and not yet decided, with ``open_only``)."""
    req = ctx.get(RightsRequest, request_id, "request")
    ctx.require_member(user, req.organisation_id, f"{action} request {request_id}")
    if open_only and req.decided_at is not None:
        raise RuleViolation(f"request {request_id} was decided on {req.decided_at:%Y-%m-%d} ({req.decision}): "
                            "it cannot be changed")
    return req


def _reader(ctx: Ctx, actor: Actor, action: str, object_id: Any = "") -> User:
    """A DPO, or an oversight body's auditor (who reads requests without the requester's fields)."""
    user = ctx.require(actor, {Role.DPO, Role.AUDITOR}, action, "request", object_id)
    if Role(user.role) is Role.AUDITOR and not ctx.oversees(user):
        raise PermissionDenied(f"{action} is for data protection officers and oversight bodies' auditors; "
                               f"{user.name} is an auditor of {user.organisation}")
    return user


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _findings(ctx: Ctx, request_id: int) -> list[RequestFinding]:
    return list(ctx.session.execute(select(RequestFinding).where(RequestFinding.request_id == request_id)
                                    .order_by(RequestFinding.score.desc(), RequestFinding.id)).scalars())


def _check_evidence(evidence_ref: str) -> str:
    text = _text(evidence_ref, "the identity evidence reference", 10**6)
    if len(text) > MAX_EVIDENCE:
        raise InputError(f"the identity evidence reference is {len(text)} characters; record a short reference "
                         f"(at most {MAX_EVIDENCE}), such as 'passport seen by J. Smith, ref V-123', "
                         "never the document")
    if _BLOB_LIKE.search(text):
        raise InputError("the identity evidence reference looks like encoded data or an image: record only a short "
                         "reference to the document seen (such as 'passport seen by J. Smith, ref V-123'), "
                         "never a scan")
    return text


# --- the service --------------------------------------------------------------------------------------
def open_request(ctx: Ctx, actor: Actor, kind: str, name: str, contact: str, details: str = "",
                 *, received_at: datetime | None = None, follows_id: int | None = None) -> RightsRequest:
    """Record a request received by the actor's organisation (the actor: its DPO); the clock
    starts at ``received_at`` (default now; not in the future).

    ``follows_id`` names an earlier, decided request of the same organisation (an erasure after an
    access request): the findings confirmed there as the requester's are copied, reviewed as they were."""
    user = _dpo(ctx, actor, "request.open")
    regime = _regime(user.org)
    kind_ = _choice(RequestKind, kind, "request kind")
    name = _text(name, "the requester's name", MAX_NAME)
    contact = _text(contact, "the requester's contact (a postal or email address for the answer)", MAX_CONTACT)
    details = _text(details, "the request's details", MAX_DETAILS, required=False)
    now = ctx.now()
    received = _utc(received_at) if received_at is not None else now
    if received > now:
        raise InputError(f"the request cannot be received in the future ({received:%Y-%m-%d %H:%M} UTC)")
    earlier = None
    if follows_id is not None:
        earlier = ctx.get(RightsRequest, follows_id, "request")
        ctx.require_member(user, earlier.organisation_id, f"follow request {follows_id}")
        if earlier.decided_at is None:
            raise RuleViolation(f"request {follows_id} is not decided yet: a request can follow only a decided one")
    row = RightsRequest(kind=kind_.value, organisation_id=user.organisation_id, regime=regime, follows_id=follows_id,
                        received_at=received, due_at=due_date(received, regime=regime), requester_sealed="",
                        status="received", decision_reasons=[], recorded_by_id=user.id, created_at=now)
    ctx.session.add(row)
    ctx.session.flush()
    ref = request_ref(row.id)
    row.requester_sealed = seal_text(ctx, ref, json.dumps({"name": name, "contact": contact, "details": details}))
    copied = 0
    if earlier is not None:
        for f in _findings(ctx, earlier.id):
            if f.verdict == "requester":
                ctx.session.add(RequestFinding(
                    request_id=row.id, kind=f.kind, object_id=f.object_id, score=f.score, threshold=f.threshold,
                    model_id=f.model_id, found_at=now, verdict=f.verdict, reviewed_by_id=f.reviewed_by_id,
                    reviewed_at=f.reviewed_at))
                copied += 1
    ctx.audit(actor, "request.open", "request", row.id, kind=row.kind, regime=regime,
              organisation=user.organisation_id, received_at=received, due_at=row.due_at, follows=follows_id,
              findings_copied=copied, personal={"name": name, "contact": contact, "details": details}, subject=ref)
    return row


def verify_identity(ctx: Ctx, actor: Actor, request_id: int, evidence_ref: str) -> RightsRequest:
    """Record that staff verified the requester's identity, with the evidence's reference (never a scan)."""
    user = _dpo(ctx, actor, "request.verify", object_id=request_id)
    req = _own(ctx, user, request_id, "verify")
    evidence = _check_evidence(evidence_ref)
    ref = request_ref(req.id)
    req.identity_evidence_sealed = seal_text(ctx, ref, evidence)
    req.identity_verified_by_id, req.identity_verified_at = user.id, ctx.now()
    if req.status == "received":
        req.status = "verified"
    ctx.audit(actor, "request.verify", "request", req.id, personal={"evidence": evidence}, subject=ref)
    return req


def extend(ctx: Ctx, actor: Actor, request_id: int, reason: str) -> RightsRequest:
    """Extend the clock (by two months, once, where the regime allows), with a reason."""
    user = _dpo(ctx, actor, "request.extend", object_id=request_id)
    req = _own(ctx, user, request_id, "extend")
    reason = _text(reason, "the reason for the extension", MAX_REASON)
    if EXTENSION_MONTHS.get(req.regime, 0) == 0:
        raise RuleViolation(f"request {req.id} is answered under DPA 2018 Part 3, which gives one month "
                            f"({CLOCK_LAW[req.regime]}) and no extension: it is due {req.due_at:%Y-%m-%d %H:%M} UTC")
    if req.extended_at is not None:
        raise RuleViolation(f"request {req.id} was already extended on {req.extended_at:%Y-%m-%d} "
                            f"(due {req.due_at:%Y-%m-%d}): {CLOCK_LAW[req.regime]} allows one extension")
    now = ctx.now()
    if now > req.due_at:
        raise RuleViolation(f"request {req.id} was due {req.due_at:%Y-%m-%d %H:%M} UTC: an extension must be made "
                            "(and the requester told) within the first month")
    before = req.due_at
    req.due_at = due_date(req.received_at, extended=True, regime=req.regime)
    req.extended_at, req.extension_reason = now, reason
    ctx.audit(actor, "request.extend", "request", req.id, reason=reason, due_before=before, due_at=req.due_at)
    return req


def attach_photo(ctx: Ctx, actor: Actor, request_id: int, image: bytes) -> RightsRequest:
    """Hold the requester's photo (exactly one face) sealed under the request's key, for the search."""
    from openlfr.governance.sharing import prepare_image

    user = _dpo(ctx, actor, "request.photo", object_id=request_id)
    req = _own(ctx, user, request_id, "attach a photo to")
    template_fn = ctx.template_fn
    if template_fn is None:
        from openlfr.face.analyzer import enrolment_template as template_fn
    try:  # the image gate, then exactly one face of enrolment quality
        prepared = prepare_image(template_fn, image, label="the requester's photo")
    except InputError as err:  # the face stage names only "image": say whose
        message = str(err).removeprefix("image: ").removeprefix("<bytes>: ")
        if not message.startswith("the requester's photo"):
            message = f"the requester's photo: {message}"
        raise type(err)(message) from None
    ref = request_ref(req.id)
    replaced = req.photo_blob is not None
    if req.photo_blob is not None:
        ctx.blobs.delete(req.photo_blob)
    req.photo_blob = ctx.blobs.put(seal_bytes(ctx, ref, prepared.data))
    ctx.audit(actor, "request.photo", "request", req.id, size=f"{prepared.width}x{prepared.height}",
              quality=round(prepared.quality, 4), replaced=replaced,
              personal={"sha256": hashlib.sha256(prepared.data).hexdigest()}, subject=ref)
    return req


def _searchable(ctx: Ctx, actor: Actor, request_id: int) -> tuple[User, RightsRequest, bytes]:
    """The acting DPO, the request (open, identity verified) and the requester's photo."""
    user = _dpo(ctx, actor, "request.search", object_id=request_id)
    req = _own(ctx, user, request_id, "search for")
    if req.identity_verified_at is None:
        raise RuleViolation(f"request {req.id}: verify the requester's identity before searching for them")
    if req.photo_blob is None:
        raise RuleViolation(f"request {req.id} has no photo of the requester: attach one before searching")
    photo = open_bytes(ctx, request_ref(req.id), ctx.blobs.get(req.photo_blob))
    if photo is None:
        raise RuleViolation(f"request {req.id}'s data was erased: its photo cannot be searched")
    return user, req, photo


def _record_search(ctx: Ctx, actor: Actor, req: RightsRequest, report: Any) -> list[RequestFinding]:
    """Findings for the new hits of ``report`` (a :class:`~openlfr.rights.search.SearchReport`), audited."""
    known = {(f.kind, f.object_id) for f in _findings(ctx, req.id)}
    now = ctx.now()
    added = []
    for hit in report.hits:
        if (hit.kind, hit.object_id) in known:
            continue
        row = RequestFinding(request_id=req.id, kind=hit.kind, object_id=hit.object_id, score=hit.score,
                             threshold=hit.threshold, model_id=hit.model_id, found_at=now)
        ctx.session.add(row)
        added.append(hit)
    req.searched_at = now
    if req.status in ("received", "verified"):
        req.status = "searched"
    ctx.session.flush()
    ctx.audit(actor, "request.search", "request", req.id, searched=report.searched, skipped=report.skipped,
              found=len(added), personal={"findings": [[h.kind, h.object_id, h.score, h.model_id] for h in added]},
              subject=request_ref(req.id))
    return _findings(ctx, req.id)


def search(ctx: Ctx, actor: Actor, request_id: int) -> list[RequestFinding]:
    """Search the requester's face against current watchlists, stored alerts' crops and shared
    images the organisation holds; records findings for a person to review (see
    :mod:`openlfr.rights.search`). Returns every finding of the request, best score first.
    Everything happens in ``ctx``'s transaction: the doors use :func:`search_request`, which
    holds no write lock while faces are compared."""
    from openlfr.rights.search import search_org

    user, req, photo = _searchable(ctx, actor, request_id)
    return _record_search(ctx, actor, req, search_org(ctx, user.org, photo))


def search_request(gov: Governance, actor: Actor, request_id: int) -> list[int]:
    """:func:`search` in three steps, so that the slow part holds no lock: the checks and the
    records are read in a reading transaction (which never blocks the camera workers' writes),
    the faces are compared outside any transaction, and the findings are written in a short
    write transaction that checks the request again (still open, still the actor's). Returns the
    ids of the request's findings, best score first."""
    from openlfr.rights.search import compare, gather

    with gov.reading() as ctx:
        user, _, photo = _searchable(ctx, actor, request_id)
        gallery = gather(ctx, user.org)
    report = compare(gallery, photo)
    with gov.transaction() as ctx:
        _, req, _ = _searchable(ctx, actor, request_id)
        return [f.id for f in _record_search(ctx, actor, req, report)]


def review_finding(ctx: Ctx, actor: Actor, finding_id: int, verdict: str) -> RequestFinding:
    """A person's verdict on one finding: ``requester`` or ``someone_else``."""
    user = _dpo(ctx, actor, "request.finding", "finding", finding_id)
    finding = ctx.get(RequestFinding, finding_id, "finding")
    req = _own(ctx, user, finding.request_id, "review a finding of")
    verdict = str(verdict).strip()
    if verdict not in VERDICTS:
        raise InputError(f"unknown verdict {verdict!r}; the verdicts are: {', '.join(VERDICTS)}")
    finding.verdict, finding.reviewed_by_id, finding.reviewed_at = verdict, user.id, ctx.now()
    ctx.audit(actor, "request.finding", "finding", finding.id, request=req.id,
              personal={"kind": finding.kind, "object": finding.object_id, "verdict": verdict},
              subject=request_ref(req.id))
    return finding


def requester_photo(ctx: Ctx, actor: Actor, request_id: int) -> bytes:
    """The requester's photo, for the DPO comparing it with a finding (while the request is open
    and the photo held; each view audited)."""
    user = _dpo(ctx, actor, "request.view_photo", object_id=request_id)
    req = _own(ctx, user, request_id, "view the photo of")
    if req.photo_blob is None:
        raise NotFoundError(f"request {request_id} holds no photo (none uploaded, or deleted at the decision)")
    data = open_bytes(ctx, request_ref(req.id), ctx.blobs.get(req.photo_blob))
    if data is None:
        raise NotFoundError(f"request {request_id}'s photo was erased")
    ctx.audit(actor, "request.view_photo", "request", req.id)
    return data


def finding_image(ctx: Ctx, actor: Actor, finding_id: int) -> bytes:
    """The face of the record a finding points at (an alert's crop, or the shared image behind
    an entry or image), for the DPO judging whether it is the requester: only while the request
    is open and before a verdict is final; each view audited."""
    from openlfr.rights.keys import media_bytes
    from openlfr.store.models import MediaItem

    user = _dpo(ctx, actor, "request.view_finding", "finding", finding_id)
    finding = ctx.get(RequestFinding, finding_id, "finding")
    req = _own(ctx, user, finding.request_id, "view a finding of")
    if finding.kind == "alert":
        item = ctx.session.execute(select(MediaItem).where(
            MediaItem.alert_id == finding.object_id, MediaItem.kind == "crop").order_by(MediaItem.id)).scalars().first()
        if item is None:
            raise NotFoundError(f"alert {finding.object_id} holds no crop any more")
        data = media_bytes(ctx, item)
    else:
        image_id = finding.object_id
        if finding.kind == "watchlist_entry":
            image_id = ctx.get(WatchlistEntry, finding.object_id, "watchlist entry").shared_image_id
        image = ctx.get(SharedImage, image_id, "shared image")
        if image.image_blob is None:
            raise NotFoundError(f"shared image {image_id} was deleted")
        data = ctx.blobs.get(image.image_blob)
    ctx.audit(actor, "request.view_finding", "finding", finding.id, request=req.id)
    return data


def _check_decision(req: RightsRequest, decision: Decision, reasons: list[Reason],
                    findings: list[RequestFinding]) -> None:
    if decision in (Decision.REFUSED, Decision.PARTLY) and not reasons:
        raise InputError(f"a decision of {decision.value} needs at least one reason; the reasons are: "
                         f"{', '.join(r.value for r in Reason)}")
    if req.regime != "dpa_part3" and (wrong := [r.value for r in reasons if r in PART3_ONLY]):
        raise RuleViolation(f"{', '.join(wrong)}: restrictions of DPA 2018 s.45(4) are for requests to a police "
                            f"force (Part 3); request {req.id} is answered under UK GDPR")
    if decision is not Decision.REFUSED and req.identity_verified_at is None:
        raise RuleViolation(f"request {req.id}: the requester's identity is not verified; verify it first, or "
                            "refuse with reason identity_not_verified")
    if pending := [f.id for f in findings if f.verdict is None]:
        raise RuleViolation(f"request {req.id}: findings {', '.join(map(str, pending))} are not reviewed yet; a person "
                            "must say whether each is the requester's before any answer")
    confirmed = [f for f in findings if f.verdict == "requester"]
    if decision is Decision.NOTHING_HELD:
        if req.searched_at is None:
            raise RuleViolation(f"request {req.id} was not searched: 'nothing held' needs a search by face first")
        if confirmed:
            raise RuleViolation(f"request {req.id} has {len(confirmed)} findings confirmed as the requester's: "
                                "the answer cannot be 'nothing held'")
    elif decision in (Decision.GRANTED, Decision.PARTLY) and RequestKind(req.kind) in SEARCHED_KINDS and not confirmed:
        if req.searched_at is None:
            raise RuleViolation(f"request {req.id} was not searched: search by face before answering")
        raise RuleViolation(f"request {req.id}: no finding is confirmed as the requester's; answer 'nothing_held'")


def _erase(ctx: Ctx, actor: Actor, user: User, req: RightsRequest, decision: Decision, reasons: list[Reason],
           confirmed: list[RequestFinding], labels: dict[tuple[str, int], str]) -> tuple[list[str], list[str]]:
    """Erase every confirmed finding the organisation may erase; (erased, withheld) summaries.
    A record that cannot be erased (a legal hold; another controller's image) is withheld only
    in a partial decision giving the matching reason, else the whole decision is refused."""
    from openlfr.governance.sharing import delete_shared_image
    from openlfr.rights.erasure import active_hold, wipe_alert

    why = f"erased under request {req.id}"
    erased, withheld = [], []
    for f in confirmed:
        label = labels[(f.kind, f.object_id)]
        if f.kind == "alert":
            alert = ctx.session.get(Alert, f.object_id)
            if alert is None:
                continue
            hold = active_hold(ctx, alert.id)
            if hold is not None:
                if decision is Decision.PARTLY and Reason.LEGAL_CLAIMS in reasons:
                    withheld.append(f"{label} (kept for legal proceedings)")
                    continue
                raise RuleViolation(f"alert {alert.id} is under legal hold {hold.id} for {hold.proceeding!r}: "
                                    "it cannot be erased; decide 'partly' with reason legal_claims, or release the "
                                    "hold first")
            wipe_alert(ctx, alert, actor=actor, action="alert.erase", reason=why, request=req.id)
            ctx.audit(actor, "request.erased", "alert", alert.id, request=req.id, reason=why)
            erased.append(label)
            continue
        if f.kind == "watchlist_entry":
            entry = ctx.session.get(WatchlistEntry, f.object_id)
            image = entry.shared_image if entry is not None else None
        else:
            image = ctx.session.get(SharedImage, f.object_id)
        if image is None:
            continue
        supplier = image.agreement.supplier_org_id
        if supplier != user.organisation_id:
            if decision is Decision.PARTLY and Reason.NOT_HELD_BY_US in reasons:
                withheld.append(f"{label} (supplied by {image.agreement.supplier_org.name}, who decides on it)")
                continue
            raise RuleViolation(f"{f.kind.replace('_', ' ')} {f.object_id} was supplied by "
                                f"{image.agreement.supplier_org.name}: only its data protection officer can erase it; "
                                "decide 'partly' with reason not_held_by_us")
        if image.deleted_at is None:
            delete_shared_image(ctx, image, actor, why)
        ctx.audit(actor, "request.erased", f.kind, f.object_id, request=req.id, reason=why, shared_image=image.id)
        erased.append(label)
    return erased, withheld


def decide(ctx: Ctx, actor: Actor, request_id: int, decision: str, reasons: list[str] | tuple[str, ...] = (),
           note: str = "") -> RightsRequest:
    """Decide and answer: for a granted erasure, erase every finding confirmed as the requester's;
    the requester's photo is deleted; the outcome letter is generated and kept sealed."""
    from openlfr.rights.letters import LetterData, render
    from openlfr.rights.search import summaries

    user = _dpo(ctx, actor, "request.decide", object_id=request_id)
    req = _own(ctx, user, request_id, "decide")
    decision_ = _choice(Decision, decision, "decision")
    reasons_: list[Reason] = []
    for r in reasons:
        reason = _choice(Reason, r, "reason")
        if reason not in reasons_:
            reasons_.append(reason)
    note = _text(note, "the decision's note", MAX_DETAILS, required=False)
    findings = _findings(ctx, req.id)
    _check_decision(req, decision_, reasons_, findings)
    confirmed = [f for f in findings if f.verdict == "requester"]
    labels = summaries(ctx, [(f.kind, f.object_id) for f in confirmed])
    shown = [labels[(f.kind, f.object_id)] for f in confirmed] if decision_ is not Decision.REFUSED else []
    withheld: list[str] = []
    erased: list[str] = []
    if RequestKind(req.kind) is RequestKind.ERASURE and decision_ in (Decision.GRANTED, Decision.PARTLY):
        erased, withheld = _erase(ctx, actor, user, req, decision_, reasons_, confirmed, labels)
        shown = erased
    now = ctx.now()
    ref = request_ref(req.id)
    photo_deleted = req.photo_blob is not None
    if req.photo_blob is not None:
        ctx.blobs.delete(req.photo_blob)  # held only for the request
        req.photo_blob = None
    req.decision, req.decision_reasons = decision_.value, [r.value for r in reasons_]
    req.decision_note_sealed = seal_text(ctx, ref, note)
    req.decided_by_id, req.decided_at, req.status = user.id, now, "decided"
    who = _requester(ctx, req)
    text = render(LetterData(
        id=req.id, organisation=user.organisation, regime=req.regime, kind=req.kind, decision=decision_.value,
        name=who["name"], contact=who["contact"], received_at=req.received_at, decided_at=now,
        reasons=req.decision_reasons, records=shown, withheld=withheld,
        searched=req.searched_at is not None or photo_deleted,
        note=note))
    req.letter_sealed = seal_text(ctx, ref, text)
    ctx.audit(actor, "request.decide", "request", req.id, decision=req.decision, reasons=req.decision_reasons,
              answered_in_time=now <= req.due_at, due_at=req.due_at, erased=len(erased), withheld=len(withheld),
              photo_deleted=photo_deleted, letter_sha256=hashlib.sha256(text.encode()).hexdigest(),
              personal={"note": note}, subject=ref)
    return req


def _requester(ctx: Ctx, req: RightsRequest) -> dict[str, str]:
    """The requester's name, contact and details (``[erased]`` once the request's key is gone)."""
    text = open_text(ctx, req.requester_sealed)
    if not text or text == ERASED:
        return {"name": ERASED, "contact": ERASED, "details": ERASED}
    return json.loads(text)


def letter(ctx: Ctx, actor: Actor, request_id: int) -> str:
    """The outcome letter (plain text) of a decided request."""
    user = _dpo(ctx, actor, "request.letter", object_id=request_id)
    req = _own(ctx, user, request_id, "read the letter of", open_only=False)
    if req.letter_sealed is None:
        raise RuleViolation(f"request {req.id} is not decided yet: its letter is written when it is decided")
    text = open_text(ctx, req.letter_sealed) or ""
    ctx.audit(actor, "request.letter", "request", req.id, letter_sha256=hashlib.sha256(text.encode()).hexdigest())
    return text


def _view(ctx: Ctx, req: RightsRequest, opened: bool) -> RequestView:
    from openlfr.rights.search import describe

    now = ctx.now()
    findings = _findings(ctx, req.id)
    labels = {f.id: describe(ctx, f.kind, f.object_id) for f in findings}
    who = _requester(ctx, req) if opened else {"name": WITHHELD, "contact": WITHHELD, "details": WITHHELD}
    note = (open_text(ctx, req.decision_note_sealed) or "") if opened else WITHHELD
    org = ctx.session.get(Organisation, req.organisation_id)
    return RequestView(
        id=req.id, kind=req.kind, organisation=org.name if org else str(req.organisation_id), regime=req.regime,
        status=req.status, received_at=req.received_at, due_at=req.due_at, days_left=days_left(req.due_at, now),
        overdue=req.decided_at is None and now > req.due_at, extended=req.extended_at is not None,
        requester_name=who["name"], contact=who["contact"], details=who["details"],
        identity_verified=req.identity_verified_at is not None, has_photo=req.photo_blob is not None,
        decision=req.decision, reasons=list(req.decision_reasons or []), decision_note=note, decided_at=req.decided_at,
        answered_in_time=None if req.decided_at is None else req.decided_at <= req.due_at, follows_id=req.follows_id,
        findings=[FindingView(id=f.id, kind=f.kind, object_id=f.object_id, score=f.score, threshold=f.threshold,
                              model_id=f.model_id, verdict=f.verdict, summary=labels[f.id][0], held=labels[f.id][1])
                  for f in findings])


def view(ctx: Ctx, actor: Actor, request_id: int) -> RequestView:
    """One request with its findings (an oversight auditor: without the requester's fields)."""
    user = _reader(ctx, actor, "request.view", request_id)
    req = ctx.get(RightsRequest, request_id, "request")
    if not ctx.oversees(user):
        ctx.require_member(user, req.organisation_id, f"view request {request_id}")
    return _view(ctx, req, opened=Role(user.role) is Role.DPO)


def queue(ctx: Ctx, actor: Actor, *, open_only: bool = False) -> list[RequestView]:
    """The requests the actor may see, soonest due first (open ones first, then decided ones,
    latest decided first)."""
    user = _reader(ctx, actor, "request.list")
    query = select(RightsRequest)
    if not ctx.oversees(user):
        query = query.where(RightsRequest.organisation_id == user.organisation_id)
    if open_only:
        query = query.where(RightsRequest.decided_at.is_(None))
    rows = list(ctx.session.execute(query).scalars())
    open_rows = sorted((r for r in rows if r.decided_at is None), key=lambda r: (r.due_at, r.id))
    done = sorted((r for r in rows if r.decided_at is not None), key=lambda r: (r.decided_at, r.id), reverse=True)
    opened = Role(user.role) is Role.DPO
    return [_view(ctx, r, opened) for r in open_rows + done]


def erase_expired(ctx: Ctx, actor: str) -> list[int]:
    """Erase the personal details of requests decided more than ``policy.request_record_retention_days``
    ago (the requester, evidence, note and letter: one key destroyed); the record's kind, dates and
    decision stay, for the public counts. Run by the retention sweep."""
    cutoff = ctx.now() - timedelta(days=ctx.policy.request_record_retention_days)
    erased: list[int] = []
    for req in ctx.session.execute(
            select(RightsRequest).where(RightsRequest.status == "decided", RightsRequest.decided_at <= cutoff)
            .order_by(RightsRequest.id)).scalars():
        destroy_key(ctx, request_ref(req.id), "request record retention over")
        if req.photo_blob is not None:
            ctx.blobs.delete(req.photo_blob)
            req.photo_blob = None
        req.status = "erased"
        ctx.audit(actor, "request.erase", "request", req.id, decided_at=req.decided_at,
                  reason="request record retention over")
        erased.append(req.id)
    return erased


def public_counts(ctx: Ctx) -> RequestCounts:
    """Counts across the installation for the public report (no personal data)."""
    now = ctx.now()
    rows = ctx.session.execute(select(RightsRequest.decided_at, RightsRequest.due_at, RightsRequest.decision)).all()
    answered = [r for r in rows if r.decided_at is not None]
    return RequestCounts(
        received=len(rows), answered=len(answered),
        answered_in_time=sum(1 for r in answered if r.decided_at <= r.due_at),
        refused=sum(1 for r in answered if r.decision == Decision.REFUSED.value),
        open_overdue=sum(1 for r in rows if r.decided_at is None and r.due_at < now))


__all__ = [
    "WITHHELD",
    "Decision",
    "FindingView",
    "Reason",
    "RequestCounts",
    "RequestKind",
    "RequestView",
    "attach_photo",
    "decide",
    "erase_expired",
    "extend",
    "finding_image",
    "letter",
    "open_request",
    "public_counts",
    "queue",
    "requester_photo",
    "review_finding",
    "search",
    "search_request",
    "verify_identity",
    "view",
]
