"""Frame-to-reviewer latency through PostgreSQL with 2 API replicas: p50 and p95, in ms.

One host agent (``openlfr run --host-id bench``) analyses paced clips (``tests/e2e/chaoskit.py``:
grey frames with scripted passes of an enrolled real face, one alert per pass); two API replicas
(``openlfr serve --no-cameras``) serve the reviewers' stream, one SSE client on each. Nothing
ties a replica to the host: an alert reaches a replica only through the store (its NOTIFY, or
its poll as a safety net).

For every alert each client receives:

* ``from frame``: receipt time - the alert's ``at`` (the wall time of the frame that raised it,
  as the stream sends it). For a recording ``at`` is the worker's start time plus the frame's
  video time, so it runs slightly early: this figure includes the worker's start-up offset;
* ``from capture``: receipt time - the frame's capture time (when the paced clip delivered it),
  which is the host's announcement time less the capture-to-commit latency it reports
  (``latency_ms``); the closer figure, where the host announced the alert;
* ``commit to reviewer``: receipt time - the announcement on the host's stdout (just after the
  commit): the stream's own share.

PostgreSQL: ``--database-url`` or ``OPENLFR_TEST_POSTGRES_URL`` (``bash .ci/postgres.sh``
starts a throwaway server); a database is created and dropped. The server, host, replicas and
clients share this machine's CPUs: figures are for this machine.

    python bench/bench_reviewer_latency.py [--cameras 2] [--passes 6] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import numpy as np
from _common import REPO, add_postgres_option, data_dir, require_postgres

sys.path.insert(0, str(REPO / "tests" / "e2e"))
from chaoskit import (  # noqa: E402
    REFERENCE, Cluster, SseClient, StoreProbe, build_world, chaos_clips, fresh_database, tail,
)


def percentiles(values: list[float]) -> dict[str, float | int | None]:
    """n, p50, p95 and max of ``values`` (ms), rounded."""
    if not values:
        return {"n": 0, "p50": None, "p95": None, "max": None}
    a = np.asarray(values)
    return {"n": len(values), "p50": round(float(np.percentile(a, 50)), 1),
            "p95": round(float(np.percentile(a, 95)), 1), "max": round(float(a.max()), 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cameras", type=int, default=2, help="cameras (paced clips) on the one host agent")
    ap.add_argument("--passes", type=int, default=6, help="scripted passes per camera (one alert each)")
    ap.add_argument("--realert", type=float, default=4.0,
                    help="the cameras' realert_after_s (passes lie further apart)")
    ap.add_argument("--analyse-fps", type=float, default=5.0)
    add_postgres_option(ap)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    require_postgres(args.database_url)
    root = data_dir()
    settings = {"paced": True, "analyse_fps": args.analyse_fps, "realert_after_s": args.realert}
    with tempfile.TemporaryDirectory(prefix="openlfr-latency-") as tmp:
        work = Path(tmp)
        clips = chaos_clips(root, work / "clips", cameras=args.cameras, passes=args.passes,
                            spacing_s=args.realert + 6.0, first_s=3.0, stagger_s=1.3)
        with fresh_database(args.database_url) as url:
            world = build_world(url, work / "data", clips, settings, root / REFERENCE)
            cluster = Cluster(world, work / "logs")
            probe = StoreProbe(world)
            clients: list[SseClient] = []
            try:
                apis = [cluster.start_api("apiA"), cluster.start_api("apiB")]
                for api in apis:
                    cluster.wait_api(api)
                clients = [SseClient([api.url], world.reviewer_token, name=f"sse-{api.name}") for api in apis]
                for c in clients:
                    c.start()
                    if not c.connected.wait(30):
                        raise SystemExit(f"the stream on {c.urls[0]} did not connect: {c.errors[-3:]}")
                host = cluster.start_host("bench", len(clips))
                deadline = time.monotonic() + 120 + max(c.duration_s for c in clips) * 2
                while not probe.finished(sorted(world.clips)) and time.monotonic() < deadline:
                    if host.popen.poll() is not None:
                        raise SystemExit(f"the host agent exited {host.popen.returncode}:\n{tail(host.log)}")
                    time.sleep(1)
                stored = probe.alert_ids()
                wait = time.monotonic() + 15
                while time.monotonic() < wait and not all(stored <= {e.alert_id for e in c.received()}
                                                          for c in clients):
                    time.sleep(0.2)
            finally:
                for c in clients:
                    c.stop()
                cluster.close()
                probe.close()
    announced = {a.alert_id: a for a in cluster.announced()}
    every: dict[str, list[float]] = {"from_frame": [], "from_capture": [], "commit_to_reviewer": []}
    replicas: dict[str, dict[str, object]] = {}
    for c in clients:
        mine: dict[str, list[float]] = {k: [] for k in every}
        for e in c.received():
            mine["from_frame"].append((e.received - datetime.fromisoformat(e.data["at"]).timestamp()) * 1000)
            a = announced.get(e.alert_id)
            if a is not None:
                mine["commit_to_reviewer"].append((e.received - a.seen) * 1000)
                if a.latency_ms is not None:
                    mine["from_capture"].append((e.received - a.seen) * 1000 + float(a.latency_ms))
        replicas[c.name] = {k: percentiles(v) for k, v in mine.items()}
        replicas[c.name]["missing"] = sorted(stored - {e.alert_id for e in c.received()})
        for k, v in mine.items():
            every[k] += v
    replicas["both"] = {k: percentiles(v) for k, v in every.items()}
    report = {"cameras": len(clips), "scripted_passes": sum(len(c.passes) for c in clips),
              "alerts_stored": len(stored), "alerts_announced": len(announced), "latency_ms": replicas}
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{len(stored)} alerts stored ({report['scripted_passes']} scripted passes, {len(clips)} camera(s), "
          "1 host agent), 2 API replicas, one SSE client on each")
    print(f"{'':36}{'n':>5}{'p50 ms':>10}{'p95 ms':>10}{'max ms':>10}")
    for where, figures in replicas.items():
        for k in every:
            f = figures[k]
            assert isinstance(f, dict)
            print(f"{where + '  ' + k:36}{f['n']:>5}{f['p50']!s:>10}{f['p95']!s:>10}{f['max']!s:>10}")
        if figures.get("missing"):
            print(f"  never received on {where}: {figures['missing']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
