"""How many cameras one CPU core sustains at 5 analysed frames per second.

K camera pipelines run together, each in its own process with ``OMP_NUM_THREADS=1``, all
pinned to the same single core (``os.sched_setaffinity``; where it is missing they are not
pinned and the figures are per machine, said so). Each analyses a real clip from
``OPENLFR_DATA/video`` played as a camera delivers it, exactly as ``openlfr run`` does for a
paced file: ``open_source(clip, analyse_fps, loop=True)`` read by a ``LatestFrameReader``
over a ``PacedSource`` (late frames dropped, never queued) into a ``CameraPipeline`` with the
default :class:`~openlfr.pipeline.settings.CameraSettings` (``analyse_fps=5``; the detector
and face model a default install resolves, both reported). Each process has its own store
with a live deployment whose watchlist holds the faces of the clip (built by
``bench_live.live_store`` from ``bench_live.enrolment_crops``), so alerts are raised and
committed as in production. K = 1, 2, 3, ... until a K is not sustained (or ``--max-k``).

Figures per K, over ``--seconds`` after ``--warmup`` seconds: each camera's analysed frames
per second and its share of the frames due (the source delivers the clip thinned to 5 frames
a second of video, paced by the clock; a frame due is analysed, or dropped because the
camera's loop or its decoder was still busy: share = analysed / (analysed + dropped), which,
unlike a count over the window, has no edge error of a frame). A camera **sustains** 5 fps
when it analyses at least 95% of the frames due. The CPU busy share is the K processes' CPU
time over the wall time (1.0 = the core fully used; pinned, it cannot exceed 1); "other
processes" is the rest of the core's busy time in the window (``/proc/stat``): anything
well above 0 means the figures were taken on a loaded core and K is understated. The answer
is the largest K whose every camera sustains the rate.

    python bench/bench_cameras_per_core.py [--clip street_1080p.mp4] [--seconds 20] [--quick] [--json]

Decoding counts: a 1080p H.264 camera costs its full decode even when 5 frames a second are
analysed. Run on a quiet machine; other load on the core lowers K.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import multiprocessing as mp
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

SUSTAINED = 0.95  # share of the frames due that a camera must analyse


def _pin(core: int | None) -> None:
    if core is not None:
        os.sched_setaffinity(0, {core})


def _window(pipe: Any, paced: Any, reader: Any, stop: threading.Event, opens: float, closes: float,
            out: dict[str, float]) -> None:
    """Frames analysed and dropped, and CPU time of this process, between ``opens`` and
    ``closes`` (monotonic); then stop the pipeline."""
    time.sleep(max(0.0, opens - time.monotonic()))
    out["a0"], out["d0"] = pipe.stats.analysed, paced.dropped + reader.dropped
    out["c0"], out["t0"] = time.process_time(), time.monotonic()
    time.sleep(max(0.0, closes - time.monotonic()))
    out["a1"], out["d1"] = pipe.stats.analysed, paced.dropped + reader.dropped
    out["c1"], out["t1"] = time.process_time(), time.monotonic()
    stop.set()


def camera_main(idx: int, core: int | None, clip: str, crops: list[bytes], threshold: float, root: str,
                inbox: Any, outbox: Any) -> None:
    """One camera process: build its store, then for each round: start a pipeline, say ready,
    run the paced clip from the start time, and report what it analysed in the window."""
    _pin(core)  # before the models load: their thread pools see one core
    from bench_live import live_store

    from openlfr.pipeline.camera import CameraPipeline
    from openlfr.pipeline.reader import LatestFrameReader
    from openlfr.pipeline.settings import CameraSettings
    from openlfr.video.pacing import PacedSource
    from openlfr.video.sources import open_source

    with contextlib.redirect_stderr(io.StringIO()):  # (the crops it skips: the parent's count says enough)
        gov, dep, cam, entries = live_store(Path(root), crops, threshold)
    settings = CameraSettings()
    outbox.put(("built", idx, entries))
    try:
        while (cmd := inbox.get()) is not None:
            warmup, seconds = cmd
            pipe = CameraPipeline(gov, dep, cam, settings, worker=f"pipeline:bench-{idx}")
            pipe.start()
            outbox.put(("ready", idx))
            start = inbox.get()
            time.sleep(max(0.0, start - time.monotonic()))
            stop = threading.Event()
            _, source = open_source(clip, settings.analyse_fps, loop=True)
            paced = PacedSource(source)
            frames = LatestFrameReader(paced, stop=stop)
            window: dict[str, float] = {}
            sampler = threading.Thread(target=_window, daemon=True,
                                       args=(pipe, paced, frames, stop, start + warmup, start + warmup + seconds,
                                             window))
            sampler.start()
            pipe.run(frames, stop=stop, finished_source=False)
            frames.close()
            sampler.join()
            wall = window["t1"] - window["t0"]
            analysed, dropped = window["a1"] - window["a0"], window["d1"] - window["d0"]
            outbox.put(("done", idx, {"analysed": analysed, "dropped": dropped, "cpu_s": window["c1"] - window["c0"],
                                      "wall_s": wall, "fps": analysed / wall,
                                      "share": analysed / (analysed + dropped) if analysed + dropped else 0.0,
                                      "alerts": len(pipe.stats.alerts)}))
    finally:
        gov.close()


def core_times(core: int | None) -> tuple[int, int] | None:
    """(busy, total) clock ticks of ``core`` so far, every process's (Linux ``/proc/stat``)."""
    try:
        with open("/proc/stat") as fh:
            for line in fh:
                if core is not None and line.startswith(f"cpu{core} "):
                    ticks = [int(v) for v in line.split()[1:]]
                    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
                    return sum(ticks[:8]) - idle, sum(ticks[:8])
    except OSError:
        pass
    return None


class Cameras:
    """A growing set of camera processes, each with its own store, pinned to ``core``."""

    def __init__(self, core: int | None, clip: Path, crops: list[bytes], threshold: float, root: Path) -> None:
        self.ctx = mp.get_context("spawn")  # fresh interpreters, pinned before any model loads
        self.core, self.clip, self.crops, self.threshold, self.root = core, clip, crops, threshold, root
        self.outbox = self.ctx.Queue()
        self.procs: list[tuple[Any, Any]] = []
        self.entries = 0  # watchlist entries of each camera's store
        self.core_busy: float | None = None  # the core's busy share in the last window, every process on it

    def grow(self, k: int) -> None:
        new = []
        while len(self.procs) < k:
            idx = len(self.procs)
            inbox = self.ctx.Queue()
            p = self.ctx.Process(target=camera_main, daemon=True, args=(
                idx, self.core, str(self.clip), self.crops, self.threshold, str(self.root / f"cam{idx}"), inbox,
                self.outbox))
            p.start()
            self.procs.append((inbox, p))
            new.append(idx)
        for _ in new:
            self.entries = self._expect("built")[2]

    def _expect(self, tag: str, timeout: float = 600) -> list[Any]:
        import queue

        deadline = time.monotonic() + timeout
        while True:
            try:
                msg = self.outbox.get(timeout=1.0)
                break
            except queue.Empty:
                dead = [i for i, (_, p) in enumerate(self.procs) if not p.is_alive()]
                if dead or time.monotonic() > deadline:
                    raise RuntimeError(f"camera processes {dead} died" if dead
                                       else f"no {tag} in {timeout} s") from None
        if msg[0] != tag:
            raise RuntimeError(f"camera process said {msg!r}, expected {tag}")
        return list(msg)

    def round(self, k: int, warmup: float, seconds: float) -> list[dict[str, float]]:
        """The first ``k`` cameras, started together; their windows' figures."""
        self.grow(k)
        for inbox, _ in self.procs[:k]:
            inbox.put((warmup, seconds))
        for _ in range(k):
            self._expect("ready")
        start = time.monotonic() + 0.5
        for inbox, _ in self.procs[:k]:
            inbox.put(start)
        time.sleep(max(0.0, start + warmup - time.monotonic()))
        before = core_times(self.core)
        time.sleep(max(0.0, start + warmup + seconds - time.monotonic()))
        after = core_times(self.core)
        self.core_busy = None if before is None or after is None else (
            (after[0] - before[0]) / max(after[1] - before[1], 1e-9))
        done = [self._expect("done", timeout=warmup + seconds + 120) for _ in range(k)]
        return [d[2] for d in sorted(done, key=lambda d: d[1])]

    def close(self) -> None:
        for inbox, _ in self.procs:
            inbox.put(None)
        for _, p in self.procs:
            p.join(timeout=30)
            if p.is_alive():
                p.terminate()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clip", default="street_1080p.mp4", help="a clip in OPENLFR_DATA/video")
    ap.add_argument("--seconds", type=float, default=20.0, help="measured seconds per K")
    ap.add_argument("--warmup", type=float, default=3.0, help="seconds run before the window opens")
    ap.add_argument("--max-k", type=int, default=8, help="most cameras tried")
    ap.add_argument("--core", type=int, default=None, help="the core to pin to (default: the last one allowed)")
    ap.add_argument("--all", action="store_true", help="try every K up to --max-k, not only up to the first failure")
    ap.add_argument("--quick", action="store_true", help="K = 1, 2 for 4 s each after 2 s, for development")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.seconds, args.warmup, args.max_k, args.all = 4.0, 2.0, 2, True
    # every camera process: one thread for ONNX Runtime and BLAS (inherited through spawn)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"

    from _common import data_dir
    from bench_live import enrolment_crops

    from openlfr.config import get_settings
    from openlfr.face.registry import model_threshold
    from openlfr.pipeline.camera import resolve_detector
    from openlfr.pipeline.settings import CameraSettings
    from openlfr.video.file_source import VideoFileSource

    clip = data_dir() / "video" / args.clip
    settings = CameraSettings()
    try:
        import dlib  # noqa: F401

        has_dlib = True
    except ImportError:
        has_dlib = False
    core = None
    if hasattr(os, "sched_setaffinity"):
        core = args.core if args.core is not None else max(os.sched_getaffinity(0))
    video = VideoFileSource(clip)
    crops = enrolment_crops(clip, [video.duration * f for f in (0.2, 0.4, 0.6, 0.8, 0.95)], settings)
    # (some crops may be refused at sharing: two faces, too low a quality; each store holds the rest)
    due = settings.analyse_fps
    results: dict[str, Any] = {
        "clip": clip.name, "clip_size": f"{video.width}x{video.height}", "clip_fps": round(video.fps, 2),
        "analyse_fps": due, "detector": resolve_detector(settings.detector),
        "face_model": get_settings().models.face_model, "dlib_importable": has_dlib, "pinned_core": core,
        "cpu_count": os.cpu_count(), "seconds": args.seconds, "enrolment_crops": len(crops), "rounds": []}
    print(f"{clip.name} {results['clip_size']} {results['clip_fps']} fps, detector {results['detector']}, face model "
          f"{results['face_model']} (dlib importable: {has_dlib}), {len(crops)} face crops to enrol, "
          + (f"pinned to core {core}" if core is not None else "NOT pinned (no sched_setaffinity): per machine"),
          flush=True)
    best = 0
    with tempfile.TemporaryDirectory() as tmp:
        cams = Cameras(core, clip, crops, model_threshold(), Path(tmp))
        try:
            for k in range(1, args.max_k + 1):
                figures = cams.round(k, args.warmup, args.seconds)
                fps = [round(f["fps"], 2) for f in figures]
                shares = [round(f["share"], 3) for f in figures]
                ok = all(f["share"] >= SUSTAINED for f in figures)
                busy = sum(f["cpu_s"] for f in figures) / max(f["wall_s"] for f in figures)
                results["watchlist_entries"] = cams.entries
                other = None if cams.core_busy is None else max(0.0, cams.core_busy - busy)
                results["rounds"].append({"k": k, "fps": fps, "share_of_due": shares, "sustained": ok,
                                          "cpu_busy_share": round(busy, 2),
                                          "other_load_on_core": None if other is None else round(other, 2),
                                          "alerts": sum(int(f["alerts"]) for f in figures),
                                          "dropped": sum(int(f["dropped"]) for f in figures)})
                print(f"  K={k}: analysed fps per camera {fps} (due {due}), share of the frames due {shares}, "
                      f"CPU busy {busy:.2f} of the core (other processes: "
                      f"{'?' if other is None else f'{other:.2f}'}): {'sustained' if ok else 'NOT sustained'}",
                      flush=True)
                if ok and best == k - 1:
                    best = k
                if not ok and not args.all:
                    break
        finally:
            cams.close()
    results["cameras_per_core"] = best
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"watchlist entries per camera: {results.get('watchlist_entries')}; alerts per K: "
          f"{[r['alerts'] for r in results['rounds']]}")
    print(f"cameras one core sustains at {due} analysed fps (each >= {SUSTAINED:.0%} of the frames due): {best}")


if __name__ == "__main__":
    main()
