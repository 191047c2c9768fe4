"""Camera sources: the networks each organisation's cameras may stream from

Revision ID: 0008_camera_networks
Revises: 0007_login_throttle
Create Date: 2026-12-03 13:00:00

Existing organisations get an empty list: a camera with a network address will not run until
an operator admin of its organisation allows its network (``openlfr camera networks``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008_camera_networks'
down_revision = '0007_login_throttle'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('organisations', sa.Column('camera_networks', sa.JSON(), nullable=False, server_default='[]'))


def downgrade() -> None:
    with op.batch_alter_table('organisations') as batch:
        batch.drop_column('camera_networks')
