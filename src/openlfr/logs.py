"""openlfr's logging, configured once per process.

:func:`configure_logging` gives the ``openlfr`` logger tree one stderr handler, at the level
of ``--log-level`` / ``OPENLFR_LOG_LEVEL``, in the form of ``OPENLFR_LOG_FORMAT``: ``text``,
one line of ``key=value`` pairs per record (a value holding spaces, quotes or ``=`` is written
as a JSON string), or ``json``, one JSON object per line, with the same keys::

    ts=2026-12-03T18:30:00.123Z level=info logger=openlfr.governance.retention msg="retention sweep: ..."
    {"ts": "2026-12-03T18:30:00.123Z", "level": "info", "logger": "openlfr.pipeline.worker", "msg": "..", "camera": "c"}

Fields given with ``extra={...}``, and the process's context (a camera worker's ``camera``),
follow ``msg``; a traceback is the ``exc`` field. Other libraries' loggers are left alone.
:func:`uvicorn_log_config` is the ``log_config`` that ``openlfr serve`` hands to uvicorn: its
loggers and openlfr's through the same handler and form.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TextIO

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
FORMATS = ("text", "json")
ROOT = "openlfr"
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")

# a LogRecord's own attributes: whatever else a record carries came from extra={...}
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "taskName",
                                                                           "color_message"}  # uvicorn's extra
_BARE = re.compile(r'[^\s"=\\]+')
_context: dict[str, str] = {}  # fields added to every record of this process (a worker's camera)


def _timestamp(record: logging.LogRecord) -> str:
    at = datetime.fromtimestamp(record.created, UTC)
    return f"{at:%Y-%m-%dT%H:%M:%S}.{int(record.msecs):03d}Z"


def record_fields(record: logging.LogRecord, formatter: logging.Formatter | None = None) -> dict[str, Any]:
    """The fields one record is written as: ts, level, logger, msg, then the process's context,
    the record's extra fields, and its traceback (``exc``) if any."""
    fields: dict[str, Any] = {"ts": _timestamp(record), "level": record.levelname.lower(), "logger": record.name,
                              "msg": record.getMessage()}
    extra = {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}
    for key, value in {**_context, **extra}.items():  # a record's own extra before the process's context
        fields.setdefault(key, value)  # never in place of ts, level, logger or msg
    formatter = formatter or logging.Formatter()
    if record.exc_info:
        fields["exc"] = formatter.formatException(record.exc_info)
    elif record.exc_text:
        fields["exc"] = record.exc_text
    if record.stack_info:
        fields["stack"] = formatter.formatStack(record.stack_info)
    return fields


def text_value(value: object) -> str:
    """``value`` as written in the text form: bare, or a JSON string when it holds spaces,
    quotes, ``=`` or backslashes (or is empty), so that each record stays one parsable line."""
    text = str(value)
    return text if _BARE.fullmatch(text) else json.dumps(text, ensure_ascii=False)


class StructuredFormatter(logging.Formatter):
    """Formats a record as one line: ``key=value`` pairs (``fmt="text"``) or a JSON object."""

    def __init__(self, fmt: str = "text") -> None:
        super().__init__()
        if fmt not in FORMATS:
            raise ValueError(f"log format must be one of {', '.join(FORMATS)}, not {fmt!r}")
        self.form = fmt

    def format(self, record: logging.LogRecord) -> str:
        fields = record_fields(record, self)
        if self.form == "json":
            return json.dumps(fields, default=str, ensure_ascii=False)
        return " ".join(f"{key}={text_value(value)}" for key, value in fields.items())


class StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record is emitted (not when the handler was
    made), so a handler set up under a replaced stderr (a test runner's) never writes to a
    closed stream."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def _resolve(level: str | None, fmt: str | None) -> tuple[str, str]:
    if level is None or fmt is None:
        from openlfr.config import get_settings

        settings = get_settings()
        level = level or settings.log_level
        fmt = fmt or settings.log_format
    level = level.lower()
    if level not in LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LEVELS)}, not {level!r}")
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    return level, fmt


def configure_logging(level: str | None = None, fmt: str | None = None,
                      context: Mapping[str, str] | None = None) -> None:
    """Configure openlfr's logging for this process: one stderr handler on the ``openlfr``
    logger (not propagated, so each record is written once), at ``level`` in form ``fmt``
    (default: the settings, ``OPENLFR_LOG_LEVEL`` and ``OPENLFR_LOG_FORMAT``). ``context``
    (e.g. ``{"camera": "cam1"}``) is added to every record of this process. Safe to call
    again: the handler is reconfigured, never added twice."""
    level, fmt = _resolve(level, fmt)
    if context is not None:
        _context.clear()
        _context.update(context)
    logger = logging.getLogger(ROOT)
    ours = [h for h in logger.handlers if isinstance(h, StderrHandler)]
    handler = ours[0] if ours else StderrHandler()
    for extra in ours[1:]:
        logger.removeHandler(extra)
    handler.setFormatter(StructuredFormatter(fmt))
    handler.setLevel(logging.NOTSET)
    if not ours:
        logger.addHandler(handler)
    logger.setLevel(LEVELS[level])
    logger.propagate = False


def uvicorn_log_config(level: str | None = None, fmt: str | None = None) -> dict[str, Any]:
    """The ``log_config`` for uvicorn (a :func:`logging.config.dictConfig` dict): uvicorn's
    loggers and openlfr's, all through one stderr handler in one form, at ``level``
    (default: the settings)."""
    level, fmt = _resolve(level, fmt)
    upper = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"structured": {"()": f"{__name__}.StructuredFormatter", "fmt": fmt}},
        "handlers": {"stderr": {"()": f"{__name__}.StderrHandler", "formatter": "structured"}},
        "loggers": {
            ROOT: {"handlers": ["stderr"], "level": upper, "propagate": False},
            "uvicorn": {"handlers": ["stderr"], "level": upper, "propagate": False},
            "uvicorn.error": {"level": upper},  # through "uvicorn"'s handler
            "uvicorn.access": {"handlers": ["stderr"], "level": upper, "propagate": False},
        },
    }
