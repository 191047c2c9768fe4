"""A store made before organisations existed migrates by the documented rule (migration 0005),
and says what it did in the audit log: nothing is assigned silently."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from openlfr import audit
from openlfr.store import make_engine, upgrade
from openlfr.store.engine import alembic_config
from openlfr.face.registry import DLIB_RESNET_ID
from openlfr.store.models import Agreement, AuditEvent, Camera, Deployment, Organisation, SharedImage, User, Watchlist

T = datetime(2030, 1, 1, 9, 0)
OLD_USERS = [  # id, name, role, organisation text as typed before
    (1, "alice", "operator_admin", "Estate Ltd"),
    (2, "met", "supplier", "Met Police"),
    (3, "supt", "authorising_officer", "met police "),  # same force, other spelling
    (4, "ruth", "reviewer", "estate ltd"),
    (5, "ico", "auditor", "ICO"),
    (6, "drifter", "reviewer", ""),
]


def _fill_old_store(url: str) -> None:
    engine = make_engine(url)
    cfg = alembic_config(url)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0004_api")
    with engine.begin() as conn:
        for uid, name, role, org in OLD_USERS:
            conn.execute(text("INSERT INTO users (id, name, role, organisation, created_at, active) "
                              "VALUES (:i, :n, :r, :o, :t, true)"), {"i": uid, "n": name, "r": role, "o": org, "t": T})
        conn.execute(text(
            "INSERT INTO agreements (id, supplier_id, operator, purpose, lawful_basis, valid_from, valid_until, "
            "image_limit, allowed_categories, allow_under_18, status, created_by_id, created_at) VALUES "
            "(1, 2, 'Estate Ltd', 'p', 'b', :t, :t, 5, '[\"wanted\"]', false, 'active', 2, :t), "
            "(2, 2, 'Other Estate', 'p', 'b', :t, :t, 5, '[\"wanted\"]', false, 'draft', 2, :t)"), {"t": T})
        conn.execute(text("INSERT INTO watchlists (id, name, criteria, size_cap, created_by_id, created_at) "
                          "VALUES (1, 'wl', 'c', 10, 1, :t)"), {"t": T})
        conn.execute(text("INSERT INTO cameras (id, name, location, zone, stream_url, created_at) VALUES "
                          "(1, 'north', 'n', '', '', :t), (2, 'south', 's', '', '', :t)"), {"t": T})
        conn.execute(text(
            "INSERT INTO deployments (id, purpose, watchlist_id, start, \"end\", threshold, dpia_ref, necessity, "
            "status, requested_by_id, requested_at, confirmations_required, snapshot_hash) VALUES "
            "(1, 'p', 1, :t, :t, 0.6, 'D', 'n', 'requested', 1, :t, 2, NULL), "
            "(2, 'p', 1, :t, :t, 0.6, 'D', 'n', 'authorised', 1, :t, 2, :h)"), {"t": T, "h": "a" * 64})
        conn.execute(text(
            "INSERT INTO shared_images (id, agreement_id, sha256, category, reason, subject_ref, image_date, under_18, "
            "quality, shared_by_id, shared_at) VALUES (1, 1, :h, 'wanted', 'r', 'S-1', :d, false, 0.9, 2, :t)"),
            {"h": "b" * 64, "d": T.date(), "t": T})
        with Session(bind=conn) as session:  # camera 2 was added by ruth (of the estate), per the audit log
            audit.append(session, actor="ruth", action="camera.add", object_type="camera", object_id="2",
                         details={}, at=datetime(2030, 1, 1, tzinfo=UTC))
            session.flush()
    engine.dispose()


def test_an_old_store_migrates_by_the_documented_rule(empty_db_url: str) -> None:
    _fill_old_store(empty_db_url)
    engine = make_engine(empty_db_url)
    upgrade(engine)
    with Session(engine) as session:
        orgs = {o.name: o for o in session.execute(select(Organisation)).scalars()}
        assert {n: (o.kind, o.is_host) for n, o in orgs.items()} == {
            "Estate Ltd": ("site_operator", True), "Met Police": ("police_force", False),
            "ICO": ("oversight_body", False), "Unassigned (migrated)": ("site_operator", False),
            "Other Estate": ("site_operator", False)}
        users = {u.name: u for u in session.execute(select(User)).scalars()}
        assert {n: u.organisation for n, u in users.items()} == {
            "alice": "Estate Ltd", "met": "Met Police", "supt": "Met Police", "ruth": "Estate Ltd", "ico": "ICO",
            "drifter": "Unassigned (migrated)"}
        assert users["supt"].rank is None  # no rank is guessed: the force's admin must record it
        assert not any(u.role == "admin" for u in users.values())
        ag1, ag2 = session.get(Agreement, 1), session.get(Agreement, 2)
        assert (ag1.force, ag1.operator, ag2.operator) == ("Met Police", "Estate Ltd", "Other Estate")
        assert session.get(Watchlist, 1).organisation_id == orgs["Estate Ltd"].id
        assert session.get(Deployment, 1).organisation_id == orgs["Estate Ltd"].id
        assert session.get(Deployment, 1).kind == "live"
        assert session.get(Camera, 1).organisation_id == orgs["Estate Ltd"].id  # no audit event: the host
        assert session.get(Camera, 2).organisation_id == orgs["Estate Ltd"].id  # ruth's organisation
        event = session.execute(select(AuditEvent).where(
            AuditEvent.action == "store.migrate_organisations")).scalar_one()
        details = json.loads(event.details)
        listed = {o["organisation"]: [u["name"] for u in o["users"]] for o in details["organisations"]}
        assert listed["Met Police"] == ["met", "supt"] and listed["Unassigned (migrated)"] == ["drifter"]
        assert details["rule"].startswith("docs/parties.md")
        assert audit.verify(session).ok
        # migration 0006: every template and snapshot made before was the dlib ResNet's
        assert session.get(SharedImage, 1).template_model == DLIB_RESNET_ID
        assert (session.get(Deployment, 1).model_id, session.get(Deployment, 2).model_id) == (None, DLIB_RESNET_ID)
    engine.dispose()


def test_a_new_store_gets_no_migration_event(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'new.db'}")
    upgrade(engine)
    with Session(engine) as session:
        assert session.execute(select(Organisation)).first() is None
        assert audit.verify(session).count == 0
    engine.dispose()
