#!/usr/bin/env python
"""The default face model (SFace + YuNet) on the GPU path against the CPU, in one run.

    python bench/bench_gpu.py --faces 200 --frames 20

Needs a CUDA GPU and either onnxruntime-gpu or PyTorch with CUDA (openlfr's ``cuda`` backend,
:func:`openlfr.face.onnx_runtime.make_runner`); without one it exits with status 2 and says so.
The same inputs go through both engines, timed in turn, round by round:

* SFace: 112x112 ArcFace chips of the first ``--faces`` LFW people, batches of 1, 32 and 256;
* YuNet: ``--frames`` 640x360 frames of ``video/short_hamilton_clip.mp4`` and 1920x1080 frames
  of ``video/street_1080p.mp4``, one frame per run (as the live pipeline runs it);
* end to end: the full face stage (:func:`openlfr.face.analyzer.build_stage`) on the 1080p
  frames: detect, align, embed.

Each row gives milliseconds per face or per frame on each engine, the ratio CPU/GPU, and the
largest difference between the two engines' outputs (cosine for SFace, pixels for YuNet).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable

import cv2
import numpy as np
from _common import data_dir, lfw_images, video_frames


def per_item(fn: Callable[[], object], items: int, rounds: int) -> float:
    """Median milliseconds per item of ``fn`` over ``rounds`` timed runs (after one warm-up)."""
    fn()
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) / items * 1e3


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--faces", type=int, default=200, help="LFW faces to embed (default 200)")
    ap.add_argument("--frames", type=int, default=20, help="video frames per size (default 20)")
    ap.add_argument("--rounds", type=int, default=5, help="timed rounds (default 5)")
    args = ap.parse_args(argv)

    from openlfr.face import onnx_runtime
    from openlfr.face.analyzer import FaceAnalyzer, build_stage
    from openlfr.face.arcface_align import arcface_chip
    from openlfr.face.image import load_image
    from openlfr.face.sface import SFaceEmbedder
    from openlfr.face.torch_graph import torch_cuda_available
    from openlfr.face.yunet import YuNetDetector

    if not (onnx_runtime.cuda_available() or torch_cuda_available()):
        print("no CUDA backend here (neither onnxruntime-gpu nor PyTorch with CUDA): nothing to measure")
        return 2
    engine = "onnxruntime-gpu" if onnx_runtime.cuda_available() else "PyTorch"
    print(f"GPU engine: {engine}; CPU: ONNX Runtime with {onnx_runtime.default_threads()} threads "
          f"on {os.cpu_count()} cores")
    root = data_dir()

    yunet = {b: YuNetDetector(backend=b) for b in ("cpu", "cuda")}
    chips = []
    for path in lfw_images(root, args.faces):
        image = load_image(path)
        found = yunet["cpu"].detect_with_landmarks(image)
        if found:
            chips.append(arcface_chip(image, found[0][1]))
    chips_a = np.stack(chips)
    n = len(chips_a)
    print("| what | CPU ms | GPU ms | CPU/GPU | unit | largest difference |")
    print("| --- | ---: | ---: | ---: | --- | --- |")
    for batch in (1, 32, 256):
        emb = {b: SFaceEmbedder(backend=b, batch=batch) for b in ("cpu", "cuda")}
        # (the timed lambdas run within this iteration: binding late is what they want)
        cpu = per_item(lambda: emb["cpu"].embed(chips_a), n, args.rounds)  # noqa: B023
        gpu = per_item(lambda: emb["cuda"].embed(chips_a), n, args.rounds)  # noqa: B023
        a, b = emb["cpu"].embed(chips_a), emb["cuda"].embed(chips_a)
        cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
        print(f"| SFace, batch {batch} | {cpu:.2f} | {gpu:.3f} | {cpu / gpu:.1f}x | ms/face "
              f"| cosine >= {cos.min():.6f} |")

    clips = {"640x360": video_frames(root / "video" / "short_hamilton_clip.mp4", args.frames, (640, 360)),
             "1920x1080": video_frames(root / "video" / "street_1080p.mp4", args.frames)}
    for label, frames in clips.items():
        cpu = per_item(lambda: [yunet["cpu"].detect(f) for f in frames], len(frames), args.rounds)  # noqa: B023
        gpu = per_item(lambda: [yunet["cuda"].detect(f) for f in frames], len(frames), args.rounds)  # noqa: B023
        worst = 0.0
        for f in frames:
            a, b = yunet["cpu"].detect_with_landmarks(f), yunet["cuda"].detect_with_landmarks(f)
            if len(a) != len(b):
                worst = float("inf")
                break
            for (_, pa), (_, pb) in zip(a, b):
                worst = max(worst, float(np.abs(pa - pb).max()))
        print(f"| YuNet, {label} frame | {cpu:.2f} | {gpu:.2f} | {cpu / gpu:.1f}x | ms/frame "
              f"| landmarks {worst:.3f} px |")

    big = clips["1920x1080"]
    stages = {b: FaceAnalyzer(stage=build_stage(backend=b)) for b in ("cpu", "cuda")}
    cpu = per_item(lambda: [stages["cpu"].analyze(f) for f in big], len(big), args.rounds)
    gpu = per_item(lambda: [stages["cuda"].analyze(f) for f in big], len(big), args.rounds)
    print(f"| detect+align+embed, 1080p frame | {cpu:.1f} | {gpu:.1f} | {cpu / gpu:.1f}x | ms/frame | |")
    print(f"OpenCV {cv2.__version__}, numpy {np.__version__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
