"""One unit of work for the services, and the :class:`Governance` object that opens them.

Every service function takes a :class:`Ctx`: a database session inside one transaction,
the blob store tied to that transaction, the policy, a clock and (where images are
turned into templates) the injected template function. :meth:`Governance.transaction`
commits everything or nothing; a refused action is rolled back and then recorded on its
own as an ``<action>.refused`` audit event, so refusals leave a trace but no partial writes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from openlfr import audit
from openlfr.errors import NotFoundError, OpenLFRError
from openlfr.governance.errors import PermissionDenied
from openlfr.governance.schemas import Role
from openlfr.governance.settings import Policy
from openlfr.store import BlobStore, BlobTransaction, blob_dir, data_dir, load_or_create_key, make_engine
from openlfr.store import session_factory, upgrade
from openlfr.store.models import Base, User

TemplateFn = Callable[[bytes], tuple[np.ndarray, float]]
Clock = Callable[[], datetime]
T = TypeVar("T", bound=Base)
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

    def now(self) -> datetime:
        """The current time from the injected clock."""
        return self.clock()

    def audit(self, actor: str, action: str, object_type: str, object_id: Any, **details: Any) -> None:
        """Append an audit event in this transaction."""
        audit.append(self.session, actor=actor, action=action, object_type=object_type,
                     object_id=str(object_id), details=details, at=self.now())

    def get(self, model: type[T], object_id: int, what: str) -> T:
        """The row with ``object_id`` or a clear :class:`NotFoundError`."""
        row = self.session.get(model, object_id)
        if row is None:
            raise NotFoundError(f"{what} {object_id} does not exist")
        return row

    def require(self, actor: str, roles: set[Role] | None, action: str, object_type: str = "", object_id: Any = "") -> User:
        """The acting user, checked to hold one of ``roles`` (``None``: any active user)."""
        self.attempt = (actor, action, object_type, str(object_id))
        user = self.session.execute(select(User).where(User.name == actor)).scalar_one_or_none()
        if user is None or not user.active:
            raise PermissionDenied(f"unknown or inactive user {actor!r}")
        if roles is not None and Role(user.role) not in roles:
            allowed = ", ".join(sorted(r.value for r in roles))
            raise PermissionDenied(f"{action} needs role {allowed}; {actor} is {user.role}")
        return user


class Governance:
    """Opens transactions on one store (database URL + blob folder + key)."""

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
    ) -> None:
        self.engine = engine or make_engine(database_url)
        if migrate:
            upgrade(self.engine)
        self.sessions = session_factory(self.engine)
        self.blob_store = BlobStore(blob_root or blob_dir(), key or load_or_create_key(data_dir() / "key"))
        self.policy = policy or Policy()
        self.template_fn = template_fn
        self.clock = clock

    @contextmanager
    def transaction(self) -> Iterator[Ctx]:
        """A :class:`Ctx` whose writes are committed together or not at all."""
        session = self.sessions()
        blobs = BlobTransaction(self.blob_store)
        ctx = Ctx(session, blobs, self.policy, self.clock, self.template_fn)
        try:
            yield ctx
            session.commit()
            blobs.commit()
        except BaseException as err:
            session.rollback()
            blobs.rollback()
            if isinstance(err, OpenLFRError) and ctx.attempt is not None:
                try:
                    self._audit_refusal(ctx.attempt, str(err))
                except Exception:  # never hide the refusal itself behind a logging failure
                    log.exception("could not record the refusal of %s in the audit log", ctx.attempt[1])
            raise
        finally:
            session.close()

    def _audit_refusal(self, attempt: tuple[str, str, str, str], reason: str) -> None:
        actor, action, object_type, object_id = attempt
        with self.sessions() as session, session.begin():
            audit.append(session, actor=actor, action=f"{action}.refused", object_type=object_type or "-",
                         object_id=object_id or "-", details={"reason": reason}, at=self.clock())

    def close(self) -> None:
        """Release the database connections."""
        self.engine.dispose()

