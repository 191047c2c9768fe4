"""Alembic migrations of the governance store."""
