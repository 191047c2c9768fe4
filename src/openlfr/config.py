"""Settings shared by every part of openlfr.

Read from environment variables prefixed ``OPENLFR_`` (for example ``OPENLFR_DATA_DIR``,
``OPENLFR_BACKEND``) with sensible embedded defaults: everything lives in one data
directory in the user's data folder.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from platformdirs import user_data_dir
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

Backend = Literal["auto", "cpu", "cuda", "dlib"]


class Settings(BaseSettings):
    """openlfr's configuration; every field can be set as ``OPENLFR_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="OPENLFR_", extra="ignore")

    data_dir: Path = Field(default_factory=lambda: Path(user_data_dir("openlfr", appauthor=False)))
    backend: Backend = "auto"
    # YuNet places the 5 points SFace aligns on; mmod and hog serve the dlib ResNet
    detector: str = "yunet"
    # the face model whose templates are made and matched (see openlfr.face.registry)
    face_model: str = "sface"
    # faces of people on no watchlist (LFW layout or a flat folder): the impostor cohort from
    # which deployment requests that give a target false-alert rate get their threshold
    calibration_cohort: Path | None = None
    model_cache_dir_override: Path | None = Field(default=None, alias="OPENLFR_MODEL_CACHE_DIR")
    # the image gate (openlfr.face.image_gate): largest image decoded, read from its header first,
    # and the memory all decodes in this process may hold at once
    max_image_pixels: int = Field(default=25_000_000, gt=0)
    decode_budget_bytes: int = Field(default=512 * 1024 * 1024, gt=0)
    # openlfr's own log records (openlfr.logs): least severe level shown, and their form
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["text", "json"] = "text"

    @property
    def model_cache_dir(self) -> Path:
        """Where converted models (ONNX graphs) are cached: ``<data_dir>/models`` by default."""
        return self.model_cache_dir_override or self.data_dir / "models"


def configure(**overrides: object) -> Settings:
    """Install the process-wide settings: the environment with ``overrides`` on top (the command
    line's global options; ``None`` values are ignored). Raises pydantic's ``ValidationError``.

    CONTRACT (issue 17, H1 replaces this body): must not write ``os.environ``."""
    import os

    names = {"data_dir": "OPENLFR_DATA_DIR", "backend": "OPENLFR_BACKEND", "detector": "OPENLFR_DETECTOR",
             "face_model": "OPENLFR_FACE_MODEL", "log_level": "OPENLFR_LOG_LEVEL"}
    for name, value in overrides.items():
        if value is not None:
            os.environ[names[name]] = str(value)
    get_settings.cache_clear()
    return get_settings()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (read once from the environment)."""
    return Settings()
