"""The console's cameras: per-camera analysis settings in the store, and each camera's status

Revision ID: 0010_console
Revises: 0009_regulator_record
Create Date: 2026-12-03 13:10:00

Cameras added before keep the default settings ({}); their status is unknown until a worker
runs them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0010_console'
down_revision = '0009_regulator_record'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('cameras', sa.Column('settings', sa.JSON(), nullable=False, server_default='{}'))
    op.create_table(
        'camera_status',
        sa.Column('camera_id', sa.Integer(), sa.ForeignKey('cameras.id'), primary_key=True),
        sa.Column('deployment_id', sa.Integer(), sa.ForeignKey('deployments.id'), nullable=True),
        sa.Column('worker', sa.String(length=200), nullable=False),
        sa.Column('state', sa.String(length=16), nullable=False),
        sa.Column('fps', sa.Float(), nullable=False),
        sa.Column('frames_analysed', sa.Integer(), nullable=False),
        sa.Column('last_frame_at', sa.DateTime(), nullable=True),
        sa.Column('error', sa.Text(), nullable=False),
        sa.Column('started_at', sa.DateTime(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table('camera_status')
    with op.batch_alter_table('cameras') as batch:
        batch.drop_column('settings')
