"""The reviewers' stream resumes on any replica: each alert event's ``id:`` is the alert's cursor
(its place in commit order), and a browser that reconnects to another API replica with
``Last-Event-ID`` gets exactly the alerts committed after it, none twice, none skipped, while
camera workers keep committing. Two apps on one PostgreSQL store (each under uvicorn on a
loopback port); on SQLite, one app."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from apikit import KEY, bearer_tokens, build_store, serve
from govkit import fake_template
from openlfr.api import ApiSettings, create_app
from openlfr.api.routes import alerts as alert_routes
from openlfr.governance import Governance
from openlfr.pipeline.records import AlertRecord, store_alert
from openlfr.store.models import Alert

SRC = Path(__file__).resolve().parents[2] / "src"


@dataclass
class Store:
    url: str
    blobs: Path
    deployment: int
    camera: int
    entries: list[int]

    def governance(self) -> Governance:
        return Governance(self.url, blob_root=self.blobs, key=KEY, template_fn=fake_template, migrate=False)


@pytest.fixture
def store(db_url: str, tmp_path: Path) -> Store:
    gov = Governance(db_url, blob_root=tmp_path / "blobs", key=KEY, template_fn=fake_template, migrate=False)
    try:
        dep, cam, entries, _, _ = build_store(gov)
    finally:
        gov.close()
    return Store(db_url, tmp_path / "blobs", dep, cam, entries)


def commit_alert(gov: Governance, store: Store, entry: int = 0) -> int:
    """An alert committed as a camera worker does (each its own pass); its id."""
    rec = AlertRecord(deployment_id=store.deployment, camera_id=store.camera, entry_id=store.entries[entry],
                      label="x", score=0.8, at=datetime.now(UTC), track_id="t1", frame_index=1, video_time=0.04,
                      box=[1, 2, 30, 40], quality=0.9, crop=b"\x89PNG crop", snapshot_hash="0" * 64,
                      pass_window_s=0, attempt_key=uuid.uuid4().hex)
    stored = gov.run(lambda ctx: store_alert(ctx, rec, "pipeline:test"))
    assert stored is not None
    return stored.alert_id


class Reader:
    """A reviewer's stream on one replica, read on its own thread until ``want`` alerts came:
    (event id, alert id) pairs."""

    def __init__(self, url: str, token: str, want: int, last_event_id: str | None = None) -> None:
        self.want = want
        headers = {"Authorization": f"Bearer {token}"} | ({"Last-Event-ID": last_event_id} if last_event_id else {})
        self.client = httpx.Client(base_url=url, headers=headers, timeout=httpx.Timeout(10, read=20))
        self.got: list[tuple[int, int]] = []
        self.connected, self.stop, self.done = threading.Event(), threading.Event(), threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        assert self.connected.wait(15), f"the stream did not connect: {self.error!r}"

    def _read(self) -> None:
        try:
            with self.client.stream("GET", "/api/alerts/stream") as r:
                assert r.status_code == 200, r.status_code
                ident = None
                for line in r.iter_lines():
                    if line == ": connected":
                        self.connected.set()
                    elif line.startswith("id: "):
                        ident = int(line.removeprefix("id: "))
                    elif line.startswith("data: ") and ident is not None:
                        self.got.append((ident, json.loads(line.removeprefix("data: "))["alert_id"]))
                        ident = None
                    if self.stop.is_set() or len(self.got) >= self.want:
                        return  # (leaving the block closes the connection, as a closed browser tab does)
        except BaseException as err:  # noqa: BLE001 - reported by the test
            if not self.stop.is_set():  # (closing the client ends the read with an error)
                self.error = err
        finally:
            self.connected.set()
            self.done.set()

    def wait(self, seconds: float = 30) -> list[tuple[int, int]]:
        """The alerts received once ``want`` came (or after ``seconds``)."""
        self.done.wait(seconds)
        self.stop.set()
        self.thread.join(20)  # (a stream still waiting ends at its next keep-alive)
        self.client.close()
        return list(self.got)


def _cursors(gov: Governance) -> dict[int, int]:
    with gov.reading() as ctx:
        return {i: c for i, c in ctx.session.execute(select(Alert.id, Alert.cursor))}


def test_a_stream_resumes_on_another_replica_with_every_alert_once(store: Store, db_url: str) -> None:
    two = db_url.startswith("postgresql")
    settings = ApiSettings(login_attempts=1000)
    govs = [store.governance() for _ in range(2 if two else 1)]
    writer = store.governance()
    with ExitStack() as stack:
        for g in govs + [writer]:
            stack.callback(g.close)
        first = stack.enter_context(ExitStack())  # replica A, killed half-way
        url_a = first.enter_context(serve(create_app(govs[0], settings=settings)))
        url_b = stack.enter_context(serve(create_app(govs[-1], settings=settings))) if two else url_a
        token = bearer_tokens(url_a)["reviewer"]

        on_a = Reader(url_a, token, want=2)  # from now; the browser is closed after two alerts
        made = [commit_alert(writer, store, k % 2) for k in range(4)]
        got_a = on_a.wait()
        if two:
            first.close()  # the replica the stream was on goes away
        made += [commit_alert(writer, store) for _ in range(3)]  # while the browser is reconnecting

        # (the other two of the first four, three while reconnecting, twelve while streaming)
        on_b = Reader(url_b, token, want=2 + 3 + 12, last_event_id=str(got_a[-1][0]))

        def work() -> None:  # camera workers keep committing, concurrently
            for k in range(4):
                made.append(commit_alert(writer, store, k % 2))

        workers = [threading.Thread(target=work) for _ in range(3)]
        for t in workers:
            t.start()
        for t in workers:
            t.join(60)
        got_b = on_b.wait()
        cursor = _cursors(writer)
    assert on_a.error is None and on_b.error is None, (on_a.error, on_b.error)
    assert [a for _, a in got_a] == made[:2]
    sent = [a for _, a in got_a + got_b]
    assert sorted(sent) == sorted(made) and len(set(sent)) == len(sent)  # every alert, once, across replicas
    # in commit order, each event's id its alert's cursor
    assert all(ident == cursor[a] for ident, a in got_a + got_b)
    assert [i for i, _ in got_b] == sorted(i for i, _ in got_b) and got_b[0][0] > got_a[-1][0]


def test_an_alert_committed_by_another_process_wakes_the_stream(store: Store, db_url: str,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """One ``LISTEN`` per API process: a camera worker's commit in another process reaches an
    open stream at once, not at the next poll of the store (made 60 s here)."""
    if not db_url.startswith("postgresql"):
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's (SQLite has one process tree: its own commits wake streams)")
    monkeypatch.setattr(alert_routes, "STORE_POLL_S", 60.0)
    gov = store.governance()
    try:
        with serve(create_app(gov, settings=ApiSettings(login_attempts=1000))) as url:
            reader = Reader(url, bearer_tokens(url)["reviewer"], want=1)
            code = (
                "import sys, uuid; from datetime import UTC, datetime; from pathlib import Path\n"
                "from openlfr.governance import Governance\n"
                "from openlfr.pipeline.records import AlertRecord, store_alert\n"
                "gov = Governance(sys.argv[1], blob_root=Path(sys.argv[2]), key=bytes(range(32)), migrate=False)\n"
                "rec = AlertRecord(deployment_id=int(sys.argv[3]), camera_id=int(sys.argv[4]), "
                "entry_id=int(sys.argv[5]), label='x', score=0.8, at=datetime.now(UTC), track_id='t1', "
                "frame_index=1, video_time=0.0, box=[1, 2, 3, 4], quality=0.9, crop=b'crop', snapshot_hash='0' * 64, "
                "pass_window_s=0, attempt_key=uuid.uuid4().hex)\n"
                "print(gov.run(lambda ctx: store_alert(ctx, rec, 'pipeline:elsewhere')).alert_id)\n")
            env = os.environ | {"PYTHONPATH": str(SRC)}
            out = subprocess.run([sys.executable, "-c", code, store.url, str(store.blobs), str(store.deployment),
                                  str(store.camera), str(store.entries[0])], env=env, capture_output=True, text=True,
                                 timeout=120)
            assert out.returncode == 0, out.stderr
            committed = time.monotonic()
            got = reader.wait(seconds=30)
            waited = time.monotonic() - committed
    finally:
        gov.close()
    assert [a for _, a in got] == [int(out.stdout.strip())]
    assert waited < 10  # woken by the notification, not by the 60 s poll
