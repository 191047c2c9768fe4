#!/usr/bin/env python
"""Benchmark the face embedders on the same chips.

CPU (default): dlib (``compute_face_descriptor``, one face at a time) against the ONNX Runtime
graph built from the same ``.dat`` file, batched and one at a time; prints ms per face, the
speed-up and the agreement (cosine) between the two.

``--device cuda``: the PyTorch module at ``--cuda-batch`` faces per call (faces/s, with the
chips already on the GPU and end to end from numpy), checked against the CPU ONNX templates
(cosine >= 0.9999). ``--device cpu`` runs that same check with PyTorch on the CPU.

Chips come from the first image of each sorted LFW person folder (dlib HOG detector, 5-point
landmarks, ``get_face_chip(img, shape, 150, 0.25)``); without the data, synthetic chips are used
and said so.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def default_data_dir() -> Path:
    return Path(os.environ.get("OPENLFR_DATA", REPO.parent / "shared" / "data"))


def lfw_chips(lfw: Path, count: int) -> np.ndarray:
    """Chips of the first image of each sorted LFW person where a face is found.

    With dlib installed: dlib's HOG detector, 5-point landmarks and ``get_face_chip`` (the
    reference). Without it (e.g. on a GPU machine): openlfr's dlib-free MMOD detector,
    landmarks and alignment, which reproduce dlib's exactly (see the tests).
    """
    try:
        import dlib
    except ImportError:
        dlib = None

    from openlfr.face.image import load_image
    from openlfr.face.model_files import SHAPE5, model_path

    if dlib is not None:
        detector = dlib.get_frontal_face_detector()
        predictor = dlib.shape_predictor(str(model_path(SHAPE5)))

        def chip_of(img: np.ndarray) -> np.ndarray | None:
            dets = detector(img, 1)
            return dlib.get_face_chip(img, predictor(img, dets[0]), size=150, padding=0.25) if dets else None
    else:
        from openlfr.face.align import face_chip
        from openlfr.face.mmod_detector import MMODDetector
        from openlfr.face.shape_predictor import ShapePredictor5

        mmod, marks = MMODDetector(backend="cpu"), ShapePredictor5()

        def chip_of(img: np.ndarray) -> np.ndarray | None:
            dets = mmod.detect(img)
            return face_chip(img, marks.landmarks(img, [dets[0].box])[0]) if dets else None

    chips = []
    for person in sorted(p for p in lfw.iterdir() if p.is_dir()):
        images = sorted(person.glob("*.jpg"))
        if not images:
            continue
        chip = chip_of(load_image(images[0]))
        if chip is not None:
            chips.append(chip)
        if len(chips) == count:
            break
    return np.stack(chips)


def synthetic_chips(count: int, seed: int = 0) -> np.ndarray:
    """Smooth random 150x150 images, for timing where LFW is absent."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(count, 10, 10, 3)).astype(np.float32)
    big = small.repeat(15, axis=1).repeat(15, axis=2) + rng.normal(0, 12, size=(count, 150, 150, 3))
    return np.clip(big, 0, 255).astype(np.uint8)


def get_chips(args: argparse.Namespace) -> tuple[np.ndarray, str]:
    lfw = Path(args.data) / "lfw"
    if lfw.is_dir() and not args.synthetic:
        return lfw_chips(lfw, args.faces), f"LFW ({lfw})"
    return synthetic_chips(args.faces), "synthetic (LFW not available)"


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def timed(fn, repeats: int) -> float:
    """Median wall time of ``fn()`` over ``repeats`` runs, in seconds."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_cpu(args: argparse.Namespace, chips: np.ndarray) -> None:
    from openlfr.face.embedders import DlibEmbedder, OnnxEmbedder

    n = len(chips)
    onnx = OnnxEmbedder("cpu", batch_size=args.batch, threads=args.threads)
    onnx.embed(chips[: args.batch])  # warm-up (allocations, kernel selection)
    t_batched = timed(lambda: onnx.embed(chips), args.repeats) / n
    single = OnnxEmbedder("cpu", batch_size=1, threads=args.threads)
    single.embed(chips[:1])
    t_single = timed(lambda: single.embed(chips), 1) / n
    got = onnx.embed(chips)
    print(f"onnxruntime batched (batch {args.batch}, {args.threads} threads): {t_batched * 1e3:8.2f} ms/face")
    print(f"onnxruntime one at a time:                   {t_single * 1e3:8.2f} ms/face")
    if args.skip_dlib:
        return
    ref_model = DlibEmbedder()
    t0 = time.perf_counter()
    ref = ref_model.embed(chips)
    t_dlib = (time.perf_counter() - t0) / n
    cos = cosine(got, ref)
    print(f"dlib compute_face_descriptor, per face:      {t_dlib * 1e3:8.2f} ms/face")
    print(f"speed-up onnx batched vs dlib: {t_dlib / t_batched:.1f}x; one at a time: {t_dlib / t_single:.1f}x")
    print(f"agreement with dlib: min cosine {cos.min():.8f}, max |diff| {np.abs(got - ref).max():.2e}, "
          f"faces with cosine < 0.9999: {(cos < 0.9999).sum()} of {n}")


def bench_torch(args: argparse.Namespace, chips: np.ndarray) -> int:
    import torch

    from openlfr.face.embedders import OnnxEmbedder, TorchEmbedder

    ref = OnnxEmbedder("cpu", batch_size=32, threads=args.threads).embed(chips)
    emb = TorchEmbedder(args.device, batch_size=args.cuda_batch, allow_tf32=args.tf32)
    got = emb.embed(chips)
    cos = cosine(got, ref)
    print(f"torch on {args.device} (tf32={'on' if args.tf32 else 'off'}) vs CPU ONNX: "
          f"min cosine {cos.min():.8f}, max |diff| {np.abs(got - ref).max():.2e}")

    reps = -(-args.cuda_batch // len(chips))
    batch_np = np.ascontiguousarray(np.concatenate([chips] * reps)[: args.cuda_batch])
    batch = torch.from_numpy(batch_np).to(emb.device)
    sync = torch.cuda.synchronize if emb.device.type == "cuda" else (lambda: None)

    def run_module() -> None:
        with torch.inference_mode():
            emb.module(batch)
        sync()

    for _ in range(3):
        run_module()
    t = timed(run_module, args.iters)
    t_e2e = timed(lambda: emb.embed(batch_np), max(1, args.iters // 2))
    print(f"torch batch {args.cuda_batch}: {args.cuda_batch / t:,.0f} faces/s on device "
          f"({t * 1e3:.1f} ms/batch); end to end from numpy: {args.cuda_batch / t_e2e:,.0f} faces/s")
    ok = cos.min() >= 0.9999
    print("check cosine >= 0.9999:", "PASS" if ok else "FAIL")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--faces", type=int, default=100, help="number of chips (default 100)")
    parser.add_argument("--batch", type=int, default=32, help="ONNX batch size (default 32)")
    parser.add_argument("--threads", type=int, default=2, help="ONNX intra-op threads (default 2)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs, median reported")
    parser.add_argument("--data", default=str(default_data_dir()), help="shared data folder (holds lfw/)")
    parser.add_argument("--synthetic", action="store_true", help="use synthetic chips, not LFW")
    parser.add_argument("--skip-dlib", action="store_true", help="do not time dlib (it is slow)")
    parser.add_argument("--device", choices=["cuda", "cpu"], default=None,
                        help="time the PyTorch module on this device instead of the CPU comparison")
    parser.add_argument("--cuda-batch", type=int, default=256, help="PyTorch batch size (default 256)")
    parser.add_argument("--iters", type=int, default=20, help="timed PyTorch batches")
    parser.add_argument("--tf32", action="store_true", help="let cuDNN use TF32 (faster, less exact)")
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    chips, source = get_chips(args)
    print(f"{len(chips)} chips from {source} in {time.perf_counter() - t0:.1f} s")
    if args.device:
        return bench_torch(args, chips)
    bench_cpu(args, chips)
    return 0


if __name__ == "__main__":
    sys.exit(main())
