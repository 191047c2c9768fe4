"""Fixtures of the pipeline tests: the real clips and reference photos (skipped when absent)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def video_dir(data_dir: Path) -> Path:
    path = data_dir / "video"
    if not (path / "short_hamilton_clip.mp4").is_file():
        pytest.skip(f"the test clips are not in {path}")
    return path
