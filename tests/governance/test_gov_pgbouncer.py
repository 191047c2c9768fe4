"""The store through PgBouncer in transaction mode (docs/scale.md, "Connections"): migrating and
opening it, many concurrent audited writes (each connection running the same statements more
than 5 times, when psycopg would start preparing them), an alert with its crop stored and read
back, ``openlfr audit verify`` through it, and one retention sweep at a time across replicas
(the sweep's lock is transaction-scoped, so it holds through PgBouncer).

Needs ``OPENLFR_TEST_PGBOUNCER_URL`` (``source .ci/pgbouncer.sh`` after ``.ci/postgres.sh``:
PgBouncer in front of that server); skipped without it. LISTEN is not tested here: it needs a
session, and ``cluster.listen_url`` gives it a direct connection.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, make_url, select, text

from govkit import KEY, Clock, Estate, fake_template
from openlfr.audit import verify
from openlfr.audit.consistency import check_store
from openlfr.governance import Governance, Policy
from openlfr.pipeline.records import AlertRecord, alert_detail, store_alert
from openlfr.rights.keys import media_bytes
from openlfr.store import make_engine
from openlfr.store.models import AuditEvent, Deployment, MediaItem, WatchlistEntry
from test_gov_single_sweeper import run_sweepers, watch_sweeps

BOUNCER_ENV, PG_ENV = "OPENLFR_TEST_PGBOUNCER_URL", "OPENLFR_TEST_POSTGRES_URL"
CROP = b"\x89PNG\r\n\x1a\n" + bytes(range(200))  # stored and read back as opaque bytes
THREADS, WRITES = 8, 12  # 12 transactions of the same statements on each thread's connections



def test_postgres_pools_follow_the_cluster_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """API and host-agent processes get ``cluster.pool_size``, camera workers
    ``cluster.worker_pool_size`` (no server needed: an engine connects when first used)."""
    from openlfr.config import get_settings
    from openlfr.pipeline.worker import StoreConfig

    monkeypatch.setenv("OPENLFR_POOL_SIZE", "7")
    monkeypatch.setenv("OPENLFR_WORKER_POOL_SIZE", "3")
    get_settings.cache_clear()
    url = "postgresql+psycopg://openlfr@127.0.0.1:9/nothing"
    worker_gov = StoreConfig(url, str(tmp_path / "blobs"), base64.b64encode(KEY).decode()).governance()
    engines = {"process": make_engine(url), "worker": worker_gov.engine}
    try:
        shapes = {k: (e.pool.size(), e.pool._max_overflow, e.pool._pre_ping)  # type: ignore[attr-defined]
                  for k, e in engines.items()}
        assert shapes == {"process": (7, 14, True), "worker": (3, 6, True)}
    finally:
        for e in engines.values():
            e.dispose()
        get_settings.cache_clear()


@pytest.fixture
def bouncer_url() -> Iterator[str]:
    """A new, empty database on the test server, reached through PgBouncer (dropped after)."""
    bouncer, direct = os.environ.get(BOUNCER_ENV), os.environ.get(PG_ENV)
    if not bouncer or not direct:
        pytest.skip(f"{BOUNCER_ENV} not set: no PgBouncer to test through (source .ci/pgbouncer.sh after "
                    ".ci/postgres.sh)")
    name = f"openlfr_b_{uuid.uuid4().hex[:12]}"
    admin = make_engine(direct).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(bouncer).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _blobs() -> Path:
    return Path(os.environ["OPENLFR_DATA_DIR"]) / "blobs"  # where `openlfr audit verify` looks


def _hammer(work: object, threads: int = THREADS) -> list[str]:
    """Run ``work()`` on ``threads`` threads at once; the errors they raised."""
    errors: list[str] = []

    def run() -> None:
        try:
            work()  # type: ignore[operator]
        except Exception as err:  # noqa: BLE001 - collected for the assertion
            errors.append(f"{type(err).__name__}: {str(err).splitlines()[0]}")

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    return errors


@pytest.mark.postgres
def test_the_store_works_through_pgbouncer_in_transaction_mode(bouncer_url: str) -> None:
    clock = Clock()
    gov = Governance(bouncer_url, blob_root=_blobs(), key=KEY, policy=Policy(), template_fn=fake_template,
                     clock=clock)  # migrates the empty database through PgBouncer
    try:
        estate = Estate(gov, clock)
        estate.setup_users()
        dep, cam, _ = estate.live_deployment()

        def writes() -> None:
            for i in range(WRITES):
                with gov.transaction() as ctx:
                    ctx.session.get(Deployment, dep)
                    ctx.audit("system:test", "test.write", "thing", i, n=i)
                    ctx.audit("system:test", "test.write", "thing", i, n=-i)

        assert _hammer(writes) == []
        with gov.transaction() as ctx:
            d = ctx.session.get(Deployment, dep)
            entry = ctx.session.execute(select(WatchlistEntry.id).where(WatchlistEntry.watchlist_id == d.watchlist_id)
                                        ).scalars().first()
            stored = store_alert(ctx, AlertRecord(
                deployment_id=dep, camera_id=cam, entry_id=entry, label="Subject A", score=0.82, at=ctx.now(),
                track_id="t1", frame_index=3, video_time=0.1, box=[1, 2, 20, 20], quality=0.9, crop=CROP,
                snapshot_hash=d.snapshot_hash or ""), "test-worker")  # (its notification: pg_notify at commit)
        assert stored is not None
        alert_id = stored.alert_id
        with gov.transaction() as ctx:
            item = ctx.session.execute(select(MediaItem).where(MediaItem.alert_id == alert_id)).scalar_one()
            assert media_bytes(ctx, item) == CROP
            assert (alert_detail(ctx, alert_id) or {})["box"] == [1, 2, 20, 20]
            writes_done = ctx.session.execute(select(func.count()).select_from(AuditEvent)
                                              .where(AuditEvent.action == "test.write")).scalar_one()
            assert writes_done == THREADS * WRITES * 2
            assert verify(ctx.session).ok and check_store(ctx.session, gov.blob_store).ok
    finally:
        gov.close()
    env = {**os.environ, "OPENLFR_DATABASE_URL": bouncer_url, "OPENLFR_KEY": base64.b64encode(KEY).decode()}
    out = subprocess.run([sys.executable, "-c", "from openlfr.cli import main; main()", "audit", "verify"],
                         capture_output=True, text=True, env=env, timeout=120, check=False)
    assert out.returncode == 0 and "audit chain OK" in out.stdout, out.stdout + out.stderr


@pytest.mark.postgres
def test_one_sweeper_at_a_time_through_pgbouncer(bouncer_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    Governance(bouncer_url, blob_root=_blobs(), key=KEY).close()  # migrate once
    govs = [Governance(bouncer_url, blob_root=_blobs(), key=KEY, policy=Policy(), migrate=False) for _ in range(3)]
    try:
        with watch_sweeps(monkeypatch) as seen:
            sweepers = run_sweepers(govs, 1.5)
        assert seen.most == 1 and seen.calls >= 3 and sum(s.sweeps for s in sweepers) == seen.calls
        assert sum(s.skipped for s in sweepers) > 0  # the lock was found taken, through PgBouncer
    finally:
        for g in govs:
            g.close()


@pytest.mark.postgres
def test_prepared_statements_would_break_through_pgbouncer(bouncer_url: str) -> None:
    """Why :func:`openlfr.store.make_engine` turns psycopg's automatic preparation off: with it on
    (after 5 runs of a statement on a connection), the same concurrent load fails."""
    engine = create_engine(bouncer_url, pool_size=THREADS)  # psycopg's default prepare_threshold: 5

    def queries() -> None:
        for i in range(WRITES * 2):
            with engine.begin() as conn:
                conn.execute(text("SELECT CAST(:i AS integer) + 1"), {"i": i}).scalar_one()

    try:
        errors = _hammer(queries)
    finally:
        engine.dispose()
    assert any("prepared statement" in e for e in errors), errors
