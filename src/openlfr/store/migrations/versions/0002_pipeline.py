"""live pipeline: alert details, counters, camera gaps, checkpoints

Revision ID: 0002_pipeline
Revises: 0001
Create Date: 2026-11-28 08:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0002_pipeline'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('alert_details',
    sa.Column('alert_id', sa.Integer(), nullable=False),
    sa.Column('track_id', sa.String(length=64), nullable=False),
    sa.Column('frame_index', sa.Integer(), nullable=False),
    sa.Column('video_time', sa.Float(), nullable=False),
    sa.Column('box', sa.JSON(), nullable=False),
    sa.Column('quality', sa.Float(), nullable=False),
    sa.Column('candidate_label', sa.String(length=120), nullable=False),
    sa.Column('snapshot_hash', sa.String(length=64), nullable=False),
    sa.Column('worker', sa.String(length=120), nullable=False),
    sa.ForeignKeyConstraint(['alert_id'], ['alerts.id'], ),
    sa.PrimaryKeyConstraint('alert_id')
    )
    op.create_table('pipeline_counters',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('deployment_id', sa.Integer(), nullable=False),
    sa.Column('camera_id', sa.Integer(), nullable=False),
    sa.Column('interval_start', sa.DateTime(), nullable=False),
    sa.Column('interval_end', sa.DateTime(), nullable=False),
    sa.Column('frames', sa.Integer(), nullable=False),
    sa.Column('frames_analysed', sa.Integer(), nullable=False),
    sa.Column('faces_seen', sa.Integer(), nullable=False),
    sa.Column('tracks', sa.Integer(), nullable=False),
    sa.Column('templates', sa.Integer(), nullable=False),
    sa.Column('templates_discarded', sa.Integer(), nullable=False),
    sa.Column('alerts', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['camera_id'], ['cameras.id'], ),
    sa.ForeignKeyConstraint(['deployment_id'], ['deployments.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('camera_gaps',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('camera_id', sa.Integer(), nullable=False),
    sa.Column('deployment_id', sa.Integer(), nullable=True),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('ended_at', sa.DateTime(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['camera_id'], ['cameras.id'], ),
    sa.ForeignKeyConstraint(['deployment_id'], ['deployments.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('camera_checkpoints',
    sa.Column('deployment_id', sa.Integer(), nullable=False),
    sa.Column('camera_id', sa.Integer(), nullable=False),
    sa.Column('source', sa.Text(), nullable=False),
    sa.Column('frame_index', sa.Integer(), nullable=False),
    sa.Column('finished', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['camera_id'], ['cameras.id'], ),
    sa.ForeignKeyConstraint(['deployment_id'], ['deployments.id'], ),
    sa.PrimaryKeyConstraint('deployment_id', 'camera_id')
    )


def downgrade() -> None:
    op.drop_table('camera_checkpoints')
    op.drop_table('camera_gaps')
    op.drop_table('pipeline_counters')
    op.drop_table('alert_details')
