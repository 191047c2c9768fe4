"""The kinds of batch job, each the background twin of a synchronous door.

A kind says how its parameters are read (:meth:`Kind.prepare`, outside any transaction: a
file's digest, say), which rule allows it (:meth:`Kind.check`: the *same* rule as its
synchronous door, with the actor's credential, at submission and again when it runs), which
procrastinate lock keeps two of them on one object apart, and how it runs
(:meth:`Kind.run`). A run ends by calling ``finish(ctx, outcome)`` inside the transaction
that commits its effects, so where it can be, the effect and the ``job.end`` event commit
together (a re-template, an export's audit event).

Delivery is at least once (a worker killed mid-job has its job run again), so each kind is
idempotent: a job whose end is recorded is never run again (:mod:`openlfr.jobs.runner`); a
re-template re-makes only templates not already of the model; an export rewrites the same
file; a search interrupted after storing alerts is not searched again (which would store
them twice) but ends failed, naming them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import select

from openlfr.errors import InputError, OpenLFRError
from openlfr.governance import Actor, Governance
from openlfr.governance.context import Ctx
from openlfr.store.models import Alert, AlertDetail

Finish = Callable[[Ctx, dict[str, Any]], None]

SEARCH, RETEMPLATE, EXPORT = "retrospective-search", "watchlist-retemplate", "audit-export"


class JobFailed(OpenLFRError):
    """A job that ran and failed; ``outcome`` is what it did before it stopped."""

    def __init__(self, message: str, outcome: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.outcome = outcome


@dataclass(frozen=True)
class Job:
    """One attempt at a submitted job, as a kind runs it."""

    id: int
    kind: str
    params: dict[str, Any]
    user: str  # the submitting user, for whom it acts
    attempt: int  # 1 for the first
    earlier_start: datetime | None  # when its first attempt started, if this is a later one (a re-delivery)
    worker: str


class Kind:
    """A kind of job (subclassed once per kind)."""

    name: ClassVar[str]
    summary: ClassVar[str]

    def prepare(self, params: dict[str, Any]) -> dict[str, Any]:
        """The parameters checked and made explicit (JSON-ready), before any transaction."""
        raise NotImplementedError

    def check(self, ctx: Ctx, actor: Actor, params: dict[str, Any]) -> dict[str, Any]:
        """The synchronous door's rule for ``actor``; the parameters with names resolved to ids.
        A refusal raises (and is audited by the transaction, as at that door)."""
        raise NotImplementedError

    def lock(self, params: dict[str, Any]) -> str | None:
        """procrastinate's lock: jobs with the same lock never run at the same time."""
        return None

    def run(self, gov: Governance, actor: Actor, job: Job, finish: Finish) -> dict[str, Any]:
        """Do the work as ``actor``; call ``finish`` in the last transaction; return the outcome."""
        raise NotImplementedError


def _int(params: dict[str, Any], name: str, *, optional: bool = False) -> int | None:
    value = params.get(name)
    if value is None and optional:
        return None
    try:
        if isinstance(value, bool) or value is None:
            raise ValueError
        return int(value)
    except (TypeError, ValueError):
        raise InputError(f"{name}: an id (a whole number) is needed, not {value!r}") from None


class Retemplate(Kind):
    """``openlfr deployment watchlist-retemplate``: re-make a watchlist's templates with the
    configured face model (an operator admin of its organisation)."""

    name = RETEMPLATE
    summary = "re-make a watchlist's templates with the configured face model"

    def prepare(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"watchlist": _int(params, "watchlist")}

    def check(self, ctx: Ctx, actor: Actor, params: dict[str, Any]) -> dict[str, Any]:
        from openlfr.governance.watchlists import _retemplate_target  # the synchronous door's own rule

        _retemplate_target(ctx, actor, params["watchlist"])
        return params

    def lock(self, params: dict[str, Any]) -> str | None:
        return f"watchlist:{params['watchlist']}"

    def run(self, gov: Governance, actor: Actor, job: Job, finish: Finish) -> dict[str, Any]:
        from openlfr.governance import watchlists

        watchlist = job.params["watchlist"]
        prepared = watchlists.prepare_retemplate(gov, actor, watchlist)  # the face model runs with no lock held
        with gov.transaction() as ctx:  # the templates and job.end commit together
            outcome = {"watchlist": watchlist, **watchlists.retemplate(ctx, actor, watchlist, prepared)}
            finish(ctx, outcome)
        return outcome


class Export(Kind):
    """``openlfr audit export``: write the audit chain (JSON Lines) for an outside auditor
    (an auditor), to ``path`` or ``<data dir>/exports/audit-job-<id>.jsonl`` on the machine
    that runs it."""

    name = EXPORT
    summary = "write the audit chain (JSON Lines) for an outside auditor"

    def prepare(self, params: dict[str, Any]) -> dict[str, Any]:
        path = params.get("path")
        if path in (None, ""):
            return {"path": None}
        target = Path(str(path)).expanduser().absolute()
        _check_target(target)
        return {"path": str(target)}

    def check(self, ctx: Ctx, actor: Actor, params: dict[str, Any]) -> dict[str, Any]:
        from openlfr.governance.audit_log import READERS

        ctx.require(actor, READERS, "audit.export", "audit", "-")  # GET /api/audit/export's rule
        return params

    def run(self, gov: Governance, actor: Actor, job: Job, finish: Finish) -> dict[str, Any]:
        import socket

        from openlfr.audit import export_chain
        from openlfr.store import data_dir

        if job.params.get("path"):
            target = Path(job.params["path"])
        else:  # one name per job: a second attempt rewrites the same file
            folder = data_dir() / "exports"
            folder.mkdir(mode=0o700, exist_ok=True)
            target = folder / f"audit-job-{job.id}.jsonl"
        _check_target(target)  # (again: the worker's machine may differ from the submitter's)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            with gov.transaction() as ctx:
                result = export_chain(ctx.session, tmp, now=ctx.now())
                os.chmod(tmp, 0o600)  # the whole log: readable by its owner only
                os.replace(tmp, target)  # never a half-written file under the final name
                size = target.stat().st_size
                ctx.audit(actor, "audit.export", "audit", "-", bytes=size, path=str(target), job=job.id)
                outcome = {"path": str(target), "host": socket.gethostname(), "bytes": size, "events": result.count,
                           "head_seq": result.head_seq, "head_hash": result.head_hash, "chain_ok": result.ok,
                           "message": result.message()}
                finish(ctx, outcome)
        finally:
            tmp.unlink(missing_ok=True)
        return outcome


def _check_target(target: Path) -> None:
    """Refuse to write an export over anything but an earlier export: a job's file is written
    by a worker, perhaps on another machine, and must never replace the store's own files."""
    import json

    from openlfr.audit.export import FORMAT

    if target.is_dir():
        raise InputError(f"{target} is a folder: give the file to write")
    if target.exists():
        try:
            with target.open(encoding="utf-8") as fh:
                ours = json.loads(fh.readline()).get("format") == FORMAT
        except (OSError, ValueError, AttributeError):
            ours = False
        if not ours:
            raise InputError(f"{target} exists and is not an audit export ({FORMAT}): it is not overwritten")


class Search(Kind):
    """``openlfr scan``: search a recording in a started retrospective deployment (an operator
    admin or reviewer of its organisation); its alerts are stored as the scan's are."""

    name = SEARCH
    summary = "search a recording in a started retrospective deployment"

    def prepare(self, params: dict[str, Any]) -> dict[str, Any]:
        from openlfr.face.registry import file_sha256

        path = Path(str(params.get("path") or "")).expanduser().absolute()
        if not params.get("path") or not path.is_file():
            raise InputError(f"{params.get('path')}: no such video file")
        fps = params.get("fps")
        if fps is not None:
            try:
                fps = float(fps)
            except (TypeError, ValueError):
                raise InputError(f"fps: a number is needed, not {fps!r}") from None
            if not 0 < fps <= 60:
                raise InputError("fps: must be more than 0 and at most 60")
        camera = params.get("camera")
        return {"deployment": _int(params, "deployment", optional=True), "camera": camera,
                "path": str(path), "fps": fps, "sha256": file_sha256(path), "size": path.stat().st_size}

    def check(self, ctx: Ctx, actor: Actor, params: dict[str, Any]) -> dict[str, Any]:
        from openlfr.governance.searches import _check  # start_search's own rule, without starting one

        _, dep, cam = _check(ctx, actor, "search.start", params["deployment"], params["camera"])
        return {**params, "deployment": dep.id, "camera": cam.id}

    def lock(self, params: dict[str, Any]) -> str | None:
        return f"search:{params['deployment']}:{params['camera']}"

    def run(self, gov: Governance, actor: Actor, job: Job, finish: Finish) -> dict[str, Any]:
        from openlfr.governance import RuleViolation
        from openlfr.face.registry import file_sha256
        from openlfr.scan import SearchResult, SearchStopped, search_recording

        p = job.params
        path = Path(p["path"])
        if not path.is_file() or file_sha256(path) != p["sha256"]:
            raise RuleViolation(f"{path} is not the recording submitted (SHA-256 {p['sha256'][:16]}...): "
                                "it was moved or changed since")
        if job.earlier_start is not None:
            stored = self._stored_since(gov, job)
            if stored:
                raise JobFailed(f"an earlier attempt of this search was interrupted after storing alert(s) "
                                f"{', '.join(map(str, stored))}: not searched again, so that no alert is stored "
                                "twice; submit it again to search the whole recording",
                                {"alerts": stored, "stopped": "interrupted"})

        def summary(result: SearchResult) -> dict[str, Any]:
            return {"deployment": result.grant.deployment_id, "camera": result.grant.camera_id,
                    "sha256": result.grant.sha256, "frames": result.frames, "frames_analysed": result.analysed,
                    "tracks": result.tracks, "people_passes": result.passes,
                    "alerts": [a.alert_id for a in result.alerts], "stopped": result.stopped}

        try:
            result = search_recording(gov, actor, p["deployment"], path, p["camera"], fps=p["fps"])
        except SearchStopped as err:
            raise JobFailed(str(err), summary(err.result)) from None
        outcome = summary(result)
        with gov.transaction() as ctx:
            finish(ctx, outcome)
        return outcome

    @staticmethod
    def _stored_since(gov: Governance, job: Job) -> list[int]:
        """Alerts this searcher's pipeline stored on the job's camera since the job's first attempt
        began (the lock keeps other searches of that camera apart)."""
        p = job.params
        with gov.reading() as ctx:
            rows = ctx.session.execute(
                select(Alert.id).join(AlertDetail, AlertDetail.alert_id == Alert.id)
                .where(Alert.deployment_id == p["deployment"], Alert.camera_id == p["camera"],
                       AlertDetail.worker == f"search:{job.user}", Alert.at >= job.earlier_start)
                .order_by(Alert.id))
            return [int(r[0]) for r in rows]


KINDS: dict[str, Kind] = {k.name: k for k in (Search(), Retemplate(), Export())}


def kind_of(name: str) -> Kind:
    """The kind called ``name``, or a clear :class:`InputError`."""
    try:
        return KINDS[name]
    except KeyError:
        raise InputError(f"no job kind {name!r}: one of {', '.join(KINDS)}") from None
