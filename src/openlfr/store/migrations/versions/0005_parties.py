"""Organisations as parties: users, agreements, watchlists, cameras and deployments belong to one

Revision ID: 0005_parties
Revises: 0004_api
Create Date: 2026-12-03 09:00:00

How a store made before organisations existed is migrated (documented in docs/parties.md,
"Migrating a store made before organisations"):

1. One organisation per distinct ``users.organisation`` text (spaces trimmed, compared without
   case; the spelling of the lowest user id wins). Users with no organisation go to one named
   ``Unassigned (migrated)``. An operator named by an agreement and by no user becomes an
   organisation too.
2. Its kind: ``police_force`` if any member is a supplier or an authorising officer; else
   ``site_operator`` if any member is an operator admin or a reviewer (and for agreement
   operators); else ``oversight_body``.
3. The host (the organisation running the installation) is that of the lowest user id.
4. Authorising officers get no rank: their force's admin must record it before they can
   approve or authorise anything. Nobody is made an ``admin``: each organisation's first
   admin is enrolled with a one-time token (``openlfr org token``).
5. Agreements belong to the supplier's organisation and to the operator named; watchlists
   and deployments to the organisation of the user who made them; cameras to that of the
   user in their ``camera.add`` audit event, else the host.
6. One audit event, ``store.migrate_organisations``, lists every organisation made, its kind
   and every user assigned to it, so nothing is assigned silently.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.orm import Session

revision = '0005_parties'
down_revision = '0004_api'
branch_labels = None
depends_on = None

UNASSIGNED = "Unassigned (migrated)"
POLICE_ROLES = {"supplier", "authorising_officer"}
OPERATOR_ROLES = {"operator_admin", "reviewer"}


def _drop_column(table: str, column: str) -> None:
    if op.get_bind().dialect.name == "sqlite":  # native DROP COLUMN: no table copy under live foreign keys
        op.execute(f'ALTER TABLE {table} DROP COLUMN "{column}"')
    else:
        op.drop_column(table, column)


def _add_org_column(table: str, column: str) -> None:
    if op.get_bind().dialect.name == "sqlite":  # SQLite adds a referencing column natively, without a table copy
        op.execute(f"ALTER TABLE {table} ADD COLUMN {column} INTEGER REFERENCES organisations (id)")
    else:
        op.add_column(table, sa.Column(column, sa.Integer(), sa.ForeignKey('organisations.id'), nullable=True))


def upgrade() -> None:
    op.create_table(
        'organisations',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('kind', sa.String(length=24), nullable=False),
        sa.Column('is_host', sa.Boolean(), nullable=False),
        sa.Column('registered_by', sa.String(length=200), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('name'),
    )
    op.create_table(
        'enrolment_tokens',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('organisation_id', sa.Integer(), nullable=False),
        sa.Column('token_sha256', sa.String(length=64), nullable=False),
        sa.Column('issued_by', sa.String(length=200), nullable=False),
        sa.Column('issued_at', sa.DateTime(), nullable=False),
        sa.Column('expires_at', sa.DateTime(), nullable=False),
        sa.Column('used_at', sa.DateTime(), nullable=True),
        sa.Column('used_by_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id']),
        sa.ForeignKeyConstraint(['used_by_id'], ['users.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('token_sha256'),
    )
    for table in ('users', 'agreements', 'watchlists', 'cameras', 'deployments'):
        cols = ['organisation_id'] if table != 'agreements' else ['supplier_org_id', 'operator_org_id']
        for col in cols:
            _add_org_column(table, col)
    op.add_column('users', sa.Column('rank', sa.String(length=40), nullable=True))
    op.add_column('deployments', sa.Column('kind', sa.String(length=16), nullable=False, server_default='live'))
    op.add_column('deployments', sa.Column('police_review_required', sa.Boolean(), nullable=False,
                                           server_default=sa.false()))
    _assign_existing_rows()
    _drop_column('users', 'organisation')
    _drop_column('agreements', 'operator')


def _assign_existing_rows() -> None:
    """Apply the documented rule to the rows already in the store (nothing to do in a new one)."""
    bind = op.get_bind()
    users = bind.execute(sa.text("SELECT id, name, role, organisation FROM users ORDER BY id")).all()
    operators = [r[0] for r in bind.execute(sa.text("SELECT DISTINCT operator FROM agreements ORDER BY operator"))]
    if not users and not operators:
        return
    now = datetime.now(UTC).replace(tzinfo=None)
    spelling: dict[str, str] = {}
    members: dict[str, list[tuple[int, str, str]]] = {}
    for uid, name, role, org in users:
        text = (org or "").strip() or UNASSIGNED
        key = spelling.setdefault(text.casefold(), text)
        members.setdefault(key, []).append((uid, name, role))
    for text in operators:
        key = spelling.setdefault((text or "").strip().casefold() or UNASSIGNED.casefold(),
                                  (text or "").strip() or UNASSIGNED)
        members.setdefault(key, [])
    host = spelling[((users[0][3] or "").strip() or UNASSIGNED).casefold()] if users else None
    org_ids: dict[str, int] = {}
    record = []
    for name, people in members.items():
        roles = {r for _, _, r in people}
        kind = ("police_force" if roles & POLICE_ROLES else
                "site_operator" if roles & OPERATOR_ROLES or not people else "oversight_body")
        org_ids[name] = bind.execute(sa.text(
            "INSERT INTO organisations (name, kind, is_host, registered_by, created_at) "
            "VALUES (:n, :k, :h, 'migration 0005', :t) RETURNING id"),
            {"n": name, "k": kind, "h": name == host, "t": now}).scalar_one()
        for uid, _, _ in people:
            bind.execute(sa.text("UPDATE users SET organisation_id = :o WHERE id = :u"), {"o": org_ids[name], "u": uid})
        record.append({"organisation": name, "kind": kind, "host": name == host,
                       "users": [{"id": uid, "name": n, "role": r, "rank": None} for uid, n, r in people]})

    def org_of(text: str | None) -> int:
        return org_ids[spelling[((text or "").strip() or UNASSIGNED).casefold()]]

    for aid, operator in bind.execute(sa.text("SELECT id, operator FROM agreements")).all():
        bind.execute(sa.text(
            "UPDATE agreements SET operator_org_id = :o, "
            "supplier_org_id = (SELECT organisation_id FROM users WHERE users.id = agreements.supplier_id) "
            "WHERE id = :a"), {"o": org_of(operator), "a": aid})
    for table, creator in (("watchlists", "created_by_id"), ("deployments", "requested_by_id")):
        bind.execute(sa.text(f"UPDATE {table} SET organisation_id = "
                             f"(SELECT organisation_id FROM users WHERE users.id = {table}.{creator})"))
    host_id = org_ids.get(host) if host else None
    by_name = {n: uid for uid, n, _, _ in users}
    org_by_user: dict[int | None, int | None] = dict(
        bind.execute(sa.text("SELECT id, organisation_id FROM users")).all())
    for (cid,) in bind.execute(sa.text("SELECT id FROM cameras")).all():
        actor = bind.execute(sa.text(
            "SELECT actor FROM audit_events WHERE action = 'camera.add' AND object_id = :c ORDER BY seq"),
            {"c": str(cid)}).scalars().first()
        org = org_by_user.get(by_name.get(actor)) if actor else None
        bind.execute(sa.text("UPDATE cameras SET organisation_id = :o WHERE id = :c"), {"o": org or host_id, "c": cid})
    if bind.execute(sa.text("SELECT count(*) FROM audit_head")).scalar_one():
        from openlfr import audit

        with Session(bind=bind) as session:
            audit.append(session, actor="migration 0005", action="store.migrate_organisations", object_type="store",
                         object_id="-", details={"rule": "docs/parties.md#migrating-a-store-made-before-organisations",
                                                 "organisations": record}, at=datetime.now(UTC))
            session.flush()


def downgrade() -> None:
    op.add_column('users', sa.Column('organisation', sa.String(length=200), nullable=False, server_default=''))
    op.add_column('agreements', sa.Column('operator', sa.String(length=200), nullable=False, server_default=''))
    op.execute("UPDATE users SET organisation = COALESCE((SELECT name FROM organisations o "
               "WHERE o.id = users.organisation_id), '')")
    op.execute("UPDATE agreements SET operator = COALESCE((SELECT name FROM organisations o "
               "WHERE o.id = agreements.operator_org_id), '')")
    op.drop_column('deployments', 'police_review_required')
    op.drop_column('deployments', 'kind')
    op.drop_column('users', 'rank')
    for table in ('users', 'agreements', 'watchlists', 'cameras', 'deployments'):
        cols = ['organisation_id'] if table != 'agreements' else ['supplier_org_id', 'operator_org_id']
        for col in cols:
            with op.batch_alter_table(table) as batch:
                batch.drop_column(col)
    op.drop_table('enrolment_tokens')
    op.drop_table('organisations')
