"""Camera leases: which host agent analyses each camera of a live deployment, fenced by an epoch.

CONTRACT STUB (issue 16): implemented by the leases helper. See the ``camera_leases`` table
(:class:`openlfr.store.models.CameraLease`).
"""

from __future__ import annotations

from openlfr.governance.context import Ctx
from openlfr.governance.errors import RuleViolation


class CameraTaken(RuleViolation):
    """Another host or worker holds this camera's lease (or took it over from this one)."""


class LeaseLost(CameraTaken):
    """This worker's lease epoch is no longer the camera's: its write is refused (and audited)."""


def fence(ctx: Ctx, camera_id: int, epoch: int | None, worker: str, action: str = "alert.record") -> None:
    """Refuse (:class:`LeaseLost`, audited as ``<action>.refused``) unless ``epoch`` is the
    camera's current lease epoch and the lease is unexpired by database time; the lease row is
    locked (shared) until the caller's transaction ends, so no claim can slip in between.
    ``epoch=None``: the caller holds no lease (a one-off search): nothing to check."""
    if epoch is None:
        return
    raise NotImplementedError
