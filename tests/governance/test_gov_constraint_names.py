"""Every constraint carries the name the naming convention gives it (store/tables/base.py), on
both databases: in a store made at 0011 and migrated by ``0012_constraint_names`` (its rows
kept, foreign keys and the ledger's triggers still enforced); a fresh store is checked by
``test_gov_store.test_migrations_match_the_models`` with :func:`misnamed_constraints`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import CheckConstraint, Connection, Engine, MetaData, UniqueConstraint, inspect, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.schema import DEFAULT_NAMING_CONVENTION

from openlfr.governance import Governance, Policy, deployments
from openlfr.store import make_engine, upgrade
from openlfr.store.engine import alembic_config
from openlfr.store.models import Base

from govkit import KEY, Clock, Estate, fake_template


def misnamed_constraints(conn: Connection) -> list[str]:
    """For each table of the models that the database has, each kind of constraint (and index) whose names in the
    database differ from the models' (the convention's): Alembic's comparison does not look at
    primary key names, and matches the others by their columns."""
    inspector = inspect(conn)
    wrong = []
    present = set(inspector.get_table_names())  # (a store at an earlier revision lacks later tables)
    for table in Base.metadata.sorted_tables:
        if table.name not in present:
            continue
        want: dict[str, set[Any]] = {
            "pk": {table.primary_key.name},
            "fk": {c.name for c in table.foreign_key_constraints},
            "uq": {c.name for c in table.constraints if isinstance(c, UniqueConstraint)},
            "ck": {c.name for c in table.constraints if isinstance(c, CheckConstraint)},
            "ix": {i.name for i in table.indexes},
        }
        have: dict[str, set[Any]] = {
            "pk": {inspector.get_pk_constraint(table.name)["name"]},
            "fk": {fk["name"] for fk in inspector.get_foreign_keys(table.name)},
            "uq": {uq["name"] for uq in inspector.get_unique_constraints(table.name)},
            "ck": {ck["name"] for ck in inspector.get_check_constraints(table.name)},
            # PostgreSQL lists the index behind a unique constraint too, under the constraint's name
            "ix": {ix["name"] for ix in inspector.get_indexes(table.name) if "duplicates_constraint" not in ix},
        }
        wrong += [f"{table.name} {kind}: {sorted(map(str, have[kind]))} != {sorted(map(str, want[kind]))}"
                  for kind in want if have[kind] != want[kind]]
    return wrong


def _rows(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table the database has now (reflected: later revisions add tables and
    columns), in primary key order."""
    found = MetaData()
    with engine.connect() as conn:
        found.reflect(conn)
        return {t.name: [tuple(r) for r in conn.execute(select(t).order_by(*t.primary_key.columns))]
                for t in found.sorted_tables if t.name != "alembic_version"}


def test_store_made_at_0011_is_renamed_and_keeps_its_rows(empty_db_url: str, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    engine = make_engine(empty_db_url)
    cfg = alembic_config(empty_db_url)
    # made as before the convention (Alembic names what the migrations create by the models'
    # convention): the databases' own names on PostgreSQL, mostly none on SQLite
    with monkeypatch.context() as mp, engine.begin() as conn:
        mp.setattr(Base.metadata, "naming_convention", DEFAULT_NAMING_CONVENTION)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0011_rights")
    # a world made by the services on the 0011 schema: parties, sharing and its ledger, a
    # watchlist, cameras and signage, a live deployment and its snapshot, audit events
    clock = Clock()
    # (as the services were then: blobs in files, no camera leases, which came with 0013)
    gov = Governance(engine=engine, blob_root=tmp_path / "blobs", key=KEY, policy=Policy(),
                     template_fn=fake_template, clock=clock, migrate=False, blobs="files")
    estate = Estate(gov, clock)
    estate.setup_users()
    with monkeypatch.context() as mp:
        mp.setattr(deployments, "_open_leases", lambda ctx, dep: None)
        dep_id, cam_id, _ = estate.live_deployment()
    with engine.begin() as conn:  # an alert with its details: rows pointing at deployments and cameras
        conn.execute(text("INSERT INTO alerts (id, deployment_id, camera_id, score, at, retain_until) "
                          "VALUES (1, :d, :c, 0.9, :t, :t)"),
                     {"d": dep_id, "c": cam_id, "t": clock.now.replace(tzinfo=None)})
        conn.execute(text("INSERT INTO alert_details (alert_id, track_id, frame_index, video_time, box, quality, "
                          "candidate_label, snapshot_hash, worker) VALUES (1, '', 3, 0.1, '[]', 0.8, '', :h, 'w')"),
                     {"h": "a" * 64})
    before = _rows(engine)
    assert all(before[t] for t in ("users", "shared_images", "ledger_entries", "deployment_cameras", "alert_details"))
    with engine.connect() as conn:
        assert len(misnamed_constraints(conn)) > 30  # nearly every table

    upgrade(engine, "0012_constraint_names")  # this revision alone (later ones add tables and columns)
    assert _rows(engine) == before
    upgrade(engine)

    with engine.connect() as conn:
        assert misnamed_constraints(conn) == []
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    # foreign keys are still enforced (on SQLite: back on for the engine's connections)
    with pytest.raises(DBAPIError), engine.begin() as conn:
        conn.execute(text("INSERT INTO alert_details (alert_id, track_id, frame_index, video_time, box, quality, "
                          "candidate_label, snapshot_hash, worker) VALUES (999, '', 3, 0.1, '[]', 0.8, '', '', 'w')"))
    # the sharing ledger is still append-only (SQLite's triggers went with the old table)
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(text("UPDATE ledger_entries SET actor = 'x'"))
    gov.close()
