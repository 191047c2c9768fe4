"""Templates know their model: shared images and deployment snapshots record the face model

Revision ID: 0006_template_models
Revises: 0005_parties
Create Date: 2026-12-03 10:00:00

Every template stored before this migration was made by the bundled dlib ResNet, so existing
shared images get its id (``dlib-resnet-v1`` and the first 8 hex digits of its weight file's
SHA-256), and so do the snapshots of deployments already authorised.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0006_template_models'
down_revision = '0005_parties'
branch_labels = None
depends_on = None

DLIB_RESNET_ID = "dlib-resnet-v1:55533b28"


def upgrade() -> None:
    op.add_column('shared_images', sa.Column('template_model', sa.String(length=80), nullable=False,
                                             server_default=DLIB_RESNET_ID))
    op.add_column('deployments', sa.Column('model_id', sa.String(length=80), nullable=True))
    op.execute(f"UPDATE deployments SET model_id = '{DLIB_RESNET_ID}' WHERE snapshot_hash IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table('deployments') as batch:
        batch.drop_column('model_id')
    with op.batch_alter_table('shared_images') as batch:
        batch.drop_column('template_model')
