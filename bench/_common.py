"""Helpers shared by the benchmark scripts: where the data is, timing."""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    """``OPENLFR_DATA`` or ``../shared/data``; exits with a message when absent."""
    path = Path(os.environ.get("OPENLFR_DATA", REPO.parent / "shared" / "data"))
    if not (path / "lfw").is_dir():
        raise SystemExit(f"real face data not found at {path}: set OPENLFR_DATA")
    return path


def lfw_images(root: Path, n: int) -> list[Path]:
    """The first image of the first ``n`` people (sorted): a fixed, reproducible sample."""
    dirs = sorted(d for d in (root / "lfw").iterdir() if d.is_dir())
    return [sorted(d.glob("*.jpg"))[0] for d in dirs[:n]]


def video_frames(path: Path, n: int, size: tuple[int, int] | None = None) -> list[np.ndarray]:
    """``n`` RGB frames spread over a video, optionally resized to ``size`` (w, h)."""
    cap = cv2.VideoCapture(str(path))
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    frames = []
    for idx in np.linspace(0, total - 1, n).astype(int):
        cap.set(cv2.CAP_PROP_POS_FRAMES, int(idx))
        ok, bgr = cap.read()
        if ok:
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            frames.append(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA) if size else rgb)
    cap.release()
    return frames


def timed(fn: Callable[[], object], repeat: int = 1) -> tuple[float, object]:
    """(best seconds over ``repeat`` runs, last result)."""
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def add_postgres_option(ap: argparse.ArgumentParser) -> None:
    """``--database-url``: a PostgreSQL server the bench creates its database on (default
    ``OPENLFR_TEST_POSTGRES_URL``; ``bash .ci/postgres.sh`` starts a throwaway one)."""
    ap.add_argument("--database-url", default=os.environ.get("OPENLFR_TEST_POSTGRES_URL"),
                    help="a PostgreSQL server to create the bench's database on (default $OPENLFR_TEST_POSTGRES_URL)")


def require_postgres(url: str | None) -> str:
    """``url``, or exit saying how to get a server."""
    if not url:
        raise SystemExit("no PostgreSQL server: set OPENLFR_TEST_POSTGRES_URL or --database-url "
                         "(bash .ci/postgres.sh starts one)")
    return url
