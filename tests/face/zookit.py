"""The bundled model-zoo files the face tests read, or a skip saying why one is unavailable."""

from __future__ import annotations

from pathlib import Path

import pytest

from openlfr.errors import ModelError
from openlfr.face import zoo_files


def zoo_file(zoo: zoo_files.ZooFile) -> Path:
    """The path of ``zoo``'s file; the test is skipped, with the reason, if it cannot be had."""
    try:
        path = zoo_files.zoo_path(zoo)
    except ModelError as exc:
        pytest.skip(str(exc))
    if not path.is_file():
        pytest.skip(f"{path} is missing")
    return path
