"""openlfr's logging, configured once per process.

CONTRACT (issue 17, H4 implements): ``configure_logging(level, fmt)`` sets up openlfr's loggers
(and the root handler) once; ``uvicorn_log_config(level, fmt)`` is the dict ``openlfr serve``
hands to uvicorn so that openlfr's records are kept beside uvicorn's.
"""

from __future__ import annotations

from typing import Any


def configure_logging(level: str | None = None, fmt: str | None = None) -> None:
    """Configure logging for this process from ``level``/``fmt`` or the settings
    (``OPENLFR_LOG_LEVEL``, ``OPENLFR_LOG_FORMAT``)."""


def uvicorn_log_config(level: str | None = None, fmt: str | None = None) -> dict[str, Any]:
    """The ``log_config`` for uvicorn: its loggers and openlfr's, in one format."""
    return {"version": 1, "disable_existing_loggers": False}
