"""A process stopped while it holds the audit chain's head cannot stall every other writer
(PostgreSQL, where writers on many machines wait for that one row lock).

A real process takes the head lock in an audited transaction and is stopped (``SIGSTOP``), as
a host paused past its lease would be. With ``cluster.audit_lock_idle_seconds`` the server ends
its session once it has been idle that long, the lock goes, and another writer commits; the
stopped process, resumed, finds its transaction gone, and its event is not in the chain. With
the setting at 0 (never), the other writer is still waiting when the process resumes: the
setting is what frees the lock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from govkit import KEY
from openlfr.audit.chain import verify
from openlfr.governance import Governance
from openlfr.store.models import AuditEvent

HOLDER = """
import sys, time
sys.path.insert(0, {govkit!r})
from govkit import KEY
from openlfr.governance import Governance
gov = Governance({url!r}, blob_root={blobs!r}, key=KEY, migrate=False)
with gov.transaction() as ctx:
    ctx.audit("stalled-writer", "test.stall", "test", 1)
    print("locked", flush=True)
    time.sleep(3)  # stopped here by the test (within ms of "locked"), so it cannot commit first
print("committed", flush=True)
"""


@pytest.mark.parametrize("idle_s", [1.5, 0.0])
def test_a_stopped_holder_of_the_audit_head_is_cut_off_and_its_event_not_kept(
        db_url: str, tmp_path: Path, idle_s: float) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite: one machine's processes, one write lock held by the file; no server to end a session")
    gov = Governance(db_url, blob_root=tmp_path / "blobs", key=KEY, migrate=False)
    script = HOLDER.format(govkit=str(Path(__file__).parent), url=db_url, blobs=str(tmp_path / "blobs"))
    env = dict(os.environ, OPENLFR_AUDIT_LOCK_IDLE_SECONDS=str(idle_s))
    holder = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=env)
    waited: list[float] = []
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        os.kill(holder.pid, signal.SIGSTOP)
        stopped = time.monotonic()

        def write() -> None:
            with gov.transaction() as ctx:
                ctx.audit("other-writer", "test.other", "test", 2)
            waited.append(time.monotonic() - stopped)

        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        writer.join(idle_s + 6 if idle_s else 4)
        if idle_s:
            assert waited, "the other writer is still waiting for the stopped process's lock"
            assert waited[0] < idle_s + 6
        else:
            assert not waited  # no limit: the stopped process holds every writer up
    finally:
        os.kill(holder.pid, signal.SIGCONT)
        out, err = holder.communicate(timeout=30)
    writer.join(30)
    assert waited
    with gov.reading() as ctx:
        actions = list(ctx.session.execute(select(AuditEvent.action).where(AuditEvent.action.like("test.%")))
                       .scalars())
        assert verify(ctx.session).ok
    if idle_s:
        assert holder.returncode != 0 and "committed" not in out
        assert "idle-in-transaction timeout" in err  # the server ended it, and said why
        assert actions == ["test.other"]  # the stopped writer's event never entered the chain
    else:
        assert holder.returncode == 0 and "committed" in out
        assert actions == ["test.stall", "test.other"]
    gov.close()
