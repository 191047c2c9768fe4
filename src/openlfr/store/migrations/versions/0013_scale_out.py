"""Many hosts on one store: camera leases with epochs, host agents, one alert per pass, a commit-order
cursor on alerts, blobs in the database, rate limits shared by every API replica

Revision ID: 0013_scale_out
Revises: 0012_constraint_names
Create Date: 2026-12-03 22:00:00

``camera_owners`` (one claim per running worker) gives way to ``camera_leases`` (one row per
camera of a live deployment, claimed by host agents with an epoch that fences late writes):
claims in flight are not carried over, since a worker started before this revision stops at
its next write anyway. The cameras of deployments live now get their lease rows here, free.
A recording's resume point remembers the wall time of its time 0 (``origin``), so frames
replayed after a failover keep their times. Existing alerts take as cursor the sequence number
of their ``alert.record`` audit event, which is the order they were committed in.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0013_scale_out'
down_revision = '0012_constraint_names'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'camera_leases',
        sa.Column('camera_id', sa.Integer(), sa.ForeignKey('cameras.id'), primary_key=True),
        sa.Column('deployment_id', sa.Integer(), sa.ForeignKey('deployments.id'), nullable=False),
        sa.Column('host_id', sa.String(length=200), nullable=True),
        sa.Column('holder', sa.String(length=200), nullable=False),
        sa.Column('epoch', sa.Integer(), nullable=False),
        sa.Column('claimed_at', sa.DateTime(), nullable=True),
        sa.Column('expires_at', sa.DateTime(), nullable=True),
    )
    op.create_table(
        'host_agents',
        sa.Column('host_id', sa.String(length=200), primary_key=True),
        sa.Column('capacity', sa.Integer(), nullable=False),
        sa.Column('machine', sa.String(length=200), nullable=False),
        sa.Column('started_at', sa.DateTime(), nullable=False),
        sa.Column('seen_at', sa.DateTime(), nullable=False),
        sa.Column('stopped_at', sa.DateTime(), nullable=True),
    )
    op.create_table(
        'alert_passes',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('deployment_id', sa.Integer(), sa.ForeignKey('deployments.id'), nullable=False),
        sa.Column('zone', sa.String(length=160), nullable=False),
        sa.Column('entry_id', sa.Integer(), sa.ForeignKey('watchlist_entries.id'), nullable=False),
        sa.Column('alert_id', sa.Integer(), sa.ForeignKey('alerts.id'), nullable=True),
        sa.Column('first_seen', sa.DateTime(), nullable=False),
        sa.Column('last_seen', sa.DateTime(), nullable=False),
        sa.UniqueConstraint('deployment_id', 'zone', 'entry_id'),
    )
    op.create_table(
        'blobs',
        sa.Column('id', sa.String(length=64), primary_key=True),
        sa.Column('sealed', sa.LargeBinary(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
    )
    if op.get_bind().dialect.name == 'postgresql':  # ciphertext does not compress: do not try
        op.execute("ALTER TABLE blobs ALTER COLUMN sealed SET STORAGE EXTERNAL")
    op.create_table(
        'rate_limits',
        sa.Column('key', sa.String(length=300), primary_key=True),
        sa.Column('window_start', sa.DateTime(), nullable=False),
        sa.Column('count', sa.Integer(), nullable=False),
    )
    op.drop_table('camera_owners')
    op.add_column('camera_checkpoints', sa.Column('origin', sa.DateTime(), nullable=True))
    with op.batch_alter_table('alerts') as batch:
        batch.add_column(sa.Column('cursor', sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column('attempt_key', sa.String(length=160), nullable=True))
        batch.create_unique_constraint('uq_alerts_cursor', ['cursor'])
        batch.create_unique_constraint('uq_alerts_attempt_key', ['attempt_key'])
    op.execute(
        "UPDATE alerts SET cursor = (SELECT max(e.seq) FROM audit_events e WHERE e.object_type = 'alert' "
        "AND e.action = 'alert.record' AND e.object_id = CAST(alerts.id AS VARCHAR(80)))")
    op.execute(
        "INSERT INTO camera_leases (camera_id, deployment_id, host_id, holder, epoch) "
        "SELECT dc.camera_id, max(d.id), NULL, '', 0 FROM deployments d "
        "JOIN deployment_cameras dc ON dc.deployment_id = d.id "
        "WHERE d.status = 'live' AND d.kind = 'live' GROUP BY dc.camera_id")


def downgrade() -> None:
    with op.batch_alter_table('camera_checkpoints') as batch:
        batch.drop_column('origin')
    with op.batch_alter_table('alerts') as batch:
        batch.drop_constraint('uq_alerts_attempt_key', type_='unique')
        batch.drop_constraint('uq_alerts_cursor', type_='unique')
        batch.drop_column('attempt_key')
        batch.drop_column('cursor')
    op.create_table(
        'camera_owners',
        sa.Column('camera_id', sa.Integer(), sa.ForeignKey('cameras.id'), primary_key=True),
        sa.Column('deployment_id', sa.Integer(), sa.ForeignKey('deployments.id'), nullable=False),
        sa.Column('owner', sa.String(length=200), nullable=False),
        sa.Column('token', sa.String(length=64), nullable=False),
        sa.Column('claimed_at', sa.DateTime(), nullable=False),
        sa.Column('expires_at', sa.DateTime(), nullable=False),
    )
    for table in ('rate_limits', 'blobs', 'alert_passes', 'host_agents', 'camera_leases'):
        op.drop_table(table)
