"""The chaos test of issue 16, repeated: no alert lost or duplicated across host and replica faults.

Each run is ``tests/e2e/test_e2e_chaos.py``'s (``tests/e2e/chaoskit.py``): 3 host agents and 2
API replicas on a fresh PostgreSQL database, 4 cameras playing paced clips with 2 scripted
passes each of an enrolled real face; ``SIGSTOP`` of a host past its leases' expiry then
``SIGCONT``, ``SIGKILL`` of the replica a reviewer's stream is on, ``SIGKILL`` of another host's
whole group, each while a pass is in flight on a camera of the host hit.

Per run: scripted passes and stored alerts; ``lost`` (passes without an alert, beyond those the
guarantee allows: frames only a dead host had analysed), ``dup`` (alerts beyond one per pass,
plus alerts outside every pass), announced alerts missing from the store or without crop or
details, the resumed host's late writes refused and audited, the slowest re-own of a dead
host's camera (s), the stream's missing and duplicate alerts across the two replicas, whether
``openlfr audit verify`` passed, and the run's wall time. Then the totals.

Exit status 1 when any run lost or duplicated an alert (in the store or on the stream), or
broke another guarantee (listed under the table); the logs of such a run are kept.

PostgreSQL: ``--database-url`` or ``OPENLFR_TEST_POSTGRES_URL`` (``bash .ci/postgres.sh``
starts a throwaway server). Each run takes 2-3 minutes on 2 cores.

    python bench/bench_chaos.py [--runs 20] [--keep] [--json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from _common import REPO, add_postgres_option, data_dir, require_postgres

sys.path.insert(0, str(REPO / "tests" / "e2e"))
from chaoskit import ChaosConfig, ChaosResult, run_chaos  # noqa: E402

COLUMNS = ("run", "passes", "alerts", "lost", "dup", "incomplete", "refused", "max_reown_s", "sse_missing",
           "sse_dup", "audit", "wall_s")


def row(run: int, result: ChaosResult, wall_s: float) -> dict[str, object]:
    """One run's figures."""
    extra = sum(len(ids) - 1 for ids in result.duplicates().values()) + len(result.strays)
    reown = result.max_reown_s()
    return {"run": run, "passes": len(result.passes), "alerts": len(result.stored), "lost": len(result.lost()),
            "dup": extra, "incomplete": len(result.incomplete()), "refused": len(result.refused),
            "max_reown_s": None if reown is None else round(reown, 1), "sse_missing": len(result.sse_missing()),
            "sse_dup": len(result.sse_duplicates()), "audit": "ok" if result.audit_rc == 0 else "FAIL",
            "wall_s": round(wall_s, 1), "failures": result.failures()}


def print_table(rows: list[dict[str, object]]) -> None:
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in COLUMNS}
    print("  ".join(c.rjust(widths[c]) for c in COLUMNS))
    for r in rows:
        print("  ".join(str(r[c]).rjust(widths[c]) for c in COLUMNS))


def totals(rows: list[dict[str, object]]) -> dict[str, object]:
    def total(key: str) -> int:
        return sum(int(r[key]) for r in rows)  # type: ignore[call-overload]

    reowns = [float(r["max_reown_s"]) for r in rows if r["max_reown_s"] is not None]  # type: ignore[arg-type]
    return {"runs": len(rows), "passes": total("passes"), "alerts": total("alerts"), "lost": total("lost"),
            "duplicates": total("dup"), "incomplete": total("incomplete"), "refused": total("refused"),
            "max_reown_s": max(reowns) if reowns else None, "sse_missing": total("sse_missing"),
            "sse_duplicates": total("sse_dup"), "audit_failed": sum(1 for r in rows if r["audit"] != "ok"),
            "failed_runs": sum(1 for r in rows if r["failures"])}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=20)
    add_postgres_option(ap)
    ap.add_argument("--keep", action="store_true", help="keep every run's clips and logs, not only failed runs'")
    ap.add_argument("--verbose", action="store_true", help="print each run's timeline as it goes")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    require_postgres(args.database_url)
    root = data_dir()
    config = ChaosConfig()
    rows = []
    for i in range(1, args.runs + 1):
        work = Path(tempfile.mkdtemp(prefix=f"openlfr-chaos-{i:02d}-"))
        started = time.monotonic()
        result = run_chaos(args.database_url, root, work, config, log=print if args.verbose else lambda _: None)
        r = row(i, result, time.monotonic() - started)
        rows.append(r)
        failures = result.failures()
        if failures:
            print(f"run {i} FAILED (logs kept in {work}):", *failures, result.report(), sep="\n  ", file=sys.stderr)
        elif not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        if not args.json:
            print(f"run {i}/{args.runs}: {r['alerts']} alerts for {r['passes']} passes, lost {r['lost']}, "
                  f"dup {r['dup']}, {r['wall_s']} s", file=sys.stderr)
    summary = totals(rows)
    if args.json:
        print(json.dumps({"config": vars(config), "runs": rows, "totals": summary}, indent=2))
    else:
        print_table(rows)
        print("totals: " + ", ".join(f"{k} {v}" for k, v in summary.items()))
        for r in rows:
            for failure in r["failures"]:  # type: ignore[attr-defined]
                print(f"run {r['run']}: {failure}")
    bad = summary["lost"] or summary["duplicates"] or summary["sse_missing"] or summary["sse_duplicates"]
    return 1 if bad or summary["failed_runs"] else 0


if __name__ == "__main__":
    sys.exit(main())
