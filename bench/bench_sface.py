#!/usr/bin/env python
"""SFace + YuNet against the dlib ResNet + MMOD engines, in one run, on the same images.

    python bench/bench_sface.py --faces 100            (leave OMP_NUM_THREADS unset)

Embedding: the first image of the first ``--faces`` LFW people (sorted). YuNet finds the
face nearest the centre; SFace gets its 112x112 ArcFace chip, the dlib ResNet
(:class:`openlfr.face.embedders.OnnxEmbedder`) its own 150x150 dlib chip (openlfr's 5-point
shape predictor inside the same box). Both embedders are timed batched and one face at a time,
interleaved round by round so that load from other processes falls on both alike; the best
and the median round are printed. The optimised SFace graph is also checked against the
shipped graph (stray inputs dropped, nothing else) on the same chips.

Detection: YuNet and MMOD (ONNX Runtime) per frame on 640x360 frames of
``video/short_hamilton_clip.mp4`` and 1920x1080 frames of ``video/street_1080p.mp4``
(MMOD is slow on a CPU: ``--mmod-frames`` frames only, ``--skip-mmod`` to leave it out).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np
from _common import data_dir, lfw_images, video_frames

from openlfr.face.image import load_image


def rounds(fns: dict[str, Callable[[], object]], n_rounds: int) -> dict[str, list[float]]:
    """Seconds per call of each function, run in turn, ``n_rounds`` times."""
    out: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(n_rounds):
        for key, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            out[key].append(time.perf_counter() - t0)
    return out


def centre_face(detector, image: np.ndarray):  # type: ignore[no-untyped-def]
    found = detector.detect_with_landmarks(image)
    if not found:
        return None
    cx, cy = image.shape[1] / 2, image.shape[0] / 2
    return min(found, key=lambda f: (f[0].box.center[0] - cx) ** 2 + (f[0].box.center[1] - cy) ** 2)


def row(label: str, new: float, old: float | None, unit: str, note: str = "") -> str:
    ratio = f"{old / new:7.2f}x" if old else "      -"
    old_s = f"{old:10.2f}" if old is not None else "         -"
    return f"| {label:<34} | {new:8.2f} | {old_s} | {ratio} | {unit:<9} | {note}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--faces", type=int, default=100, help="LFW faces to embed (default 100)")
    parser.add_argument("--batch", type=int, default=32, help="batch size for both embedders (default 32)")
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads (default: all cores)")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds, interleaved (default 3)")
    parser.add_argument("--frames", type=int, default=8, help="video frames per size for YuNet (default 8)")
    parser.add_argument("--mmod-frames", type=int, default=2, help="frames per size for MMOD (default 2)")
    parser.add_argument("--skip-mmod", action="store_true", help="do not time MMOD")
    args = parser.parse_args(argv)

    from openlfr.face import onnx_runtime
    from openlfr.face.align import face_chip
    from openlfr.face.arcface_align import arcface_chip
    from openlfr.face.embedders import OnnxEmbedder
    from openlfr.face.sface import SFaceEmbedder
    from openlfr.face.shape_predictor import ShapePredictor5
    from openlfr.face.yunet import YuNetDetector

    root = data_dir()
    threads = args.threads or onnx_runtime.default_threads()
    import cv2
    import onnxruntime

    print(f"cores {os.cpu_count()}, ONNX Runtime {onnxruntime.__version__} with {threads} threads, "
          f"OpenCV {cv2.__version__} with {cv2.getNumThreads()} threads, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, "
          f"load average before {os.getloadavg()[0]:.2f}")

    # ---- chips from the same images
    yunet = YuNetDetector()
    marks = ShapePredictor5()
    images = [load_image(p) for p in lfw_images(root, args.faces)]
    sface_chips, dlib_chips = [], []
    t_lfw_det = []
    for img in images:
        t0 = time.perf_counter()
        found = centre_face(yunet, img)
        t_lfw_det.append(time.perf_counter() - t0)
        if found is None:
            continue
        det, points = found
        sface_chips.append(arcface_chip(img, points))
        dlib_chips.append(face_chip(img, marks.landmarks(img, [det.box])[0]))
    s_chips, d_chips = np.stack(sface_chips), np.stack(dlib_chips)
    n = len(s_chips)
    print(f"{n} faces from {len(images)} LFW images (YuNet found none in {len(images) - n})")

    # ---- embedders
    t0 = time.perf_counter()
    sface = SFaceEmbedder(threads=threads, batch=args.batch)
    t_load = time.perf_counter() - t0
    sface1 = SFaceEmbedder(threads=threads, batch=1)
    resnet = OnnxEmbedder("cpu", batch_size=args.batch, threads=threads)
    resnet1 = OnnxEmbedder("cpu", batch_size=1, threads=threads)
    for emb, chips in ((sface, s_chips), (sface1, s_chips), (resnet, d_chips), (resnet1, d_chips)):
        emb.embed(chips[: args.batch])  # warm-up
    times = rounds(
        {
            "sface_batched": lambda: sface.embed(s_chips),
            "resnet_batched": lambda: resnet.embed(d_chips),
            "sface_single": lambda: sface1.embed(s_chips),
            "resnet_single": lambda: resnet1.embed(d_chips),
        },
        args.rounds,
    )
    best = {k: min(v) / n * 1e3 for k, v in times.items()}
    med = {k: statistics.median(v) / n * 1e3 for k, v in times.items()}

    reference = SFaceEmbedder(threads=threads, optimise=False)
    t0 = time.perf_counter()
    ref = reference.embed(s_chips)
    t_ref = (time.perf_counter() - t0) / n * 1e3
    got = sface.embed(s_chips)
    cos = (got * ref).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(ref, axis=1)

    # ---- detectors
    small = video_frames(root / "video" / "short_hamilton_clip.mp4", args.frames)
    big = video_frames(root / "video" / "street_1080p.mp4", args.frames)
    det_rows = []
    mmod = None
    if not args.skip_mmod:
        from openlfr.face.mmod_detector import MMODDetector

        mmod = MMODDetector(backend="cpu")
    for label, frames in (("640x360 frame (Hamilton)", small), ("1920x1080 frame (street)", big)):
        if not frames:
            continue
        yunet.detect(frames[0])  # warm-up at this size
        per, faces = [], 0
        for frame in frames:
            t0 = time.perf_counter()
            faces += len(yunet.detect(frame))
            per.append(time.perf_counter() - t0)
        y_ms = statistics.median(per) * 1e3
        m_ms, m_faces = None, None
        if mmod is not None and args.mmod_frames > 0:
            sub = frames[: args.mmod_frames]
            mmod.detect(sub[0][:64, :64])  # session warm-up
            m_per, m_faces = [], 0
            for frame in sub:
                t0 = time.perf_counter()
                m_faces += len(mmod.detect(frame))
                m_per.append(time.perf_counter() - t0)
            m_ms = statistics.median(m_per) * 1e3
        note = f"faces/frame YuNet {faces / len(frames):.1f}"
        if m_faces is not None:
            note += f", MMOD {m_faces / len(sub):.1f} ({len(sub)} frames)"
        det_rows.append(row(f"detect, {label}", y_ms, m_ms, "ms/frame", note))

    # ---- report
    print()
    print("| step                               | SFace/YuNet | dlib ResNet/MMOD | ratio (old/new) | unit | note")
    print("|------------------------------------|----------|------------|---------|-----------|------")
    print(row(f"embed, batched ({args.batch}), best round", best["sface_batched"], best["resnet_batched"], "ms/face"))
    print(row(f"embed, batched ({args.batch}), median", med["sface_batched"], med["resnet_batched"], "ms/face"))
    print(row("embed, one at a time, best round", best["sface_single"], best["resnet_single"], "ms/face"))
    print(row("embed, one at a time, median", med["sface_single"], med["resnet_single"], "ms/face"))
    print(row("embed, shipped SFace graph, single", t_ref, None, "ms/face", "stray inputs dropped only"))
    print(row("detect, 250x250 LFW image (YuNet)", statistics.median(t_lfw_det) * 1e3, None, "ms/image"))
    for line in det_rows:
        print(line)
    print()
    print(f"optimised vs shipped SFace graph on {n} LFW chips: max |diff| {np.abs(got - ref).max():.2e}, "
          f"min cosine {cos.min():.9f}; optimised speed-up over shipped {t_ref / best['sface_single']:.1f}x "
          f"(one at a time)")
    print(f"SFace embedder start-up (digest check + graph from cache or built): {t_load:.2f} s")
    print(f"load average after {os.getloadavg()[0]:.2f} (other processes share these cores)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
