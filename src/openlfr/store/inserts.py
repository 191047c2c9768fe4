"""Race-safe inserts on the two databases openlfr runs on (PostgreSQL and SQLite).

Both support ``INSERT ... ON CONFLICT DO NOTHING`` (and ``RETURNING``), through each dialect's
own ``Insert``. :func:`locked_row` is the pattern every counter and claim row uses: insert the
row if it is missing (so that concurrent first writers cannot both insert it), then lock it for
the rest of the transaction (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite's write lock,
taken when the transaction began, already serialises writers).
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import Connection, select
from sqlalchemy.dialects.postgresql import Insert as PgInsert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import Insert as SqliteInsert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

T = TypeVar("T")


def dialect_insert(on: Session | Connection, model: type[Any]) -> PgInsert | SqliteInsert:
    """An ``INSERT`` into ``model``'s table with ``on_conflict_do_nothing``/``_do_update``, for the
    database of ``on`` (a session or a connection)."""
    name = (on.get_bind() if isinstance(on, Session) else on).dialect.name
    if name == "postgresql":
        return pg_insert(model)
    if name == "sqlite":
        return sqlite_insert(model)
    raise NotImplementedError(f"openlfr's store runs on PostgreSQL or SQLite, not {name}")


def locked_row(session: Session, model: type[T], values: dict[str, Any], keys: list[str]) -> T:
    """The row of ``model`` whose ``keys`` columns equal ``values``'s, made from ``values`` if
    missing, locked until the transaction ends (see the module docstring)."""
    session.execute(dialect_insert(session, model).values(**values).on_conflict_do_nothing(index_elements=keys))
    where = [getattr(model, k) == values[k] for k in keys]
    return session.execute(select(model).where(*where).with_for_update()
                           .execution_options(populate_existing=True)).scalar_one()
