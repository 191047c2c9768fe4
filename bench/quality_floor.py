"""The distribution of enrolment quality scores on the shared data, to set ``min_entry_quality``.

Each image goes the way a shared image goes (:func:`openlfr.governance.sharing.prepare_image`):
through the image gate, then the default face analyzer. For every image with exactly one face
the score of :func:`openlfr.face.quality.assess` is recorded, also when enrolment would refuse
the face (so the refused tail is visible); images with no face or several are counted apart.

Usage: ``python bench/quality_floor.py [--limit N] [--lowest K]``. Prints the percentiles of
the scores, the share of faces below candidate floors, and the K lowest-scoring images with
their reasons (to look at).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import data_dir


def sample(root: Path, limit: int) -> list[Path]:
    """``limit`` LFW images spread evenly over the sorted list of all of them (a fixed,
    reproducible sample), then the video reference photos."""
    lfw = sorted((root / "lfw").glob("*/*.jpg"))
    if limit and limit < len(lfw):
        lfw = [lfw[int(i)] for i in np.linspace(0, len(lfw) - 1, limit)]
    return lfw + sorted((root / "video" / "references").glob("*.png"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=1000, help="LFW images to measure (0 = all 6,158)")
    parser.add_argument("--lowest", type=int, default=12, help="list this many lowest-scoring images")
    args = parser.parse_args()

    from openlfr.errors import OpenLFRError
    from openlfr.face.analyzer import default_analyzer
    from openlfr.face.image import load_image
    from openlfr.face.image_gate import gate_image

    analyzer = default_analyzer()
    root = data_dir()
    paths = sample(root, args.limit)
    scored: list[tuple[float, Path, list[str], str]] = []
    none = several = bad = 0
    started = time.perf_counter()
    for path in paths:
        try:
            faces = analyzer.analyze(load_image(gate_image(path.read_bytes(), label=path.name).data))
        except OpenLFRError:
            bad += 1
            continue
        if not faces:
            none += 1
        elif len(faces) > 1:
            several += 1
        else:
            q = faces[0].quality
            scored.append((q.score, path, list(q.reasons),
                           f"eyes {q.face_size:.0f} px, sharpness {q.sharpness:.0f}, yaw {q.yaw:+.2f}"))
    took = time.perf_counter() - started
    scores = np.array([t[0] for t in scored])
    print(f"model {analyzer.model_id}; {len(paths)} images "
          f"({took:.0f} s): {len(scores)} with one face, {none} with none, {several} with several, {bad} unreadable")
    print("percentile  score")
    for p in (0, 0.5, 1, 2, 5, 10, 25, 50, 75, 90, 100):
        print(f"{p:>9}%  {np.percentile(scores, p):.4f}")
    refused = sum(1 for t in scored if t[2])
    print(f"refused by enrolment's own limits (size, blur, turn): {refused}")
    for floor in (0.05, 0.1, 0.15, 0.2, 0.25, 0.3):
        below = [t[2] for t in scored if t[0] < floor]
        print(f"below {floor:.2f}: {len(below)} ({100 * len(below) / len(scores):.1f}%), "
              f"of which {sum(1 for r in below if r)} refused by enrolment anyway")
    refs = [(t[0], t[1]) for t in scored if t[1].suffix == ".png"]
    print("video references: " + ", ".join(f"{p.name} {s:.4f}" for s, p in refs))
    print(f"lowest {args.lowest}:")
    for s, p, r, parts in sorted(scored, key=lambda t: t[0])[: args.lowest]:
        print(f"  {s:.4f}  {p.relative_to(root)}  ({parts})  {'; '.join(r) or 'accepted by enrolment'}")


if __name__ == "__main__":
    main()
