"""Alembic environment: runs the migrations on the connection openlfr hands over."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from openlfr.store.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    """Use ``config.attributes['connection']`` if given, else the configured URL."""
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.begin() as conn:
        context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
