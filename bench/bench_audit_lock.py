"""Audited transactions per second with N concurrent writers, on PostgreSQL and on SQLite.

Every audited write appends to one hash chain, whose head row is locked until the transaction
commits (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite's single write lock): audited
writers serialise on it. This measures how far that goes. N writer processes (N = 1, 2, 4,
8, 16 by default; one process and one connection each, as camera workers are) loop
``gov.run(work)`` for ``--seconds``, started together, on a fresh database of each kind:

* ``audit``: ``work`` appends one audit event and nothing else (the lock alone);
* ``alert``: shaped like an alert transaction: lock the writer's lease-like row (the epoch
  fence), bump its pass-like row, insert an encrypted-crop-sized blob row (``--crop-bytes``)
  and append two audit events (``alert.record``, ``crop.record``). FK-free stand-in rows, so
  no deployment is needed; the contended row is the same audit head.

Figures per N: committed transactions per second (all writers together), the ratio to N=1
of the same run (the baseline: above 1, concurrency still adds throughput; under 1, writers
only queue), and each transaction's latency (``gov.run`` call, retries included) at p50 and
p99 in milliseconds; ``retries``: transactions ``Governance.run`` had to run again (store
busy). At the end the whole chain is verified (``openlfr audit verify``'s check) and the
bench's events counted against the commits (none lost, none extra).

PostgreSQL: ``--database-url`` or ``OPENLFR_TEST_POSTGRES_URL`` (``bash .ci/postgres.sh``
starts a throwaway server); a database is created on that server and dropped afterwards.
The database server runs on the same machine, sharing its CPUs: figures are for this machine.

    python bench/bench_audit_lock.py [--writers 1,2,4,8,16] [--seconds 5] [--quick] [--json]
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing as mp
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import func, make_url, select, text, update
from sqlalchemy.orm import Session

from _common import add_postgres_option
from openlfr import audit
from openlfr.config import Policy
from openlfr.governance import Governance
from openlfr.store import make_engine, upgrade
from openlfr.store.models import AuditEvent, RateLimit, StoredBlob

KEY = bytes(range(32))  # a bench store's key (nothing secret is stored)


def _work(shape: str, writer: int, crop_bytes: int) -> Callable[[Any], None]:
    """The transaction body a writer loops on (see the module docstring)."""
    name = f"bench-writer-{writer}"
    lease, passing = f"bench-lease|{writer}", f"bench-pass|{writer}"
    n = 0

    def audit_only(ctx: Any) -> None:
        nonlocal n
        n += 1
        ctx.audit(name, "bench.audit", "bench", n, writer=writer)

    def alert_like(ctx: Any) -> None:
        nonlocal n
        n += 1
        s = ctx.session
        epoch = s.execute(select(RateLimit.count).where(RateLimit.key == lease).with_for_update()).scalar_one()
        s.execute(update(RateLimit).where(RateLimit.key == passing).values(count=RateLimit.count + 1,
                                                                           window_start=ctx.now()))
        blob = uuid.uuid4().hex
        s.add(StoredBlob(id=blob, sealed=os.urandom(crop_bytes), created_at=ctx.now()))
        s.flush()
        ctx.audit(name, "bench.alert", "bench", n, writer=writer, epoch=epoch, score=0.5)
        ctx.audit(name, "bench.crop", "blob", blob, writer=writer)

    return audit_only if shape == "audit" else alert_like


EVENTS_PER_TX = {"audit": 1, "alert": 2}


class _Retries(logging.Handler):
    """Counts ``Governance.run``'s "store busy; retrying" warnings."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += record.getMessage().startswith("store busy")


def writer_main(writer: int, url: str, blob_root: str, crop_bytes: int, inbox: Any, outbox: Any) -> None:
    """One writer process: for each round it is sent, warm up, say ready, wait for the start
    time, loop its transaction until the end time, and send back its latencies."""
    retries = _Retries()
    logging.getLogger("openlfr.governance.context").addHandler(retries)
    logging.getLogger("openlfr.governance.context").propagate = False
    gov = Governance(url, blob_root=Path(blob_root), key=KEY, policy=Policy(), migrate=False)
    try:
        while (cmd := inbox.get()) is not None:
            shape = cmd
            work = _work(shape, writer, crop_bytes)
            for _ in range(2):  # connection made, statements compiled
                gov.run(work)
            outbox.put(("ready", writer))
            start, end = inbox.get()
            time.sleep(max(0.0, start - time.monotonic()))
            retries.count = 0
            lat: list[float] = []
            t = time.monotonic()
            while t < end:
                gov.run(work)
                t2 = time.monotonic()
                lat.append(t2 - t)
                t = t2
            outbox.put(("done", writer, lat, t, retries.count))
    except Exception as err:
        outbox.put(("error", writer, f"{type(err).__name__}: {err}"))
        raise
    finally:
        gov.close()


@contextmanager
def fresh_database(kind: str, pg_url: str | None, tmp: Path) -> Iterator[str]:
    """A new, migrated store database: a SQLite file in ``tmp``, or a database created on the
    PostgreSQL server of ``pg_url`` (dropped afterwards)."""
    if kind == "sqlite":
        url = f"sqlite:///{tmp / 'bench.db'}"
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url
        return
    assert pg_url is not None
    name = f"openlfr_bench_{uuid.uuid4().hex[:10]}"
    admin = make_engine(pg_url).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(pg_url).set(database=name).render_as_string(hide_password=False)
    try:
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def seed(url: str, blob_root: Path, writers: int) -> None:
    """The writers' lease-like and pass-like rows, and a first audited transaction (it makes
    the checkpoint signing key and the first checkpoint, so no writer races to make them)."""
    gov = Governance(url, blob_root=blob_root, key=KEY, policy=Policy(), migrate=False)

    def rows(ctx: Any) -> None:
        for i in range(writers):
            for key in (f"bench-lease|{i}", f"bench-pass|{i}"):
                ctx.session.add(RateLimit(key=key, window_start=ctx.now(), count=1))
        ctx.audit("bench", "bench.seed", "bench", 0, writers=writers)

    gov.run(rows)
    gov.close()


def durability(url: str) -> dict[str, str]:
    """The settings that decide what a commit waits for (a test server may have them off)."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "postgresql":
                names = ("fsync", "synchronous_commit", "server_version")
                return {n: str(conn.exec_driver_sql(f"SHOW {n}").scalar_one()) for n in names}
            return {"journal_mode": str(conn.exec_driver_sql("PRAGMA journal_mode").scalar_one()),
                    "synchronous": str(conn.exec_driver_sql("PRAGMA synchronous").scalar_one())}
    finally:
        engine.dispose()


def _expect(outbox: Any, tag: str, timeout: float) -> tuple[Any, ...]:
    msg = outbox.get(timeout=timeout)
    if msg[0] != tag:
        raise RuntimeError(f"writer {msg[1]}: {msg[2] if msg[0] == 'error' else msg!r}")
    return tuple(msg)


def run_round(procs: list[tuple[Any, Any]], outbox: Any, n: int, shape: str, seconds: float) -> dict[str, Any]:
    """One measurement: the first ``n`` writers loop ``shape`` for ``seconds``, together."""
    for inbox, _ in procs[:n]:
        inbox.put(shape)
    for _ in range(n):
        _expect(outbox, "ready", 300)
    start = time.monotonic() + 0.2
    for inbox, _ in procs[:n]:
        inbox.put((start, start + seconds))
    lat: list[float] = []
    ends, retries = [], 0
    for _ in range(n):
        _, _, wlat, end, wretries = _expect(outbox, "done", seconds + 600)
        lat += wlat
        ends.append(end)
        retries += wretries
    wall = max(ends) - start
    ms = np.asarray(lat) * 1000
    return {"writers": n, "transactions": len(lat), "wall_s": round(wall, 2), "tx_per_s": round(len(lat) / wall, 1),
            "p50_ms": round(float(np.percentile(ms, 50)), 2) if len(ms) else None,
            "p99_ms": round(float(np.percentile(ms, 99)), 2) if len(ms) else None, "retries": retries}


def bench_database(kind: str, pg_url: str | None, writers: list[int], shapes: list[str], seconds: float,
                   crop_bytes: int) -> dict[str, Any]:
    """Every shape and N on one fresh database of ``kind``, then the chain verified."""
    ctx = mp.get_context("spawn")  # fresh interpreters: no connection or lock inherited by a fork
    out: dict[str, Any] = {"database": kind}
    with tempfile.TemporaryDirectory() as tmp, fresh_database(kind, pg_url, Path(tmp)) as url:
        blob_root = Path(tmp) / "blobs"
        seed(url, blob_root, max(writers))
        out["server"] = durability(url)
        outbox = ctx.Queue()
        procs = []
        for i in range(max(writers)):
            inbox = ctx.Queue()
            p = ctx.Process(target=writer_main, args=(i, url, str(blob_root), crop_bytes, inbox, outbox), daemon=True)
            p.start()
            procs.append((inbox, p))
        committed = {"audit": 0, "alert": 0}
        try:
            for shape in shapes:
                rounds = []
                for n in writers:
                    r = run_round(procs, outbox, n, shape, seconds)
                    rounds.append(r)
                    committed[shape] += r["transactions"] + 2 * n  # the 2 warm-up transactions too
                    print(f"  {kind} {shape} N={n}: {r['tx_per_s']} tx/s, p99 {r['p99_ms']} ms", flush=True)
                base = rounds[0]["tx_per_s"] if rounds and rounds[0]["writers"] == writers[0] else None
                for r in rounds:
                    r["ratio_to_first"] = round(r["tx_per_s"] / base, 2) if base else None
                out[shape] = rounds
        finally:
            for inbox, _ in procs:
                inbox.put(None)
            for _, p in procs:
                p.join(timeout=30)
        engine = make_engine(url)
        with Session(engine) as session:
            result = audit.verify(session)
            counted = {shape: session.execute(select(func.count()).select_from(AuditEvent).where(
                AuditEvent.action.in_([f"bench.{shape}"] + (["bench.crop"] if shape == "alert" else [])))).scalar_one()
                for shape in committed}
        engine.dispose()
        expected = {shape: committed[shape] * EVENTS_PER_TX[shape] for shape in committed}
        out["verify"] = {"ok": result.ok, "message": result.message(), "bench_events": counted,
                         "expected_events": expected, "events_match_commits": counted == expected}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--writers", default="1,2,4,8,16", help="comma-separated writer counts (the first is the baseline)")
    ap.add_argument("--seconds", type=float, default=5.0, help="measured seconds per writer count")
    ap.add_argument("--shape", choices=["audit", "alert", "both"], default="both")
    ap.add_argument("--crop-bytes", type=int, default=20_000, help="blob row size of the alert shape")
    add_postgres_option(ap)
    ap.add_argument("--databases", default="postgres,sqlite", help="which of postgres,sqlite to run")
    ap.add_argument("--quick", action="store_true", help="N = 1, 2, 4 for 1 s each, for development")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.writers, args.seconds = "1,2,4", 1.0
    writers = [int(x) for x in args.writers.split(",")]
    shapes = ["audit", "alert"] if args.shape == "both" else [args.shape]
    results: dict[str, Any] = {"cpu_count": os.cpu_count(), "seconds": args.seconds, "writers": writers, "runs": []}
    for kind in args.databases.split(","):
        if kind == "postgres" and not args.database_url:
            print("postgres: skipped, no server (give --database-url or OPENLFR_TEST_POSTGRES_URL; "
                  "`source .ci/postgres.sh` starts one)")
            continue
        results["runs"].append(bench_database(kind, args.database_url, writers, shapes, args.seconds, args.crop_bytes))
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"\naudited transactions, N writer processes ({os.cpu_count()} CPUs, database server on the same machine), "
          f"{args.seconds} s each; ratio: tx/s over N={writers[0]}'s")
    for run in results["runs"]:
        server = ", ".join(f"{k}={v}" for k, v in run["server"].items())
        for shape in shapes:
            print(f"{run['database']} ({server}), {shape} transactions ({EVENTS_PER_TX[shape]} audit event(s) each):")
            print(f"  {'N':>3} {'tx/s':>9} {'ratio':>6} {'p50 ms':>8} {'p99 ms':>8} {'retries':>7}")
            for r in run[shape]:
                print(f"  {r['writers']:>3} {r['tx_per_s']:>9} {r['ratio_to_first']:>6} {r['p50_ms']:>8} "
                      f"{r['p99_ms']:>8} {r['retries']:>7}")
        v = run["verify"]
        print(f"  audit verify: {v['message']}; bench events {v['bench_events']} "
              f"{'=' if v['events_match_commits'] else '!='} committed {v['expected_events']}")


if __name__ == "__main__":
    main()
