"""1:N search time per probe: a live watchlist, and an exact retrospective search of a large gallery.

Random unit templates from a fixed seed, of the configured face model's size (read from the
model registry; 128-d for both bundled models), float32. Each figure is timed against its
naive baseline in the same process, and the two must return the same results (checked).

* **Watchlist** (``--watchlist`` entries, default 10,000): what the live matcher does per face
  template: its scores against every entry, then its best candidate if at or above the model's
  default threshold (a track alerts once, for its best candidate). Baseline: ``np.argsort`` over
  all scores walked down to the threshold (the matcher before issue 16); fast: ``np.argmax``
  (what ``CameraPipeline._match`` does now); the best candidates must agree.
  Half the probes are a noisy copy of an entry, so candidates are found.
* **Retrospective gallery** (``--gallery`` entries, default 1,000,000; 512 MB at 128-d): the
  exact top ``--k`` per probe. Baseline: all scores, ``np.argsort`` (full sort), first k.
  Fast: :meth:`openlfr.matching.index.TemplateIndex.search`, the package's exact search, which
  for one template per subject runs :func:`openlfr.matching.topk.top_k` (block-wise scores,
  only those that can still be in the top k kept). Once one probe at a time, once a batch of
  ``--batch`` probes (the baseline then scores the batch in one matrix product and sorts each row).

Figures: milliseconds per probe (best of ``--repeat`` runs); ratio = baseline / fast (above 1:
the fast path is that many times quicker). Memory-bound: give it a quiet machine.

    OMP_NUM_THREADS=1 python bench/bench_search.py [--quick] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable

import numpy as np

from openlfr.config import get_settings
from openlfr.face.registry import model_threshold, registry
from openlfr.matching.similarity import similarity, to_template
from openlfr.matching.index import TemplateIndex


def unit_templates(rng: np.random.Generator, n: int, dim: int, block: int = 1 << 18) -> np.ndarray:
    """``n`` random unit float32 templates, made in blocks (no float64 copy of a large gallery)."""
    out = np.empty((n, dim), np.float32)
    for start in range(0, n, block):
        chunk = rng.standard_normal((min(block, n - start), dim), dtype=np.float32)
        out[start : start + len(chunk)] = to_template(chunk)
    return out


def best_ms(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    """(best wall time in ms over ``repeat`` runs, the last result)."""
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return 1000 * best, out


def naive_watchlist(templates: np.ndarray, probes: np.ndarray, threshold: float) -> list[list[int]]:
    """The live matcher's way: every score, a full sort, walked down to the threshold."""
    out = []
    for t in probes:
        scores = templates @ t
        hits = []
        for j in np.argsort(-scores):
            if scores[j] < threshold:
                break
            hits.append(int(j))
        out.append(hits)
    return out


def fast_watchlist(templates: np.ndarray, probes: np.ndarray, threshold: float) -> list[list[int]]:
    """What the live matcher does now: the best candidate, if at or above the threshold."""
    out = []
    for t in probes:
        scores = templates @ t
        j = int(np.argmax(scores))
        out.append([j] if scores[j] >= threshold else [])
    return out


def naive_top_k(gallery: np.ndarray, probes: np.ndarray, k: int) -> np.ndarray:
    """Every score of the probes (one matrix product), each row fully sorted, the first k."""
    scores = similarity(probes, gallery)
    return np.stack([np.argsort(-row)[:k] for row in scores])


def watchlist_figures(rng: np.random.Generator, n: int, dim: int, probes: int, threshold: float,
                      repeat: int) -> dict[str, object]:
    entries = unit_templates(rng, n, dim)
    mates = entries[rng.integers(0, n, probes // 2)]
    noise = rng.standard_normal((len(mates), dim), dtype=np.float32)
    mated = to_template(mates + 0.5 * to_template(noise))  # cosine about 0.9 with its entry
    probe = np.concatenate([mated, unit_templates(rng, probes - len(mated), dim)])
    base_ms, base = best_ms(lambda: naive_watchlist(entries, probe, threshold), repeat)
    fast_ms, fast = best_ms(lambda: fast_watchlist(entries, probe, threshold), repeat)
    return {"entries": n, "probes": probes, "threshold": threshold,
            "probes_with_a_candidate": sum(1 for h in fast if h),
            "naive_ms_per_probe": round(base_ms / probes, 4), "fast_ms_per_probe": round(fast_ms / probes, 4),
            "ratio": round(base_ms / fast_ms, 2), "identical": [h[:1] for h in base] == fast}


def gallery_figures(rng: np.random.Generator, n: int, dim: int, probes: int, batch: int, k: int,
                    repeat: int) -> dict[str, object]:
    t = time.perf_counter()
    gallery = unit_templates(rng, n, dim)
    made_s = time.perf_counter() - t
    singles = unit_templates(rng, probes, dim)
    singles[0] = to_template(gallery[n // 2] + 0.02 * singles[0])  # a mated probe
    batched = unit_templates(rng, batch, dim)
    out: dict[str, object] = {"entries": n, "k": k, "gallery_mb": round(gallery.nbytes / 2**20),
                              "made_s": round(made_s, 1)}

    ids = [f"{i:07d}" for i in range(n)]  # subject-id order is row order: results compare as row indices
    index = TemplateIndex(ids, ids, gallery)

    def search(p: np.ndarray) -> np.ndarray:
        return np.array([[int(c.subject_id) for c in row] for row in index.search(p, k)])

    def single(fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        return np.concatenate([fn(p[None]) for p in singles])

    base_ms, base = best_ms(lambda: single(lambda p: naive_top_k(gallery, p, k)), repeat)
    fast_ms, fast = best_ms(lambda: single(search), repeat)
    out["one_probe"] = {"probes": probes, "naive_ms_per_probe": round(base_ms / probes, 2),
                        "fast_ms_per_probe": round(fast_ms / probes, 2), "ratio": round(base_ms / fast_ms, 2),
                        "identical": bool(np.array_equal(base, fast)),
                        "mate_found_first": bool(fast[0][0] == n // 2)}
    base_ms, base = best_ms(lambda: naive_top_k(gallery, batched, k), repeat)
    fast_ms, fast = best_ms(lambda: search(batched), repeat)
    out["batch"] = {"probes": batch, "naive_ms_per_probe": round(base_ms / batch, 2),
                    "fast_ms_per_probe": round(fast_ms / batch, 2), "ratio": round(base_ms / fast_ms, 2),
                    "identical": bool(np.array_equal(base, fast))}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--watchlist", type=int, default=10_000, help="watchlist entries")
    ap.add_argument("--watchlist-probes", type=int, default=1000, help="face templates searched in the watchlist")
    ap.add_argument("--gallery", type=int, default=1_000_000, help="retrospective gallery entries")
    ap.add_argument("--probes", type=int, default=10, help="probes searched one at a time in the gallery")
    ap.add_argument("--batch", type=int, default=64, help="probes searched together in the gallery")
    ap.add_argument("--k", type=int, default=10, help="candidates per probe in the gallery search")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each timing (the best is reported)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="small sizes, for development (100,000-entry gallery)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.gallery, args.probes, args.batch, args.watchlist_probes, args.repeat = 100_000, 4, 16, 200, 2

    model = get_settings().models.face_model
    dim = registry().embedder(model).dim
    rng = np.random.default_rng(args.seed)
    results = {"face_model": model, "dim": dim, "dtype": "float32", "seed": args.seed, "cpu_count": os.cpu_count(),
               "omp_threads": os.environ.get("OMP_NUM_THREADS"),
               "watchlist": watchlist_figures(rng, args.watchlist, dim, args.watchlist_probes, model_threshold(),
                                              args.repeat),
               "gallery": gallery_figures(rng, args.gallery, dim, args.probes, args.batch, args.k, args.repeat)}
    if args.json:
        print(json.dumps(results, indent=2))
        return
    w, g = results["watchlist"], results["gallery"]
    print(f"{model}: {dim}-d float32 templates, seed {args.seed}, {os.cpu_count()} CPUs, "
          f"OMP_NUM_THREADS={results['omp_threads']}")
    print(f"watchlist of {w['entries']:,} entries, {w['probes']} templates, threshold {w['threshold']} "
          f"({w['probes_with_a_candidate']} with a candidate): naive {w['naive_ms_per_probe']} ms/template, "
          f"fast {w['fast_ms_per_probe']} ms/template, ratio {w['ratio']}x, identical: {w['identical']}")
    for name, label in (("one_probe", "one probe at a time"), ("batch", "batched")):
        f = g[name]
        print(f"gallery of {g['entries']:,} entries ({g['gallery_mb']} MB), exact top-{g['k']}, {label} "
              f"({f['probes']} probes): naive {f['naive_ms_per_probe']} ms/probe, fast {f['fast_ms_per_probe']} "
              f"ms/probe, ratio {f['ratio']}x, identical: {f['identical']}")


if __name__ == "__main__":
    main()
