"""People's rights: erasure keys, requests and their findings, legal holds; alerts remember
why they were deleted and when they were pseudonymised

Revision ID: 0011_rights
Revises: 0010_console
Create Date: 2026-12-03 16:00:00

Alerts stored before keep their crops sealed only under the store's key (no alert key) and
their details (track, box, candidate label) in clear: erasing one deletes its crop file and
wipes its rows, but audit events written before this revision hold their details in clear.
Alerts stored since hold those details sealed under the alert's key (``alert_details.personal``).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0011_rights'
down_revision = '0010_console'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('alert_details', sa.Column('personal', sa.Text(), nullable=True))
    with op.batch_alter_table('alerts') as batch:
        batch.add_column(sa.Column('deleted_reason', sa.Text(), nullable=True))
        batch.add_column(sa.Column('pseudonymised_at', sa.DateTime(), nullable=True))
    # an outcome's officer is now sealed under the alert's erasure key: longer than the 120 allowed in
    with op.batch_alter_table('alert_outcomes') as batch:
        batch.alter_column('officer', type_=sa.Text(), existing_type=sa.String(length=120), existing_nullable=False)
    op.create_table(
        'erasure_keys',
        sa.Column('ref', sa.String(length=80), primary_key=True),
        sa.Column('blob', sa.String(length=64), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('destroyed_at', sa.DateTime(), nullable=True),
        sa.Column('destroyed_reason', sa.Text(), nullable=True),
    )
    op.create_table(
        'rights_requests',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('organisation_id', sa.Integer(), sa.ForeignKey('organisations.id'), nullable=False),
        sa.Column('regime', sa.String(length=16), nullable=False),
        sa.Column('follows_id', sa.Integer(), sa.ForeignKey('rights_requests.id'), nullable=True),
        sa.Column('received_at', sa.DateTime(), nullable=False),
        sa.Column('due_at', sa.DateTime(), nullable=False),
        sa.Column('extended_at', sa.DateTime(), nullable=True),
        sa.Column('extension_reason', sa.Text(), nullable=False),
        sa.Column('requester_sealed', sa.Text(), nullable=False),
        sa.Column('identity_evidence_sealed', sa.Text(), nullable=True),
        sa.Column('identity_verified_by_id', sa.Integer(), sa.ForeignKey('users.id'), nullable=True),
        sa.Column('identity_verified_at', sa.DateTime(), nullable=True),
        sa.Column('photo_blob', sa.String(length=64), nullable=True),
        sa.Column('searched_at', sa.DateTime(), nullable=True),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('decision', sa.String(length=24), nullable=True),
        sa.Column('decision_reasons', sa.JSON(), nullable=False),
        sa.Column('decision_note_sealed', sa.Text(), nullable=True),
        sa.Column('decided_by_id', sa.Integer(), sa.ForeignKey('users.id'), nullable=True),
        sa.Column('decided_at', sa.DateTime(), nullable=True),
        sa.Column('letter_sealed', sa.Text(), nullable=True),
        sa.Column('recorded_by_id', sa.Integer(), sa.ForeignKey('users.id'), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
    )
    op.create_table(
        'request_findings',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('request_id', sa.Integer(), sa.ForeignKey('rights_requests.id'), nullable=False),
        sa.Column('kind', sa.String(length=24), nullable=False),
        sa.Column('object_id', sa.Integer(), nullable=False),
        sa.Column('score', sa.Float(), nullable=False),
        sa.Column('threshold', sa.Float(), nullable=False),
        sa.Column('model_id', sa.String(length=80), nullable=False),
        sa.Column('found_at', sa.DateTime(), nullable=False),
        sa.Column('verdict', sa.String(length=16), nullable=True),
        sa.Column('reviewed_by_id', sa.Integer(), sa.ForeignKey('users.id'), nullable=True),
        sa.Column('reviewed_at', sa.DateTime(), nullable=True),
    )
    op.create_table(
        'legal_holds',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('alert_id', sa.Integer(), sa.ForeignKey('alerts.id'), nullable=False),
        sa.Column('proceeding', sa.Text(), nullable=False),
        sa.Column('review_date', sa.Date(), nullable=False),
        sa.Column('placed_by_id', sa.Integer(), sa.ForeignKey('users.id'), nullable=False),
        sa.Column('placed_at', sa.DateTime(), nullable=False),
        sa.Column('released_by_id', sa.Integer(), sa.ForeignKey('users.id'), nullable=True),
        sa.Column('released_at', sa.DateTime(), nullable=True),
        sa.Column('release_reason', sa.Text(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table('legal_holds')
    op.drop_table('request_findings')
    op.drop_table('rights_requests')
    op.drop_table('erasure_keys')
    with op.batch_alter_table('alert_outcomes') as batch:
        batch.alter_column('officer', type_=sa.String(length=120), existing_type=sa.Text(), existing_nullable=False)
    with op.batch_alter_table('alert_details') as batch:
        batch.drop_column('personal')
    with op.batch_alter_table('alerts') as batch:
        batch.drop_column('pseudonymised_at')
        batch.drop_column('deleted_reason')
