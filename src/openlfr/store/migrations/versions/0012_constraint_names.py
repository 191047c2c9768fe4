"""Every constraint named by the naming convention of openlfr.store.tables.base

Revision ID: 0012_constraint_names
Revises: 0011_rights
Create Date: 2026-12-03 19:00:00

Names are worked out from the database as it stands (the reflected columns of each primary
key, foreign key and unique constraint) with the convention as it is at this revision, copied
below, so that later changes to the models never change what this migration does:
``pk_<table>``, ``fk_<table>_<first column>_<referred table>``, ``uq_<table>_<columns>``.

- PostgreSQL: a constraint whose name differs (PostgreSQL's own ``users_pkey``,
  ``users_organisation_id_fkey``, ``users_name_key``...; the two ``uq_`` names given by hand) is
  renamed in place, ``ALTER TABLE ... RENAME CONSTRAINT``; the index behind a primary key or a
  unique constraint takes the new name with it. Nothing is copied.
- SQLite cannot rename a constraint, and most were made without a name: each such table is
  recreated (Alembic's batch mode, ``recreate="always"``) with its constraints named by the
  convention, its rows copied as they are, then the triggers that went with a dropped table
  (the ledger's append-only triggers) are created again. This needs foreign keys off (the old
  table cannot be dropped while rows point at it), which :func:`openlfr.store.engine.upgrade`
  arranges, checking ``PRAGMA foreign_key_check`` before it commits; run through a connection
  with foreign keys on, this migration stops with an error rather than fail halfway.

Only what is named otherwise is touched. A store created since this revision has most names
already (Alembic names what ``op.create_table`` and ``op.add_column`` make by the convention of
the models' metadata, see ``migrations/env.py``); it is left with the columns SQLite added by
plain ``ALTER TABLE`` (migration 0005) and the two names given by hand. Run again (a downgrade
to 0011 and back), it changes nothing. The schema has no CHECK constraint and no index other
than those behind unique constraints (which SQLite makes by itself and PostgreSQL renames with
the constraint), so there is nothing else to name.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.engine.interfaces import ReflectedForeignKeyConstraint, ReflectedUniqueConstraint

revision = '0012_constraint_names'
down_revision = '0011_rights'
branch_labels = None
depends_on = None

# openlfr.store.tables.base.NAMING_CONVENTION at this revision
CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _fk_name(table: str, fk: ReflectedForeignKeyConstraint) -> str:
    return f"fk_{table}_{fk['constrained_columns'][0]}_{fk['referred_table']}"


def _uq_name(table: str, uq: ReflectedUniqueConstraint) -> str:
    return f"uq_{table}_{'_'.join(uq['column_names'])}"


def _tables(inspector: sa.Inspector) -> list[str]:
    tables = [t for t in inspector.get_table_names() if t != "alembic_version"]
    for table in tables:
        if inspector.get_check_constraints(table):  # none today: a new one must be named in its migration
            raise RuntimeError(f"0012_constraint_names: unexpected CHECK constraint on {table}")
    return tables


def _misnamed(inspector: sa.Inspector, table: str) -> tuple[list[tuple[str | None, str]],
                                                             list[ReflectedForeignKeyConstraint],
                                                             list[ReflectedUniqueConstraint]]:
    """The (name, convention's name) of each of ``table``'s constraints named otherwise (or not
    at all), and those of its foreign keys and unique constraints among them."""
    fks = [fk for fk in inspector.get_foreign_keys(table) if fk["name"] != _fk_name(table, fk)]
    uqs = [uq for uq in inspector.get_unique_constraints(table) if uq["name"] != _uq_name(table, uq)]
    pk = inspector.get_pk_constraint(table)["name"]
    names = [(pk, f"pk_{table}")] if pk != f"pk_{table}" else []
    names += [(fk["name"], _fk_name(table, fk)) for fk in fks] + [(uq["name"], _uq_name(table, uq)) for uq in uqs]
    return names, fks, uqs


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        _recreate_sqlite_tables(bind)
    else:
        _rename_constraints(bind)


def _rename_constraints(bind: sa.Connection) -> None:
    inspector = sa.inspect(bind)
    quote = bind.dialect.identifier_preparer.quote
    for table in _tables(inspector):
        for old, new in _misnamed(inspector, table)[0]:
            if old is not None:  # PostgreSQL names every constraint
                op.execute(f"ALTER TABLE {quote(table)} RENAME CONSTRAINT {quote(old)} TO {quote(new)}")


def _recreate_sqlite_tables(bind: sa.Connection) -> None:
    inspector = sa.inspect(bind)
    work = [(table, *_misnamed(inspector, table)) for table in _tables(inspector)]
    work = [(table, names, fks, uqs) for table, names, fks, uqs in work if names]  # named already: left as is
    if not work:
        return
    if bind.exec_driver_sql("PRAGMA foreign_keys").scalar():
        raise RuntimeError("0012_constraint_names recreates tables: run it with foreign keys off, "
                           "as openlfr.store.engine.upgrade does")
    triggers = bind.exec_driver_sql("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'").all()
    for table, _, fks, uqs in work:
        # reflected without a name (every primary key, most others): named by the convention as
        # the table is recreated; reflected with another name (given by hand): replaced
        with op.batch_alter_table(table, recreate="always", naming_convention=CONVENTION) as batch:
            for fk in fks:
                if fk["name"] is not None:
                    batch.drop_constraint(fk["name"], type_="foreignkey")
                    batch.create_foreign_key(_fk_name(table, fk), fk["referred_table"],
                                             fk["constrained_columns"], fk["referred_columns"])
            for uq in uqs:
                if uq["name"] is not None:
                    batch.drop_constraint(uq["name"], type_="unique")
                    batch.create_unique_constraint(_uq_name(table, uq), uq["column_names"])
    # dropping a table drops its triggers: make them again, as they were
    left = {name for (name,) in bind.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    for name, sql in triggers:
        if name not in left:
            op.execute(sql)


def downgrade() -> None:
    # Nothing to undo: 0011 and earlier never refer to a constraint by PostgreSQL's generated
    # names, and a named constraint behaves as an unnamed one. Upgrading again changes nothing.
    pass
