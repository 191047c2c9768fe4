"""calibrated thresholds on deployments, review outcomes on alerts

Revision ID: 0003_calibration
Revises: 0002_pipeline
Create Date: 2026-11-28 08:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003_calibration'
down_revision = '0002_pipeline'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('deployments') as batch:
        batch.add_column(sa.Column('target_false_alert_rate', sa.Float(), nullable=True))
        batch.add_column(sa.Column('calibration', sa.JSON(), nullable=True))
    with op.batch_alter_table('alerts') as batch:
        batch.add_column(sa.Column('review_outcome', sa.String(length=16), nullable=True))
        batch.add_column(sa.Column('reviewed_at', sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('alerts') as batch:
        batch.drop_column('reviewed_at')
        batch.drop_column('review_outcome')
    with op.batch_alter_table('deployments') as batch:
        batch.drop_column('calibration')
        batch.drop_column('target_false_alert_rate')
