"""The login throttle lives in the database: shared by every process and every door

Revision ID: 0007_login_throttle
Revises: 0006_template_models
Create Date: 2026-12-03 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007_login_throttle'
down_revision = '0006_template_models'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'login_throttle',
        sa.Column('key', sa.String(length=300), primary_key=True),
        sa.Column('failures', sa.Integer(), nullable=False),
        sa.Column('window_start', sa.DateTime(), nullable=False),
        sa.Column('lockouts', sa.Integer(), nullable=False),
        sa.Column('locked_until', sa.DateTime(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table('login_throttle')
