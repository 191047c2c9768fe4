"""One unit of work for the services, and the :class:`Governance` object that opens them.

Every service function takes a :class:`Ctx`: a database session inside one transaction,
the blob store tied to that transaction, the policy, a clock and (where images are
turned into templates) the injected template function. :meth:`Governance.transaction`
commits everything or nothing; a refused action is rolled back and then recorded on its
own as an ``<action>.refused`` audit event, so refusals leave a trace but no partial writes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from sqlalchemy import Engine, Select
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from openlfr import audit
from openlfr.audit import checkpoints
from openlfr.config import Policy, get_settings
from openlfr.errors import NotFoundError, OpenLFRError
from openlfr.governance.credentials import Actor, clean_name, live_token
from openlfr.governance.errors import PermissionDenied
from openlfr.governance.schemas import OrgKind, Role
from openlfr.store import BlobTransaction, make_engine
from openlfr.store import session_factory, upgrade
from openlfr.store.db_blobs import open_blob_store
from openlfr.store.engine import read_only, scrub_wal
from openlfr.store.models import Base, User

# image bytes -> (unit template, quality 0..1, id of the face model that made it)
TemplateFn = Callable[[bytes], tuple[np.ndarray, float, str]]
Clock = Callable[[], datetime]
T = TypeVar("T", bound=Base)
#: Session.info flag set by an erasure (:func:`openlfr.rights.keys.destroy_key`): after the
#: commit, SQLite's write-ahead log is folded in and emptied, so no old page outlives it there
SCRUB_AFTER_COMMIT = "openlfr.scrub_after_commit"
R = TypeVar("R")
log = logging.getLogger(__name__)


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


@dataclass
class Ctx:
    """What a service needs for one transaction."""

    session: Session
    blobs: BlobTransaction
    policy: Policy
    clock: Clock = utc_now
    template_fn: TemplateFn | None = None
    # Set by :meth:`require`, so a refusal can be audited after the rollback.
    attempt: tuple[str, str, str, str] | None = field(default=None)
    # token -> user id, for the tokens checked in this transaction
    _verified: dict[str, int] = field(default_factory=dict, repr=False)
    # the installation's checkpoint signing key (read or made only when a checkpoint is signed)
    signer: checkpoints.Signer | None = field(default=None, repr=False)
    # a context from Governance.reading(): its transaction is discarded, so it must not audit
    read_only: bool = False

    def now(self) -> datetime:
        """The current time from the injected clock."""
        return self.clock()

    def audit(self, actor: Actor | str, action: str, object_type: str, object_id: Any, *,
              personal: dict[str, Any] | None = None, subject: str | None = None, **details: Any) -> None:
        """Append an audit event in this transaction (``actor``: a credential, or a system name).

        ``personal`` fields are sealed under the erasure key ``subject`` (``alert:<id>``,
        ``request:<id>``; see :mod:`openlfr.rights.keys`) and stored as ``details["personal"]``:
        the chain hashes the ciphertext, so erasing the subject leaves the chain verifiable."""
        if self.read_only:  # the event would be discarded with the read: a view must be audited in a transaction
            raise RuntimeError(f"{action} audited in a read-only context: use Governance.transaction()")
        if personal:
            if subject is None:
                raise ValueError("personal audit details need the subject whose erasure key seals them")
            from openlfr.rights.keys import seal_fields

            details["personal"] = seal_fields(self, subject, personal)
        audit.append(self.session, actor=self.name_of(actor), action=action, object_type=object_type,
                     object_id=str(object_id), details=details, at=self.now())

    def checkpoint(self, reason: str) -> None:
        """Sign the audit chain's head as it stands in this transaction (a deployment's start or
        end, say); committed with the transaction, so it never vouches for events rolled back."""
        store = self.blobs.store
        signer = self.signer or checkpoints.Signer(store.secret(checkpoints.KEY_FILE_NAME), store.keyring)
        checkpoints.sign_head(self.session, signer, at=self.now(), reason=reason)

    def user_of(self, actor: Actor) -> User:
        """The active user ``actor``'s token belongs to, or :class:`PermissionDenied`."""
        if not isinstance(actor, Actor):
            raise PermissionDenied("this action needs a credential (log in, or give an API token); "
                                   "a user name alone is not accepted")
        uid = self._verified.get(actor.token)
        user = self.session.get(User, uid) if uid is not None else None
        if user is None or not user.active:
            found = live_token(self.session, actor.token, self.now())
            if found is None:
                raise PermissionDenied("the credential is not valid: expired, revoked or unknown (log in again)")
            user = found[1]
            self._verified[actor.token] = user.id
        return user

    def name_of(self, actor: Actor | str) -> str:
        """The name recorded for ``actor``: the verified user's, or a system actor's own."""
        return self.user_of(actor).name if isinstance(actor, Actor) else actor

    def get(self, model: type[T], object_id: int | None, what: str) -> T:
        """The row with ``object_id`` or a clear :class:`NotFoundError` (also when the id is None,
        as a nullable foreign key may be)."""
        row = self.session.get(model, object_id) if object_id is not None else None
        if row is None:
            raise NotFoundError(f"{what} {object_id} does not exist")
        return row

    def require(self, actor: Actor, roles: set[Role] | None, action: str, object_type: str = "", object_id: Any = "",
                *, org: int | None = None, kinds: set[OrgKind] | None = None) -> User:
        """The acting user, proven by ``actor``'s credential and checked to hold one of ``roles``
        (``None``: any role), to belong to organisation ``org`` and to an organisation of one of
        ``kinds`` (when given). A refusal is audited; an unverified caller is recorded as
        ``unverified:<the name it claimed>``, never as the user it named."""
        claimed = actor.name if isinstance(actor, Actor) else str(actor)
        self.attempt = (f"unverified:{clean_name(claimed)}", action, object_type, str(object_id))
        user = self.user_of(actor)
        self.attempt = (user.name, action, object_type, str(object_id))
        if roles is not None and Role(user.role) not in roles:
            allowed = ", ".join(sorted(r.value for r in roles))
            raise PermissionDenied(f"{action} needs role {allowed}; {user.name} is {user.role}")
        if kinds is not None and OrgKind(user.org.kind) not in kinds:
            allowed = " or ".join(sorted(k.value.replace("_", " ") for k in kinds))
            raise PermissionDenied(f"{action} needs a user of a {allowed}; {user.name} is of {user.organisation} "
                                   f"({user.org.kind.replace('_', ' ')})")
        if org is not None:
            self.require_member(user, org, action)
        return user

    def visible(self, actor: Actor, action: str, query: Select[Any], column: Any,
                roles: set[Role] | None = None) -> Select[Any]:
        """``query`` narrowed to rows whose ``column`` is the actor's organisation (an oversight
        body's auditors see every organisation's)."""
        me = self.require(actor, roles, action)
        return query if self.oversees(me) else query.where(column == me.organisation_id)

    def oversees(self, user: User) -> bool:
        """Whether ``user`` is an auditor of an oversight body (who may read every party's records)."""
        return Role(user.role) is Role.AUDITOR and OrgKind(user.org.kind) is OrgKind.OVERSIGHT_BODY

    def require_member(self, user: User, org_id: int | None, action: str) -> None:
        """Refuse unless ``user`` belongs to organisation ``org_id``."""
        if org_id is None or user.organisation_id != org_id:
            from openlfr.store.models import Organisation

            other = self.session.get(Organisation, org_id) if org_id is not None else None
            raise PermissionDenied(f"{user.name} of {user.organisation} cannot {action} for "
                                   f"{other.name if other else 'another organisation'}")


def transient(err: DBAPIError) -> bool:
    """Whether a database error means "busy, try again" rather than a real fault."""
    if getattr(err, "connection_invalidated", False):
        return True
    code = getattr(err.orig, "pgcode", None) or getattr(err.orig, "sqlstate", None)
    if code in ("40001", "40P01", "55P03"):  # serialisation failure, deadlock, lock not available
        return True
    text = str(err.orig).lower()
    return isinstance(err, OperationalError) and ("locked" in text or "busy" in text)


class Governance:
    """Opens transactions on one store (database URL + blob folder + key).

    The blobs live where ``blobs`` says (``"files"``, ``"database"`` or ``"auto"``; default the
    setting ``cluster.blobs``, see :func:`openlfr.store.db_blobs.blob_backend`): with the
    database backend ``blob_root`` is not used, and every host and API replica on the same
    PostgreSQL reads the same blobs and signs checkpoints with the same key."""

    def __init__(
        self,
        database_url: str | None = None,
        *,
        blob_root: Path | None = None,
        key: bytes | None = None,
        policy: Policy | None = None,
        template_fn: TemplateFn | None = None,
        clock: Clock = utc_now,
        engine: Engine | None = None,
        migrate: bool = True,
        blobs: str | None = None,
    ) -> None:
        self.engine = engine or make_engine(database_url)
        if migrate:
            upgrade(self.engine)
        self.sessions = session_factory(self.engine)
        self.read_sessions = session_factory(read_only(self.engine))
        # key: OPENLFR_KEY or OPENLFR_KEY_FILE unless given
        self.blob_store = open_blob_store(self.engine, root=blob_root, key=key, backend=blobs)
        self.policy = policy or get_settings().policy
        self.template_fn = template_fn
        self.clock = clock
        # the key that signs audit checkpoints: sealed where the blobs are, loaded when first used
        self.signer = checkpoints.Signer(self.blob_store.secret(checkpoints.KEY_FILE_NAME), self.blob_store.keyring)

    @contextmanager
    def transaction(self) -> Iterator[Ctx]:
        """A :class:`Ctx` whose writes are committed together or not at all."""
        session = self.sessions()
        blobs = self.blob_store.transaction(session)
        ctx = Ctx(session, blobs, self.policy, self.clock, self.template_fn, signer=self.signer)
        try:
            yield ctx
            # every door passes here: sign the head if events were written and the last checkpoint is old
            checkpoints.sign_if_due(session, self.signer, now=ctx.now(),
                                    interval_minutes=ctx.policy.checkpoint_interval_minutes)
            session.commit()
            blobs.commit()
        except BaseException as err:
            session.rollback()
            blobs.rollback()
            self._record_refusal(ctx, err)
            raise
        else:
            if session.info.pop(SCRUB_AFTER_COMMIT, False) and not scrub_wal(self.engine):
                log.warning("an erasure was committed but SQLite's write-ahead log could not be emptied yet "
                            "(a reader holds an old snapshot); the next erasure tries again")
        finally:
            session.close()

    def run(self, work: Callable[[Ctx], R], *, attempts: int = 6, first_wait: float = 0.2) -> R:
        """``work(ctx)`` in a transaction, run again (after 0.2, 0.4, 0.8... s) when the store
        was only busy: SQLite's lock held past its busy timeout, a PostgreSQL serialisation
        failure or deadlock, a dropped connection. For writers that must not die of a busy
        store (the camera workers); any other error is raised at once."""
        for attempt in range(attempts):
            try:
                with self.transaction() as ctx:
                    return work(ctx)
            except DBAPIError as err:
                if attempt + 1 >= attempts or not transient(err):
                    raise
                log.warning("store busy (%s); retrying in %.1f s", str(err.orig).splitlines()[0],
                            first_wait * 2**attempt)
                time.sleep(first_wait * 2**attempt)
        raise AssertionError("unreachable")

    @contextmanager
    def reading(self) -> Iterator[Ctx]:
        """A :class:`Ctx` for reads only: it never takes SQLite's write lock (so it never waits
        for a long write), and whatever it might change is rolled back."""
        session = self.read_sessions()
        ctx = Ctx(session, self.blob_store.transaction(session), self.policy, self.clock, self.template_fn,
                  read_only=True)
        try:
            yield ctx
        except BaseException as err:
            session.rollback()
            self._record_refusal(ctx, err)  # refusals are audited, as in a transaction
            raise
        finally:
            # close, not rollback: the database transaction ends (anything written is discarded)
            # but loaded objects keep their state, so pages can be rendered from them afterwards
            session.close()

    def _record_refusal(self, ctx: Ctx, err: BaseException) -> None:
        """Audit a refused attempt (an openlfr error after ``ctx.attempt`` was set), in its own
        transaction; a failure to log never hides the refusal itself."""
        if not isinstance(err, OpenLFRError) or ctx.attempt is None:
            return
        try:
            self._audit_refusal(ctx.attempt, str(err))
        except Exception:  # noqa: BLE001
            log.exception("could not record the refusal of %s in the audit log", ctx.attempt[1])

    def _audit_refusal(self, attempt: tuple[str, str, str, str], reason: str) -> None:
        actor, action, object_type, object_id = attempt
        with self.sessions() as session, session.begin():
            audit.append(session, actor=actor, action=f"{action}.refused", object_type=object_type or "-",
                         object_id=object_id or "-", details={"reason": reason}, at=self.clock())
            checkpoints.sign_if_due(session, self.signer, now=self.clock(),
                                    interval_minutes=self.policy.checkpoint_interval_minutes)

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()

