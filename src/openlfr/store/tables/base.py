"""The declarative base of every openlfr table, with the constraint naming convention.

Every primary key, foreign key, unique and check constraint (and index) gets a name made by
the convention below, on SQLite as on PostgreSQL: a later migration can then drop or alter a
constraint by a name it knows in advance (SQLite can only change constraints by recreating
the table, which needs the name). Migration ``0012_constraint_names`` gave the names to
stores made before.
"""

from __future__ import annotations

from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

# SQLAlchemy's documented convention ("Configuring Constraint Naming Conventions"); a unique
# constraint is named after all its columns, so two on the same first column cannot clash.
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every openlfr table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
