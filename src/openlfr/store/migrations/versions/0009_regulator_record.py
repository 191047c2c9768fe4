"""The regulator's record: structured grounds, watchlist categories, per-deployment signage,
alert outcomes and escalations, people passes, camera owners, signed audit checkpoints

Revision ID: 0009_regulator_record
Revises: 0008_camera_networks
Create Date: 2026-12-03 14:00:00

Existing rows keep what they had: deployments requested before the grounds were structured
have an empty legal basis (shown as "not recorded"), watchlists no category list, signage
checks no deployment, counters no passes (0: not counted then).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0009_regulator_record'
down_revision = '0008_camera_networks'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('shared_images', sa.Column('warrant_ref', sa.String(length=120), nullable=False, server_default=''))
    op.add_column('watchlists', sa.Column('categories', sa.JSON(), nullable=False, server_default='[]'))
    with op.batch_alter_table('signage_records') as batch:
        batch.add_column(sa.Column('deployment_id', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('photo_blob', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('photo_sha256', sa.String(length=64), nullable=True))
        batch.create_foreign_key('fk_signage_records_deployment_id_deployments', 'deployments',
                                 ['deployment_id'], ['id'])
    with op.batch_alter_table('deployments') as batch:
        batch.add_column(sa.Column('legal_basis', sa.String(length=40), nullable=False, server_default=''))
        batch.add_column(sa.Column('dpia_date', sa.Date(), nullable=True))
        batch.add_column(sa.Column('eia_ref', sa.String(length=200), nullable=False, server_default=''))
        batch.add_column(sa.Column('eia_date', sa.Date(), nullable=True))
        batch.add_column(sa.Column('proportionality', sa.Text(), nullable=False, server_default=''))
        batch.add_column(sa.Column('urgent', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column('urgency_reason', sa.Text(), nullable=False, server_default=''))
        batch.add_column(sa.Column('retro_review_due', sa.DateTime(), nullable=True))
        batch.add_column(sa.Column('retro_reviewed_by_id', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('retro_reviewed_at', sa.DateTime(), nullable=True))
        batch.add_column(sa.Column('retro_review_outcome', sa.String(length=16), nullable=True))
        batch.add_column(sa.Column('composition', sa.JSON(), nullable=True))
        batch.create_foreign_key('fk_deployments_retro_reviewed_by_id_users', 'users', ['retro_reviewed_by_id'], ['id'])
    op.add_column('pipeline_counters', sa.Column('passes', sa.Integer(), nullable=False, server_default='0'))
    op.create_table(
        'camera_owners',
        sa.Column('camera_id', sa.Integer(), sa.ForeignKey('cameras.id'), primary_key=True),
        sa.Column('deployment_id', sa.Integer(), sa.ForeignKey('deployments.id'), nullable=False),
        sa.Column('owner', sa.String(length=200), nullable=False),
        sa.Column('token', sa.String(length=64), nullable=False),
        sa.Column('claimed_at', sa.DateTime(), nullable=False),
        sa.Column('expires_at', sa.DateTime(), nullable=False),
    )
    op.create_table(
        'alert_outcomes',
        sa.Column('alert_id', sa.Integer(), sa.ForeignKey('alerts.id'), primary_key=True),
        sa.Column('result', sa.String(length=32), nullable=False),
        sa.Column('note', sa.Text(), nullable=False),
        sa.Column('officer', sa.String(length=120), nullable=False),
        sa.Column('recorded_by_id', sa.Integer(), sa.ForeignKey('users.id'), nullable=False),
        sa.Column('recorded_at', sa.DateTime(), nullable=False),
    )
    op.create_table(
        'escalations',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('alert_id', sa.Integer(), sa.ForeignKey('alerts.id'), nullable=False),
        sa.Column('owner_role', sa.String(length=32), nullable=False),
        sa.Column('owner_org_id', sa.Integer(), sa.ForeignKey('organisations.id'), nullable=False),
        sa.Column('opened_by_id', sa.Integer(), sa.ForeignKey('users.id'), nullable=False),
        sa.Column('opened_at', sa.DateTime(), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('resolved_by_id', sa.Integer(), sa.ForeignKey('users.id'), nullable=True),
        sa.Column('resolved_at', sa.DateTime(), nullable=True),
        sa.Column('resolution', sa.String(length=16), nullable=True),
        sa.Column('resolution_note', sa.Text(), nullable=False),
    )
    op.create_table(
        'audit_checkpoints',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('seq', sa.Integer(), nullable=False),
        sa.Column('head_hash', sa.String(length=64), nullable=False),
        sa.Column('at', sa.String(length=40), nullable=False),
        sa.Column('reason', sa.String(length=80), nullable=False),
        sa.Column('key_id', sa.String(length=64), nullable=False),
        sa.Column('public_key', sa.String(length=64), nullable=False),
        sa.Column('signature', sa.String(length=128), nullable=False),
    )


def downgrade() -> None:
    op.drop_table('audit_checkpoints')
    op.drop_table('escalations')
    op.drop_table('alert_outcomes')
    op.drop_table('camera_owners')
    with op.batch_alter_table('pipeline_counters') as batch:
        batch.drop_column('passes')
    with op.batch_alter_table('deployments') as batch:
        batch.drop_constraint('fk_deployments_retro_reviewed_by_id_users', type_='foreignkey')
        for col in ('composition', 'retro_review_outcome', 'retro_reviewed_at', 'retro_reviewed_by_id',
                    'retro_review_due', 'urgency_reason', 'urgent', 'proportionality', 'eia_date', 'eia_ref',
                    'dpia_date', 'legal_basis'):
            batch.drop_column(col)
    with op.batch_alter_table('signage_records') as batch:
        batch.drop_constraint('fk_signage_records_deployment_id_deployments', type_='foreignkey')
        for col in ('photo_sha256', 'photo_blob', 'deployment_id'):
            batch.drop_column(col)
    with op.batch_alter_table('watchlists') as batch:
        batch.drop_column('categories')
    with op.batch_alter_table('shared_images') as batch:
        batch.drop_column('warrant_ref')
