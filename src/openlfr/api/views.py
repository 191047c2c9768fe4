"""Read models shared by the JSON routes and the console pages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import func, select

from openlfr.api import defs
from openlfr.errors import NotFoundError
from openlfr.evaluation import deployment_report
from openlfr.governance import Ctx, outcomes, reviews
from openlfr.governance.cameras import current_signage
from openlfr.governance.central import ForceView
from openlfr.governance.deployment_view import basis_words, deployment_out
from openlfr.governance.organisations import list_organisations
from openlfr.governance.reviews import reviewable
from openlfr.rights.keys import open_text
from openlfr.store.models import Alert, Camera, Deployment, EnrolmentToken, Organisation, User, WatchlistEntry

# every decided deployment is public, including those refused or cancelled; a request not yet
# decided is not (it may never happen)
PUBLIC_STATUSES = ("authorised", "live", "ended", "cancelled", "refused")


def alert_out(ctx: Ctx, alert: Alert, viewer: User) -> defs.AlertOut:
    """An alert as the reviewer ``viewer`` may see it (blind to the others' decisions until they
    have decided: :func:`openlfr.governance.reviews.blind_view`); the notes and the officer are
    opened from under the alert's erasure key (``[erased]`` once it was erased)."""
    entry = ctx.session.get(WatchlistEntry, alert.entry_id) if alert.entry_id is not None else None
    camera = ctx.session.get(Camera, alert.camera_id)
    state, confirmed, rows = reviews.blind_view(alert, reviews.reviews_of(ctx, alert.id), viewer.id)
    done = outcomes.outcome_of(ctx.session, alert.id)
    recorder = ctx.session.get(User, done.recorded_by_id) if done is not None else None
    return defs.AlertOut(
        id=alert.id, deployment_id=alert.deployment_id, camera_id=alert.camera_id,
        camera=camera.name if camera else "?", at=alert.at, score=alert.score,
        label=entry.label if entry else None, reason=entry.reason if entry else None,
        status=state, confirmations=confirmed,
        reviews=[defs.ReviewOut(reviewer=name, decision=r.decision, note=open_text(ctx, r.note) or "", at=r.at)
                 for r, name in rows],
        outcome_due=outcomes.outcome_due(ctx.session, alert),
        outcome=defs.OutcomeOut(result=done.result, note=open_text(ctx, done.note) or "",
                                officer=open_text(ctx, done.officer) or "",
                                recorded_by=recorder.name if recorder else "?", recorded_at=done.recorded_at)
        if done is not None else None,
    )


def reviewable_ids(ctx: Ctx, user: User) -> set[int]:
    """:func:`reviewable` as a set."""
    return set(ctx.session.execute(reviewable(user)).scalars())


def list_alerts(ctx: Ctx, user: User, limit: int = 200) -> list[defs.AlertOut]:
    """Newest alerts still held that ``user`` may review, newest first."""
    return [alert_out(ctx, a, user) for a in reviews.reviewable_alerts(ctx, user, limit)]


def force_out(view: ForceView, ctx: Ctx | None = None) -> defs.ForceOut:
    """The force's central view as JSON (no image bytes or templates)."""
    images = [defs.ImageHistoryOut(status=h.image.status, **h.image.__dict__,
                                   uses=[defs.UseOut(**u.__dict__) for u in h.uses]) for h in view.images]
    alerts = [defs.ForceAlertOut(
        id=a.id, deployment_id=a.deployment_id, camera_id=a.camera_id, at=a.at, score=a.score,
        outcome={"true": "verified", "false": "false alert"}.get(a.review_outcome or "", "not settled"),
        deleted_at=a.deleted_at) for a in view.alerts]
    return defs.ForceOut(force=view.force, agreements=[defs.AgreementOut.model_validate(a) for a in view.agreements],
                         images=images, deployments=[deployment_out(d, ctx) for d in view.deployments], alerts=alerts)


def organisations(ctx: Ctx) -> list[defs.OrganisationOut]:
    """Every registered party, as the public may see it: name, kind, host, registered, first admin enrolled."""
    enrolled = dict(ctx.session.execute(
        select(EnrolmentToken.organisation_id, func.min(EnrolmentToken.used_at))
        .where(EnrolmentToken.used_at.is_not(None)).group_by(EnrolmentToken.organisation_id)).all())
    return [defs.OrganisationOut(name=o.name, kind=o.kind, host=o.is_host, created_at=o.created_at,
                                 enrolled_at=enrolled.get(o.id)) for o in list_organisations(ctx)]


def public_report(ctx: Ctx, deployment_id: int) -> deployment_report.DeploymentEffectiveness:
    """A public deployment's effectiveness report (counts and rates only)."""
    dep = ctx.session.get(Deployment, deployment_id)
    if dep is None or dep.status not in PUBLIC_STATUSES:
        raise NotFoundError(f"no public deployment {deployment_id}")
    return deployment_report.for_deployment(ctx.session, deployment_id)


def _forces(ctx: Ctx, dep: Deployment) -> list[str]:
    """The names of the police forces whose images the deployment uses."""
    from openlfr.governance.deployments import forces_of

    ids = forces_of(ctx, dep)
    return sorted(ctx.session.execute(select(Organisation.name).where(Organisation.id.in_(ids))).scalars())


def _retro_review(dep: Deployment) -> str | None:
    if not dep.urgent:
        return None
    return dep.retro_review_outcome or ("due" if dep.retro_review_due is not None else None)


def public_deployment(ctx: Ctx, dep: Deployment) -> defs.PublicDeployment:
    """One decided deployment as the public may see it: counts, grounds and categories; never
    labels, reasons, subject references, image hashes or images."""
    report = deployment_report.for_deployment(ctx.session, dep.id)
    # the notice checked for this deployment; one of the camera alone for deployments started
    # before checks were per deployment
    signs = [s.text for c in dep.cameras
             if (s := current_signage(ctx, c.id, dep.start.date(), deployment_id=dep.id)
                 or current_signage(ctx, c.id, dep.start.date())) is not None]
    frozen = dep.composition or {}
    return defs.PublicDeployment(
        id=dep.id, status=dep.status, purpose=dep.purpose, cameras=[c.name for c in dep.cameras],
        locations=[c.location for c in dep.cameras], start=dep.start, end=dep.end, threshold=dep.threshold,
        threshold_source="calibrated" if dep.target_false_alert_rate else "set directly", face_model=dep.model_id,
        target_false_alert_rate=report.target_false_alert_rate, predicted_fnir=report.predicted_fnir,
        watchlist_size=dep.snapshot_size, people_passes=report.people_passes,
        faces_searched=report.faces_searched, alerts=report.alerts,
        verified_alerts=report.verified_true, false_alerts=report.verified_false,
        signage=sorted(set(signs)), report_url=f"/transparency/deployments/{dep.id}/report",
        forces=_forces(ctx, dep), legal_basis=dep.legal_basis, legal_basis_words=basis_words(dep.legal_basis),
        dpia_ref=dep.dpia_ref, dpia_date=dep.dpia_date, eia_ref=dep.eia_ref, eia_date=dep.eia_date,
        urgent=dep.urgent, retro_review=_retro_review(dep),
        watchlist_categories=[defs.PublicCategory(category=c["category"], words=c["words"],
                                                  seriousness=c["seriousness"], entries=c["entries"])
                              for c in frozen.get("categories", [])],
        outcomes=report.outcomes,
        decided_at=dep.authorised_at if dep.status in ("authorised", "live", "ended") else dep.ended_at)


def transparency(ctx: Ctx, complaints: str) -> defs.TransparencyOut:
    """What the public may know: where, when, why, on what grounds, how many, what happened
    next, who the parties are and the latest signed audit checkpoint; never images, templates,
    labels, reasons or subject references."""
    from openlfr.audit import checkpoints

    deps = ctx.session.execute(
        select(Deployment).where(Deployment.status.in_(PUBLIC_STATUSES)).order_by(Deployment.start.desc())).scalars()
    latest = checkpoints.latest(ctx.session)
    return defs.TransparencyOut(
        how_to_complain=complaints, deployments=[public_deployment(ctx, dep) for dep in deps],
        organisations=organisations(ctx),
        latest_checkpoint=defs.CheckpointOut(**latest.as_dict()) if latest is not None else None,
        requests=public_request_counts(ctx))


def public_request_counts(ctx: Ctx) -> defs.PublicRequestCounts:
    """People's requests across the installation, as the public report counts them (no personal data)."""
    from dataclasses import asdict

    from openlfr.rights.requests import public_counts

    return defs.PublicRequestCounts(**asdict(public_counts(ctx)))


# --- the reviewer's alert queue -----------------------------------------------------------
#: the queue's state filter: only what is settled in the store, never the other reviewers'
#: undisclosed decisions (reviewers decide blind: :func:`openlfr.governance.reviews.blind_view`)
QUEUE_STATES = {"open": "awaiting review", "true": "verified: the listed person",
                "false": "verified: not the listed person (false alert)", "unsure": "unsure",
                "expired": "expired (past its retention time)"}


@dataclass(frozen=True)
class QueueFilter:
    """The queue's filters (each ``None``: any)."""

    state: str | None = None
    camera_id: int | None = None
    deployment_id: int | None = None
    since: date | None = None  # alerts on or after this day (UTC)
    until: date | None = None  # alerts on or before this day (UTC)


@dataclass(frozen=True)
class QueueRow:
    """One alert of the queue as its viewer may see it, with its state in words."""

    alert: defs.AlertOut
    required: int  # confirmations by different reviewers before it counts as verified
    state: str  # "pending" | "confirmed_once" | "escalated" | "true" | "false" | "unsure" | "expired"
    state_words: str


def queue_state(alert: Alert, out: defs.AlertOut, required: int, now: datetime) -> tuple[str, str]:
    """(state, words) of an alert for its viewer: verified true/false, unsure, expired, or
    "N of M confirmations" as the viewer may see them."""
    if alert.retain_until <= now or alert.deleted_at is not None:
        return "expired", "expired (past its retention time)"
    if alert.review_outcome in ("true", "false", "unsure"):
        return alert.review_outcome, {"true": "verified true", "false": "verified false",
                                      "unsure": "unsure"}[alert.review_outcome]
    words = f"{out.confirmations} of {required} confirmations"
    prefix = {"pending": "pending · ", "escalated": "escalated · "}.get(out.status, "")
    return out.status, prefix + words


def alert_queue(ctx: Ctx, user: User, flt: QueueFilter, offset: int, limit: int) -> tuple[list[QueueRow], int]:
    """One page of the alerts still held that ``user`` may review (newest first), and how many
    match ``flt`` in all."""
    now = ctx.now()
    q = select(Alert).where(Alert.deleted_at.is_(None), Alert.deployment_id.in_(reviewable(user)))
    if flt.state == "open":
        q = q.where(Alert.review_outcome.is_(None), Alert.retain_until > now)
    elif flt.state == "expired":
        q = q.where(Alert.retain_until <= now)
    elif flt.state is not None:
        q = q.where(Alert.review_outcome == flt.state, Alert.retain_until > now)
    if flt.camera_id is not None:
        q = q.where(Alert.camera_id == flt.camera_id)
    if flt.deployment_id is not None:
        q = q.where(Alert.deployment_id == flt.deployment_id)
    if flt.since is not None:
        q = q.where(Alert.at >= datetime.combine(flt.since, time(), UTC))
    if flt.until is not None:
        q = q.where(Alert.at < datetime.combine(flt.until + timedelta(days=1), time(), UTC))
    total = ctx.session.execute(select(func.count()).select_from(q.subquery())).scalar_one()
    rows = ctx.session.execute(q.order_by(Alert.id.desc()).offset(offset).limit(limit)).scalars().all()
    return [queue_row(ctx, a, user) for a in rows], total


def queue_row(ctx: Ctx, alert: Alert, user: User) -> QueueRow:
    """One alert as a queue row for ``user``."""
    out = alert_out(ctx, alert, user)
    dep = ctx.session.get(Deployment, alert.deployment_id)
    required = dep.confirmations_required if dep is not None else 2
    state, words = queue_state(alert, out, required, ctx.now())
    return QueueRow(alert=out, required=required, state=state, state_words=words)


# --- one watchlist with its entries ---------------------------------------------------------
@dataclass(frozen=True)
class EntryRow:
    """One entry of a watchlist as its operator admin sees it (pseudonymous subject reference)."""

    id: int
    shared_image_id: int
    label: str
    reason: str
    subject_ref: str
    category: str
    under_18: bool
    review_date: date
    added_at: datetime
    removed_at: datetime | None
    image_live: bool


def watchlist_entries(ctx: Ctx, actor: object, watchlist_id: int) -> tuple[object, list[EntryRow]]:
    """A watchlist the actor's organisation holds (:func:`openlfr.governance.watchlists.list_watchlists`
    decides which) and every entry it ever had, current ones first."""
    from openlfr.governance.watchlists import list_watchlists

    found = next((w for w in list_watchlists(ctx, actor) if w.id == watchlist_id), None)  # type: ignore[arg-type]
    if found is None:
        raise NotFoundError(f"no watchlist {watchlist_id} of your organisation")
    rows = ctx.session.execute(select(WatchlistEntry).where(WatchlistEntry.watchlist_id == watchlist_id)
                               .order_by(WatchlistEntry.removed_at.is_not(None), WatchlistEntry.id)).scalars()
    return found, [EntryRow(id=e.id, shared_image_id=e.shared_image_id, label=e.label, reason=e.reason,
                            subject_ref=e.shared_image.subject_ref, category=e.shared_image.category,
                            under_18=e.under_18, review_date=e.review_date, added_at=e.added_at,
                            removed_at=e.removed_at, image_live=e.shared_image.deleted_at is None) for e in rows]


def shared_with(ctx: Ctx, organisation_id: int | None) -> list:
    """The live images shared with an operator organisation under its active agreements (what
    its admins may put on a watchlist)."""
    from openlfr.store.models import Agreement, SharedImage

    return list(ctx.session.execute(
        select(SharedImage).join(Agreement, Agreement.id == SharedImage.agreement_id)
        .where(Agreement.operator_org_id == organisation_id, Agreement.status == "active",
               SharedImage.deleted_at.is_(None))
        .order_by(SharedImage.id)).scalars().all())
