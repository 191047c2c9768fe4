"""MMOD CNN face detector: dlib itself vs openlfr's dlib-free implementation.

CPU (default): one 512x512 image (``misc/obama.jpg`` resized), ms per image for dlib and
for ONNX Runtime, their ratio, and whether the boxes agree.

    OMP_NUM_THREADS=2 python bench/bench_mmod.py [--repeat 20] [--dlib-repeat 3]

GPU: full-pyramid 1920x1080 frames per second with the PyTorch module (batches of frames
from ``video/street_1080p.mp4``), after checking its boxes against the CPU path's.

    python bench/bench_mmod.py --device cuda [--frames 32] [--batches 1,4,8,16]

(``--torch-device cpu`` runs the GPU mode's code on the CPU: a dry run of the script.)
"""

from __future__ import annotations

import argparse
import json
import time

import cv2
import numpy as np
from _common import data_dir, timed, video_frames

from openlfr.face.image import load_image
from openlfr.face.mmod_detector import MMODDetector
from openlfr.face.types import Detection


def max_deviation(a: list[Detection], b: list[Detection]) -> float:
    """Largest side deviation (px) pairing each box with the other list's closest; inf if
    the counts differ."""
    if len(a) != len(b):
        return float("inf")
    worst = 0.0
    rest = list(b)
    for d in a:
        devs = [max(abs(x - y) for x, y in zip(d.box.as_list(), r.box.as_list())) for r in rest]
        j = int(np.argmin(devs))
        worst = max(worst, devs[j])
        rest.pop(j)
    return worst


def bench_cpu(args: argparse.Namespace) -> dict:
    img = cv2.resize(load_image(data_dir() / "misc" / "obama.jpg"), (512, 512), interpolation=cv2.INTER_AREA)
    ours = MMODDetector(backend="cpu")
    ours.detect(img)  # warm-up (session, caches)
    t_ours, dets = timed(lambda: ours.detect(img), args.repeat)
    out = {"image": "misc/obama.jpg resized to 512x512", "onnxruntime_ms": round(t_ours * 1000, 1), "faces": len(dets)}
    try:
        ref = MMODDetector(backend="dlib")
    except ImportError:
        out["dlib_ms"] = None
        return out
    t_dlib, ref_dets = timed(lambda: ref.detect(img), args.dlib_repeat)
    out["dlib_ms"] = round(t_dlib * 1000, 1)
    out["speedup"] = round(t_dlib / t_ours, 1)
    out["max_box_deviation_px"] = max_deviation(dets, ref_dets)
    out["max_score_difference"] = (
        float(max((abs(a.score - b.score) for a, b in zip(dets, ref_dets)), default=0.0))
        if len(dets) == len(ref_dets)
        else None
    )
    return out


def bench_cuda(args: argparse.Namespace) -> dict:
    import torch

    on_gpu = args.torch_device.startswith("cuda")

    def sync() -> None:
        if on_gpu:
            torch.cuda.synchronize()

    size = tuple(int(v) for v in args.size.split("x"))
    frames = video_frames(data_dir() / "video" / "street_1080p.mp4", args.frames, None if size == (1920, 1080) else size)
    cpu = MMODDetector(backend="cpu")
    name = torch.cuda.get_device_name(0) if on_gpu else "cpu (dry run)"
    out: dict = {"device": name, "frames": len(frames), "size": args.size}
    check = frames[: args.check]
    t0 = time.perf_counter()
    cpu_dets = cpu.detect_batch(check)
    out["onnxruntime_cpu_ms_per_frame"] = round((time.perf_counter() - t0) / len(check) * 1000, 1)
    for precision in args.precisions.split(","):
        gpu = MMODDetector(backend="cuda", precision=precision, device=args.torch_device)
        gpu_dets = gpu.detect_batch(check)
        res: dict = {
            "max_box_deviation_vs_cpu_px": max(max_deviation(a, b) for a, b in zip(gpu_dets, cpu_dets)),
            "faces_checked": sum(len(d) for d in cpu_dets),
            "max_score_difference": max(
                (abs(x.score - y.score) for a, b in zip(gpu_dets, cpu_dets) if len(a) == len(b) for x, y in zip(a, b)),
                default=0.0,
            ),
        }
        for bs in (int(b) for b in args.batches.split(",")):
            gpu.detect_batch(frames[:bs])  # warm-up: cuDNN picks its algorithms per shape
            sync()
            t = time.perf_counter()
            for i in range(0, len(frames) - bs + 1, bs):
                gpu.detect_batch(frames[i : i + bs])
            sync()
            n = (len(frames) // bs) * bs
            res[f"fps_batch{bs}"] = round(n / (time.perf_counter() - t), 1)
        # the network and pyramid alone, frames already on the GPU (no upload, no decoding)
        runner = gpu._runner
        from openlfr.face.mmod_detector import pyramid_layout

        layout = pyramid_layout(*frames[0].shape[:2])
        bs = max(int(b) for b in args.batches.split(","))
        dev = torch.from_numpy(np.stack(frames[:bs])).to(args.torch_device)
        with torch.inference_mode():
            runner.run_tensor(runner.pyramid(dev, layout))
            sync()
            t = time.perf_counter()
            for _ in range(args.net_repeat):
                runner.run_tensor(runner.pyramid(dev, layout))
            sync()
        res[f"net_only_fps_batch{bs}"] = round(args.net_repeat * bs / (time.perf_counter() - t), 1)
        out[precision] = res
        del gpu, runner, dev
        if on_gpu:
            torch.cuda.empty_cache()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--repeat", type=int, default=20, help="timed runs of ours (best kept)")
    ap.add_argument("--dlib-repeat", type=int, default=3, help="timed runs of dlib (best kept)")
    ap.add_argument("--frames", type=int, default=32, help="1080p frames for the GPU run")
    ap.add_argument("--check", type=int, default=4, help="frames checked against the CPU path")
    ap.add_argument("--batches", default="1,4,8,16")
    ap.add_argument("--precisions", default="fp32,tf32,fp16")
    ap.add_argument("--net-repeat", type=int, default=10)
    ap.add_argument("--size", default="1920x1080", help="frame size WxH for the GPU run")
    ap.add_argument("--torch-device", default="cuda", help="PyTorch device (cpu: dry run)")
    args = ap.parse_args()
    result = bench_cpu(args) if args.device == "cpu" else bench_cuda(args)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
