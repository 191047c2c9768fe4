"""MMOD CNN face detector: dlib itself vs openlfr's dlib-free implementation.

CPU (default): one 512x512 image (``misc/obama.jpg`` resized), ms per image for dlib and
for ONNX Runtime, their ratio, and whether the boxes agree.

    OMP_NUM_THREADS=2 python bench/bench_mmod.py [--repeat 20] [--dlib-repeat 3]

GPU: full-pyramid 1920x1080 frames per second, end to end from numpy frames, with the
PyTorch path (batches of frames from ``video/street_1080p.mp4``; pipelined in ``--chunk``
frame pieces), after checking its boxes against the CPU path's and against the former
whole-score-map path's; also that former path's frames/s and the network alone.

    python bench/bench_mmod.py --device cuda [--frames 32] [--batches 1,4,8,16] [--chunk 4]

(``--torch-device cpu`` runs the GPU mode's code on the CPU: a dry run of the script.)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback

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


def _legacy_detect(det: MMODDetector, frames: list[np.ndarray]) -> list[list[Detection]]:
    """The former cuda path, kept as a reference: whole score map to the host, numpy decoding."""
    from openlfr.face.mmod_detector import pyramid_layout

    layout = pyramid_layout(*frames[0].shape[:2])
    scores = det._runner.run_images(frames, layout, det._means)
    return [det._finish(s, layout) for s in scores]


def _fps(fn, frames: list[np.ndarray], bs: int, sync) -> float:
    fn(frames[:bs])  # warm-up: cuDNN picks its algorithms per shape
    sync()
    t = time.perf_counter()
    for i in range(0, len(frames) - bs + 1, bs):
        fn(frames[i : i + bs])
    sync()
    return round((len(frames) // bs) * bs / (time.perf_counter() - t), 1)


def _variant(args: argparse.Namespace, token: str, frames, check, cpu_dets, sync) -> dict:
    """One precision, with options after ``+``: ``cl`` channels_last, ``pad`` hidden channels
    padded to multiples of 8 (``fp16+cl+pad``). Checks, then frames/s."""
    import torch

    precision, *opts = token.split("+")
    gpu = MMODDetector(
        backend="cuda", precision=precision, device=args.torch_device, chunk=args.chunk, channels_last="cl" in opts
    )
    if "pad" in opts:  # experimental: hidden layers padded to multiples of 8 channels
        from openlfr.face.nets.mmod import TorchMMOD, load_spec

        gpu._runner = TorchMMOD(
            load_spec(), args.torch_device, precision, chunk=args.chunk, channels_last="cl" in opts, channel_multiple=8
        )
    res: dict = {"chunk": args.chunk}
    batches = [int(b) for b in args.batches.split(",")]
    bs = max(batches)
    runner = gpu._runner
    legacy = _legacy_detect(gpu, check)
    if args.legacy:  # first, so that it is reported even if the pipelined path fails
        res[f"full_map_path_fps_batch{bs}"] = _fps(lambda f: _legacy_detect(gpu, f), frames, bs, sync)
    try:
        gpu_dets = gpu.detect_batch(check)
        res.update(
            {
                "max_box_deviation_vs_cpu_px": max(max_deviation(a, b) for a, b in zip(gpu_dets, cpu_dets)),
                "faces_checked": sum(len(d) for d in cpu_dets),
                "max_score_difference": max(
                    (abs(x.score - y.score)
                     for a, b in zip(gpu_dets, cpu_dets) if len(a) == len(b) for x, y in zip(a, b)),
                    default=0.0,
                ),
                # the pipelined path against the former whole-map path on the same device
                "same_boxes_as_full_map_path": all(
                    [d.box for d in a] == [d.box for d in b] for a, b in zip(gpu_dets, legacy)
                ),
                "max_score_difference_vs_full_map_path": max(
                    (abs(x.score - y.score)
                     for a, b in zip(gpu_dets, legacy) if len(a) == len(b) for x, y in zip(a, b)),
                    default=0.0,
                ),
            }
        )
        print(f"[{token}] checks: {res}", file=sys.stderr, flush=True)
        for b in batches:
            res[f"fps_batch{b}"] = _fps(gpu.detect_batch, frames, b, sync)
            print(f"[{token}] batch {b}: {res[f'fps_batch{b}']} fps", file=sys.stderr, flush=True)
        for c in (int(v) for v in args.chunks.split(",") if v):
            if c != args.chunk:
                runner.chunk = c
                res[f"fps_batch{bs}_chunk{c}"] = _fps(gpu.detect_batch, frames, bs, sync)
        runner.chunk = args.chunk
    except Exception as exc:  # keep the full-map and network-only figures
        res["pipelined_path_error"] = f"{type(exc).__name__}: {exc}"
        res["pipelined_path_trace"] = traceback.format_exc(limit=6)
        print(f"[{token}] pipelined path FAILED: {exc}", file=sys.stderr, flush=True)
    # the network and pyramid alone, frames already on the GPU (no upload, no decoding)
    from openlfr.face.mmod_detector import pyramid_layout

    layout = pyramid_layout(*frames[0].shape[:2])
    dev = torch.from_numpy(np.stack(frames[:bs])).to(args.torch_device)
    with torch.inference_mode():
        runner.run_tensor(runner.pyramid(dev, layout))
        sync()
        t = time.perf_counter()
        for _ in range(args.net_repeat):
            runner.run_tensor(runner.pyramid(dev, layout))
        sync()
    res[f"net_only_fps_batch{bs}"] = round(args.net_repeat * bs / (time.perf_counter() - t), 1)
    print(f"[{token}] {res}", file=sys.stderr, flush=True)
    return res


def bench_cuda(args: argparse.Namespace) -> dict:
    import torch

    on_gpu = args.torch_device.startswith("cuda")

    def sync() -> None:
        if on_gpu:
            torch.cuda.synchronize()

    size = tuple(int(v) for v in args.size.split("x"))
    frames = video_frames(data_dir() / "video" / "street_1080p.mp4", args.frames,
                          None if size == (1920, 1080) else size)
    cpu = MMODDetector(backend="cpu")
    name = torch.cuda.get_device_name(0) if on_gpu else "cpu (dry run)"
    out: dict = {"device": name, "frames": len(frames), "size": args.size, "torch": torch.__version__}
    check = frames[: args.check]
    t0 = time.perf_counter()
    cpu_dets = cpu.detect_batch(check)
    out["onnxruntime_cpu_ms_per_frame"] = round((time.perf_counter() - t0) / len(check) * 1000, 1)
    for token in args.precisions.split(","):
        try:
            out[token] = _variant(args, token, frames, check, cpu_dets, sync)
        except Exception as exc:  # report and go on: one failing variant must not lose the rest
            out[token] = {"error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc(limit=4)}
            print(f"[{token}] FAILED: {exc}", file=sys.stderr, flush=True)
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
    ap.add_argument(
        "--precisions",
        default="fp32,tf32,fp16,fp16+cl,fp16+cl+pad",
        help="comma-separated; +cl: channels_last, +pad: channels padded to multiples of 8",
    )
    ap.add_argument("--chunk", type=int, default=4, help="frames per network run in the pipelined path")
    ap.add_argument("--chunks", default="2,8", help="other chunk sizes timed at the largest batch")
    ap.add_argument("--no-legacy", dest="legacy", action="store_false", help="skip timing the former whole-map path")
    ap.add_argument("--net-repeat", type=int, default=10)
    ap.add_argument("--size", default="1920x1080", help="frame size WxH for the GPU run")
    ap.add_argument("--torch-device", default="cuda", help="PyTorch device (cpu: dry run)")
    args = ap.parse_args()
    result = bench_cpu(args) if args.device == "cpu" else bench_cuda(args)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
