"""Retrospective searches: recorded footage matched inside an authorised deployment.

A search of a recording (``openlfr scan``, or a Python caller) is allowed only inside a
deployment of kind ``retrospective`` that has been requested, authorised by a police officer
and started, and only while its window is open. The searcher is proven by a credential and
must be an operator admin or a reviewer of the deployment's own organisation. The recording
is named in the audit log by its SHA-256 (``search.start``), so what was searched, by whom,
under which authorisation, can be shown later; every refusal is audited too
(``search.start.refused``). The matching itself runs through the live pipeline
(:class:`~openlfr.pipeline.camera.CameraPipeline`), so alerts are stored, encrypted,
retained and reviewed exactly like live alerts. There is no other way to match footage
against a watchlist.
"""

from __future__ import annotations

from dataclasses import dataclass

from openlfr.errors import NotFoundError
from openlfr.governance.context import Ctx
from openlfr.governance.credentials import Actor
from openlfr.governance.errors import RuleViolation
from openlfr.governance.schemas import DeploymentKind, Role
from openlfr.store.models import Camera, Deployment, User

SEARCHERS = {Role.OPERATOR_ADMIN, Role.REVIEWER}


@dataclass(frozen=True)
class SearchGrant:
    """What a search may run on: one camera of one started retrospective deployment."""

    deployment_id: int
    camera_id: int
    camera_name: str
    user: str  # the verified searcher's name
    sha256: str

    @property
    def worker(self) -> str:
        """The pipeline's name in the audit log."""
        return f"search:{self.user}"


def _camera(dep: Deployment, camera: int | str | None) -> Camera:
    cams = list(dep.cameras)
    if camera is None:
        if len(cams) != 1:
            names = ", ".join(repr(c.name) for c in cams)
            raise RuleViolation(f"deployment {dep.id} has {len(cams)} cameras ({names}): name the one whose "
                                f"footage this is (--camera NAME or ID)")
        return cams[0]
    for cam in cams:
        if (isinstance(camera, int) and cam.id == camera) or (isinstance(camera, str) and cam.name == camera):
            return cam
    for cam in cams:  # the command line's form: a name, or else an id
        if isinstance(camera, str) and camera.strip().isdigit() and cam.id == int(camera):
            return cam
    raise NotFoundError(f"camera {camera!r} is not part of deployment {dep.id}")


def _check(ctx: Ctx, actor: Actor, action: str, deployment_id: int | None,
           camera: int | str | None) -> tuple[User, Deployment, Camera]:
    user = ctx.require(actor, SEARCHERS, action, "deployment", deployment_id if deployment_id is not None else "-")
    if deployment_id is None:
        raise RuleViolation("searching recorded footage needs a started retrospective deployment (--deployment ID); "
                            "there is no search outside one")
    dep = ctx.get(Deployment, deployment_id, "deployment")
    ctx.require_member(user, dep.organisation_id, f"search footage in deployment {deployment_id}")
    if dep.kind != DeploymentKind.RETROSPECTIVE:
        raise RuleViolation(f"deployment {deployment_id} is a {dep.kind} deployment: recorded footage may be searched "
                            f"only in a retrospective one")
    if dep.status != "live":
        raise RuleViolation(f"deployment {deployment_id} is {dep.status}, not started: no search")
    now = ctx.now()
    if not dep.start <= now < dep.end:
        raise RuleViolation(f"deployment {deployment_id} may search only from {dep.start:%Y-%m-%d %H:%M} "
                            f"to {dep.end:%Y-%m-%d %H:%M} UTC")
    if dep.snapshot_blob is None:
        raise RuleViolation(f"deployment {deployment_id}'s watchlist snapshot has been deleted: no search")
    return user, dep, _camera(dep, camera)


def start_search(ctx: Ctx, actor: Actor, deployment_id: int | None, camera: int | str | None = None, *,
                 sha256: str, source: str = "", size: int | None = None) -> SearchGrant:
    """Allow (and audit as ``search.start``) a search of the recording with digest ``sha256``
    in deployment ``deployment_id``, on ``camera`` (its id or name; ``None``: the deployment's
    only camera). Refused unless the actor is an operator admin or reviewer of the deployment's
    organisation and the deployment is a started retrospective one inside its window."""
    user, dep, cam = _check(ctx, actor, "search.start", deployment_id, camera)
    if len(sha256) != 64 or any(ch not in "0123456789abcdef" for ch in sha256):
        raise RuleViolation("a search must name its recording by SHA-256 (64 hex digits)")
    ctx.audit(actor, "search.start", "deployment", dep.id, camera=cam.id, sha256=sha256, source=source, size=size)
    return SearchGrant(dep.id, cam.id, cam.name, user.name, sha256)


def check_search(ctx: Ctx, actor: Actor, grant: SearchGrant) -> None:
    """Re-check a running search (the credential still live, the rule still met); refusals are audited."""
    _check(ctx, actor, "search.continue", grant.deployment_id, grant.camera_id)


def end_search(ctx: Ctx, grant: SearchGrant, *, frames: int, analysed: int, tracks: int, alerts: list[int],
               stopped: str = "") -> None:
    """Audit the end of a search (``search.end``, by its worker) with what it did; ``stopped``:
    why it ended before the recording did."""
    ctx.audit(grant.worker, "search.end", "deployment", grant.deployment_id, camera=grant.camera_id,
              sha256=grant.sha256, frames=frames, frames_analysed=analysed, tracks=tracks, alerts=alerts,
              stopped=stopped)


__all__ = ["SEARCHERS", "SearchGrant", "check_search", "end_search", "start_search"]
