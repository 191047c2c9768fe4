"""Wiping one alert down to what the reports count: the one function behind erasure under a
request, the early deletion of a single alert and pseudonymisation when retention ends.

What goes: the crop and footage files, the alert's erasure key (so its sealed audit details,
reviewers' notes and any copy of the crop become unreadable for good), the pipeline's details
(track, frame, box, candidate label), reviewers' and escalation notes, the outcome's note and
officer, the names of released legal holds' proceedings, the link to the watchlist entry and the
alert's pass (:mod:`openlfr.pipeline.passes`).
What stays: the alert row's deployment, camera, hour, score and review outcome, the reviews'
decisions and the outcome's result, because the effectiveness reports count them. An alert
under an active legal hold is never wiped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import delete, select
from sqlalchemy.engine import CursorResult

from openlfr.governance.context import Ctx
from openlfr.governance.credentials import Actor
from openlfr.governance.errors import RuleViolation
from openlfr.rights.keys import alert_ref, destroy_key
from openlfr.store.models import (
    Alert, AlertDetail, AlertOutcome, AlertPass, AlertReview, Escalation, LegalHold, MediaItem,
)


@dataclass(frozen=True)
class Wiped:
    """What one wipe removed."""

    alert_id: int
    media_deleted: list[int]
    key_destroyed: bool
    details_deleted: bool


def active_hold(ctx: Ctx, alert_id: int) -> LegalHold | None:
    """The alert's legal hold in force (placed and not released), if any."""
    return ctx.session.execute(
        select(LegalHold).where(LegalHold.alert_id == alert_id, LegalHold.released_at.is_(None))
        .order_by(LegalHold.id)).scalars().first()


def refuse_if_held(ctx: Ctx, alert: Alert, what: str) -> None:
    """:class:`RuleViolation` when the alert is under a legal hold: a hold beats retention,
    deletion and erasure until it is released."""
    hold = active_hold(ctx, alert.id)
    if hold is not None:
        raise RuleViolation(f"alert {alert.id} is under legal hold {hold.id} for {hold.proceeding!r} "
                            f"(review by {hold.review_date:%Y-%m-%d}): it cannot be {what} until the hold is released")


def _hour(at: datetime) -> datetime:
    return at.replace(minute=0, second=0, microsecond=0)


def wipe_alert(ctx: Ctx, alert: Alert, *, actor: Actor | str, action: str, reason: str, what: str = "erased",
               **details: Any) -> Wiped:
    """Wipe ``alert`` (see the module docstring) in the caller's transaction and audit it as
    ``action`` by ``actor`` (a credential or a system name) with ``reason`` and ``details``.
    Refused (:class:`RuleViolation`) under a legal hold. Wiping twice is harmless."""
    refuse_if_held(ctx, alert, what)
    now = ctx.now()
    media_ids: list[int] = []
    for media in ctx.session.execute(
            select(MediaItem).where(MediaItem.alert_id == alert.id, MediaItem.deleted_at.is_(None))).scalars():
        if media.blob:
            ctx.blobs.delete(media.blob)
        media.blob, media.deleted_at = None, now
        media_ids.append(media.id)
    destroyed = destroy_key(ctx, alert_ref(alert.id), f"{action}: {reason}")
    # (a DML statement's result is a CursorResult, which Session.execute's annotation does not say)
    gone = cast(CursorResult[Any], ctx.session.execute(
        delete(AlertDetail).where(AlertDetail.alert_id == alert.id))).rowcount or 0
    # its pass (entry, zone, times: a sighting) goes with it; a later sighting opens a new pass
    ctx.session.execute(delete(AlertPass).where(AlertPass.alert_id == alert.id))
    alert.attempt_key = None  # (the worker's key names the track: it goes with the rest)
    for review in ctx.session.execute(select(AlertReview).where(AlertReview.alert_id == alert.id)).scalars():
        review.note = ""
    for esc in ctx.session.execute(select(Escalation).where(Escalation.alert_id == alert.id)).scalars():
        esc.reason, esc.resolution_note = "", ""
    for hold in ctx.session.execute(select(LegalHold).where(LegalHold.alert_id == alert.id)).scalars():
        hold.proceeding, hold.release_reason = "", ""  # released (else refused above); a proceeding may name someone
    outcome = ctx.session.get(AlertOutcome, alert.id)
    if outcome is not None:
        outcome.note, outcome.officer = "", ""
    alert.entry_id = None
    alert.at = _hour(alert.at)
    alert.pseudonymised_at = now
    if alert.deleted_at is None:
        alert.deleted_at, alert.deleted_reason = now, reason
    ctx.audit(actor, action, "alert", alert.id, deployment=alert.deployment_id, reason=reason,
              media_deleted=media_ids, key_destroyed=destroyed, **details)
    return Wiped(alert.id, media_ids, destroyed, bool(gone))


__all__ = ["Wiped", "active_hold", "refuse_if_held", "wipe_alert"]
