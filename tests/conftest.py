"""Shared fixtures: where the real evaluation data lives, and a private data directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """``OPENLFR_DATA`` or ``../shared/data`` beside the repository."""
    return Path(os.environ.get("OPENLFR_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real face data (LFW, videos, ...); skips the test when it is absent."""
    path = shared_data_dir()
    if not (path / "lfw").is_dir():
        pytest.skip(f"real face data not found at {path} (set OPENLFR_DATA to the shared data folder)")
    return path


@pytest.fixture(autouse=True)
def _private_openlfr_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep every test's watchlists, stores and keys out of the user's real data folder.

    Converted models are cached in one session-wide folder so they are built once.
    """
    home = tmp_path_factory.mktemp("openlfr-home")
    monkeypatch.setenv("OPENLFR_DATA_DIR", str(home))
    cache = REPO / ".cache" / "models"
    monkeypatch.setenv("OPENLFR_MODEL_CACHE_DIR", str(cache))
    from openlfr.config import get_settings

    get_settings.cache_clear()
