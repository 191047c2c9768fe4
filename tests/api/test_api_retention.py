"""The running service enforces retention by itself: no one has to remember a cron job."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from apikit import build_store, make_gov, serve

from openlfr.api import create_app
from openlfr.governance import retention
from openlfr.store.models import Alert, AuditEvent


def test_serving_app_sweeps_expired_alerts(tmp_path: Path) -> None:
    gov = make_gov(tmp_path)
    dep, cam, _, _, _ = build_store(gov)
    with gov.transaction() as ctx:
        expired = retention.record_alert(ctx, dep, cam, 0.97, datetime.now(UTC))
        kept = retention.record_alert(ctx, dep, cam, 0.97, datetime.now(UTC))
        expired.retain_until = datetime.now(UTC) - timedelta(seconds=1)  # its retention period is over
        expired_id, kept_id = expired.id, kept.id
    app = create_app(gov, retention_sweep_s=0.2)
    with serve(app) as url:
        assert httpx.get(f"{url}/health").status_code == 200
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with gov.transaction() as ctx:  # the sweep commits, then counts itself: wait for both
                if ctx.session.get(Alert, expired_id).deleted_at is not None and app.state.sweeper.sweeps:
                    break
            time.sleep(0.1)
        sweeps = app.state.sweeper.sweeps
    with gov.transaction() as ctx:
        assert ctx.session.get(Alert, expired_id).deleted_at is not None
        assert ctx.session.get(Alert, kept_id).deleted_at is None
        actions = [e.action for e in ctx.session.query(AuditEvent).order_by(AuditEvent.seq)]
    assert sweeps >= 1 and "alert.pseudonymise" in actions and "retention.sweep" in actions
    assert not app.state.sweeper._thread.is_alive()  # stopped with the server
    gov.close()
