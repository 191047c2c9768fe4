"""openlfr's face pipeline against the plain face_recognition-style pipeline, in one run.

Baseline (what ``face_recognition.face_encodings`` does): dlib HOG detector with one
upsampling, dlib's 5-point shape predictor, ``get_face_chip`` and dlib's ResNet, one image
and one face at a time. openlfr: the default analyzer (detector, landmarks, alignment and
batched embedding on the configured backend). Same images, same frames, same process.

    python bench/bench_pipeline.py [--lfw 200] [--frame-step 4]
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from _common import data_dir, lfw_images, timed, video_frames

from openlfr.face.analyzer import default_analyzer
from openlfr.face.image import load_image
from openlfr.face.model_files import RESNET, SHAPE5, model_path


class FaceRecognitionStyle:
    """face_recognition's pipeline, reproduced with dlib directly."""

    def __init__(self) -> None:
        import dlib

        self.dlib = dlib
        self.det = dlib.get_frontal_face_detector()
        self.sp = dlib.shape_predictor(str(model_path(SHAPE5)))
        self.net = dlib.face_recognition_model_v1(str(model_path(RESNET)))

    def __call__(self, image: np.ndarray) -> list[np.ndarray]:
        out = []
        for rect in self.det(image, 1):
            shape = self.sp(image, rect)
            out.append(np.array(self.net.compute_face_descriptor(image, shape)))
        return out


def run(name: str, fn, images: list[np.ndarray]) -> dict:  # noqa: ANN001
    fn(images[0])  # warm-up
    seconds, counts = timed(lambda: [len(fn(im)) for im in images])
    faces = int(sum(counts))
    return {
        "pipeline": name,
        "images": len(images),
        "faces": faces,
        "ms_per_image": round(1000 * seconds / len(images), 1),
        "ms_per_face": round(1000 * seconds / max(faces, 1), 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lfw", type=int, default=200, help="LFW images")
    ap.add_argument("--frame-step", type=int, default=4, help="use every Nth frame of the street clip")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    root = data_dir()
    lfw = [load_image(p) for p in lfw_images(root, args.lfw)]
    import cv2

    total = int(cv2.VideoCapture(str(root / "video" / "street_1080p.mp4")).get(cv2.CAP_PROP_FRAME_COUNT))
    street = video_frames(root / "video" / "street_1080p.mp4", max(1, total // args.frame_step))

    baseline = FaceRecognitionStyle()
    ours = default_analyzer()
    results = {}
    for label, images in (("lfw", lfw), ("street_1080p", street)):
        b = run("face_recognition-style (dlib)", baseline, images)
        o = run(f"openlfr ({type(ours.stage.detector).__name__}, {type(ours.stage.embedder).__name__})",
                ours.analyze, images)
        results[label] = {
            "baseline": b,
            "openlfr": o,
            "speedup_per_image": round(b["ms_per_image"] / o["ms_per_image"], 2),
        }
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for label, r in results.items():
        print(f"== {label}")
        for key in ("baseline", "openlfr"):
            x = r[key]
            print(f"  {x['pipeline']}: {x['images']} images, {x['faces']} faces, "
                  f"{x['ms_per_image']} ms/image, {x['ms_per_face']} ms/face")
        print(f"  speed-up per image: {r['speedup_per_image']}x")


if __name__ == "__main__":
    main()
