"""One alert per pass: sightings of one person on the watchlist in one zone of a deployment, with
no gap longer than the re-alert window between them, are one pass, and a pass raises one alert.
A person is one entry, or several with the same subject reference under one agreement (two
images of one suspect): the pass row is keyed by the entry that stands for them all
(:func:`openlfr.governance.deployments.person_keys`).

A zone is a group of neighbouring cameras (``Camera.zone``); a camera without one is a zone of
its own. The pass row (:class:`~openlfr.store.models.AlertPass`, one per deployment, zone and
entry) is created if missing and locked inside the alert transaction, so two cameras (on two
hosts) seeing the same person at once serialise on it: the first opens the pass and alerts, the
second finds the pass open and only extends it. A worker retrying an attempt whose commit
outcome it does not know finds the alert it made under its own ``attempt_key``
(:func:`committed`), so a retry never stores a second alert.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from openlfr.governance.context import Ctx
from openlfr.store.inserts import locked_row
from openlfr.store.models import Alert, AlertPass

def zone_key(zone: str | None, camera_id: int) -> str:
    """The zone a camera's sightings are grouped by: its zone (stripped), or ``camera:<id>``
    when it has none (by default a camera is its own zone)."""
    return (zone or "").strip() or f"camera:{camera_id}"


def committed(ctx: Ctx, attempt_key: str) -> Alert | None:
    """The alert already stored under ``attempt_key`` (an earlier try of this attempt did
    commit), or ``None``."""
    if not attempt_key:
        return None
    return ctx.session.execute(select(Alert).where(Alert.attempt_key == attempt_key)
                               .execution_options(populate_existing=True)).scalar_one_or_none()


def join_or_open(ctx: Ctx, deployment_id: int, zone: str, entry_id: int, at: datetime,
                 window_s: float) -> AlertPass | None:
    """Record a sighting of ``entry_id`` (the entry standing for the person) in ``zone`` at ``at``
    under the pass row's lock.

    ``None``: the sighting is less than ``window_s`` seconds from the pass (before or after it:
    cameras' frames arrive slightly out of order), which it extends; the pass has its alert.
    Otherwise the pass the new alert belongs to: the row, restarted at ``at``; or, for a late
    frame of an earlier pass (more than the window before the current one), an unsaved pass
    record (only the newest pass per zone and entry is kept, and it is left as it is).
    """
    # (concurrent first sightings must not both insert)
    row = locked_row(ctx.session, AlertPass, {"deployment_id": deployment_id, "zone": zone, "entry_id": entry_id,
                                              "alert_id": None, "first_seen": at, "last_seen": at},
                     ["deployment_id", "zone", "entry_id"])
    if row.alert_id is None:  # just made (or its alert was never attached): a new pass
        row.first_seen = row.last_seen = at
        return row
    if row.first_seen <= at <= row.last_seen:
        gap = 0.0
    else:
        gap = min(abs((at - row.first_seen).total_seconds()), abs((at - row.last_seen).total_seconds()))
    if gap < window_s:  # the same pass: extend it, no new alert
        row.first_seen, row.last_seen = min(row.first_seen, at), max(row.last_seen, at)
        return None
    if at < row.first_seen:  # a late frame of an earlier pass: alert, but keep the current pass
        return AlertPass(deployment_id=deployment_id, zone=zone, entry_id=entry_id, first_seen=at, last_seen=at)
    row.first_seen = row.last_seen = at
    row.alert_id = None
    return row


__all__ = ["committed", "join_or_open", "zone_key"]
