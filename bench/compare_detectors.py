"""Compare the bundled face detectors on the shared real data, to choose the default.

For each detector: share of LFW images (first image of the first N people) where a face
is found, faces found in ``misc/multiface.jpg`` and ``misc/two_people.jpg`` and in frames
of ``video/street_1080p.mp4``, and ms per 640x360 and 1920x1080 frame.

    python bench/compare_detectors.py [--lfw 300] [--frames 4] [--with-dlib-mmod]
"""

from __future__ import annotations

import argparse
import json

from _common import data_dir, lfw_images, timed, video_frames

from openlfr.face.detectors import HogDetector, make_detector
from openlfr.face.image import load_image


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lfw", type=int, default=300, help="LFW images to test")
    ap.add_argument("--frames", type=int, default=4, help="street-clip frames to test")
    ap.add_argument("--with-dlib-mmod", action="store_true", help="also time dlib's own MMOD (slow)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    root = data_dir()
    lfw = [load_image(p) for p in lfw_images(root, args.lfw)]
    multi = load_image(root / "misc" / "multiface.jpg")
    two = load_image(root / "misc" / "two_people.jpg")
    street = video_frames(root / "video" / "street_1080p.mp4", args.frames)
    small = video_frames(root / "video" / "street_1080p.mp4", args.frames, (640, 360))

    detectors = {
        "hog (no upsampling)": HogDetector(upsample=0),
        "hog (1 upsampling)": HogDetector(upsample=1),
        "mmod (onnxruntime)": make_detector("mmod", backend="cpu"),
    }
    if args.with_dlib_mmod:
        from openlfr.face.mmod_detector import MMODDetector

        detectors["mmod (dlib)"] = MMODDetector(backend="dlib")

    rows = []
    for name, det in detectors.items():
        det.detect(lfw[0])  # warm-up (model load, graph build)
        found = sum(1 for img in lfw if det.detect(img))
        # (timed runs each lambda at once, within this iteration)
        t360, n360 = timed(lambda: [len(det.detect(f)) for f in small])  # noqa: B023
        t1080, n1080 = timed(lambda: [len(det.detect(f)) for f in street])  # noqa: B023
        rows.append(
            {
                "detector": name,
                "lfw_found_pct": round(100.0 * found / len(lfw), 1),
                "multiface_faces": len(det.detect(multi)),
                "two_people_faces": len(det.detect(two)),
                "street_faces_per_frame_1080p": n1080,
                "street_faces_per_frame_640x360": n360,
                "ms_per_640x360_frame": round(1000 * t360 / len(small), 1),
                "ms_per_1080p_frame": round(1000 * t1080 / len(street), 1),
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"LFW images: {len(lfw)}, street frames: {len(street)}")
    cols = list(rows[0])
    print(" | ".join(cols))
    for r in rows:
        print(" | ".join(str(r[c]) for c in cols))


if __name__ == "__main__":
    main()
