"""Fixtures of the pipeline tests: the real clips and reference photos (skipped when absent), and
the usual cast on a fresh store of either database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pipekit import KEY  # (pipekit puts tests/governance on the path)
from govkit import Clock, Estate, fake_template
from openlfr.governance import Governance


@pytest.fixture(scope="session")
def video_dir(data_dir: Path) -> Path:
    path = data_dir / "video"
    if not (path / "short_hamilton_clip.mp4").is_file():
        pytest.skip(f"the test clips are not in {path}")
    return path


@pytest.fixture
def estate(db_url: str, tmp_path: Path) -> Iterator[Estate]:
    """The usual cast on a fresh store, on the tests' fixed clock (which decides whether a
    deployment is live now); lease expiry is database time, whatever that clock says."""
    clock = Clock()
    gov = Governance(db_url, blob_root=tmp_path / "blobs", key=KEY, template_fn=fake_template, migrate=False,
                     clock=clock)
    e = Estate(gov, clock)
    e.setup_users()
    yield e
    gov.close()
