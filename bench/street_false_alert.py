"""Which LFW person would the street clip's passers-by falsely match? (For the rights end-to-end test.)

Runs the real camera pipeline over ``video/street_1080p.mp4`` (default settings: 5 analysed
frames a second) and records every template it searches against a watchlist, with its track,
frame and box. Then takes one photo of every LFW person, made into a template the way a shared
image is (:func:`openlfr.face.analyzer.enrolment_template`, refusals skipped), and prints the
LFW people whose best score against any street template is highest, beside the configured face
model's default threshold (about 1 false match in 10,000 stranger comparisons). Nobody in the
street clip is in LFW, so any score above the threshold is a genuine false match.

Usage: ``python bench/street_false_alert.py [--top 10] [--limit 0] [--fps 5] [--all-images]`` (``--limit
N``: the first N LFW people only; ``--all-images``: every photo of each, not only the first).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "pipeline"))
from _common import data_dir  # noqa: E402


def street_templates(video: Path, fps: float) -> list[tuple[str, int, list[int], np.ndarray]]:
    """(track id, frame index, box, template) of every face the pipeline searched in the clip,
    analysing ``fps`` frames a second."""
    from pipekit import live_deployment, make_store

    from openlfr.face.analyzer import enrolment_template
    from openlfr.pipeline.camera import CameraPipeline
    from openlfr.pipeline.settings import CameraSettings
    from openlfr.video.file_source import VideoFileSource

    seen: list[tuple[str, int, list[int], np.ndarray]] = []
    original = CameraPipeline._match

    def spy(self, track, shot, template, at):  # noqa: ANN001, ANN202 - the pipeline's own signature
        seen.append((track.id, shot.frame_index, shot.box.as_list(), template.copy()))
        return original(self, track, shot, template, at)

    CameraPipeline._match = spy  # type: ignore[method-assign]
    with tempfile.TemporaryDirectory() as tmp:
        gov = make_store(Path(tmp)).governance(enrolment_template)
        dep, cam = live_deployment(gov, [video / "references" / "alex-lacamoire.png"])
        CameraPipeline(gov, dep, cam, CameraSettings(analyse_fps=fps)).run(
            VideoFileSource(video / "street_1080p.mp4", sample_fps=fps))
        gov.close()
    CameraPipeline._match = original  # type: ignore[method-assign]
    return seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=10, help="list this many LFW people")
    parser.add_argument("--limit", type=int, default=0, help="the first N LFW people only (0: all)")
    parser.add_argument("--fps", type=float, default=5.0, help="frames analysed a second (the camera setting)")
    parser.add_argument("--all-images", action="store_true", help="every photo of each person, not only the first")
    args = parser.parse_args()

    from openlfr.errors import OpenLFRError
    from openlfr.face.analyzer import enrolment_template
    from openlfr.face.registry import model_threshold

    root = data_dir()
    started = time.perf_counter()
    street = street_templates(root / "video", args.fps)
    probes = np.stack([t for *_, t in street])
    print(f"street clip: {len(street)} templates searched, tracks {sorted({s[0] for s in street})} "
          f"({time.perf_counter() - started:.0f} s)")
    people = sorted(d for d in (root / "lfw").iterdir() if d.is_dir())
    people = people[: args.limit] if args.limit else people
    best: list[tuple[float, str, int]] = []
    refused = 0
    photos = [p for person in people for p in sorted(person.glob("*.jpg"))[: None if args.all_images else 1]]
    for photo in photos:
        try:
            template, _, _ = enrolment_template(photo.read_bytes())
        except OpenLFRError:
            refused += 1
            continue
        scores = probes @ template
        j = int(np.argmax(scores))
        best.append((float(scores[j]), photo.name, j))
    best.sort(reverse=True)
    threshold = model_threshold()
    print(f"{len(best)} LFW photos templated ({refused} refused) in {time.perf_counter() - started:.0f} s; "
          f"default threshold {threshold}")
    for score, name, j in best[: args.top]:
        track, frame, box, _ = street[j]
        print(f"{score:.4f} {'ABOVE' if score >= threshold else 'below'}  {name}  "
              f"track {track} frame {frame} box {box}")


if __name__ == "__main__":
    main()
