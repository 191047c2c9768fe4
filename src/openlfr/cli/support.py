"""What every ``openlfr`` command module shares: the one error decorator
(:func:`user_errors`), the one ``--json`` option (:data:`JsonOption`) and printer
(:func:`print_json`, :func:`print_rows`), passwords read from the environment (for scripts)
or a hidden prompt, a missing store refused before anything is created
(:func:`missing_store`), and progress and a summary for long commands (:func:`progress`).
The store itself is opened by :mod:`openlfr.cli.store`. (Cameras are named by name or id
alike everywhere: :func:`openlfr.governance.cameras.find_camera`.)

Every deliberate error a command raises (an :class:`~openlfr.errors.OpenLFRError`: bad input,
a refused action; a missing optional backend; a database that cannot be used) is printed as
``error: <message>`` on stderr with exit code 2 — never a traceback. :func:`one_line` is the
one place that words them.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from openlfr.errors import OpenLFRError

F = TypeVar("F", bound=Callable[..., Any])

# the password of the user logging in (or changing their own), and a new password being set
PASSWORD_ENV = "OPENLFR_PASSWORD"
NEW_PASSWORD_ENV = "OPENLFR_NEW_PASSWORD"


#: the ``--json`` option of every command that has one
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def print_json(obj: Any, *, line: bool = False) -> None:
    """``obj`` as JSON on stdout: indented, or (``line``) one line, flushed at once (a stream
    of JSON Lines, such as alerts as they are committed). Dates and the like are printed as text."""
    if line:
        sys.stdout.write(json.dumps(obj, default=str) + "\n")
        sys.stdout.flush()
    else:
        sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")


def print_rows(rows: list[dict[str, Any]], json_out: bool) -> None:
    """Rows as JSON (``--json``) or one ``key=value`` line each; ``(none)`` for no rows."""
    if json_out:
        print_json(rows)
        return
    if not rows:
        typer.echo("(none)")
    for row in rows:
        typer.echo("  ".join(f"{k}={v}" for k, v in row.items()))


def fail(message: str) -> None:
    """Stop the command with one ``error:`` line and exit code 2."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def missing_module(err: ModuleNotFoundError) -> str:
    """The one-line message for an optional part of openlfr that is not installed."""
    name = (err.name or str(err)).split(".")[0]
    hint = {"dlib": "pip install 'openlfr[dlib]', or use --detector yunet / --backend cpu",
            "torch": "install PyTorch (with CUDA for --backend cuda), or use --backend cpu"}.get(
        name, "install it, or choose another --backend, --detector or --face-model")
    return f"the optional backend module {name!r} is not installed: {hint}"


def one_line(err: BaseException) -> str | None:
    """The one-line message for a deliberate error, or ``None`` for anything else (a bug, whose
    traceback is wanted): an openlfr error (bad input, a refused action), a missing optional
    backend module (``torch``, ``dlib``...), or a database that is corrupt, missing or unreachable."""
    from sqlalchemy.exc import DBAPIError

    if isinstance(err, OpenLFRError):
        return str(err)
    if isinstance(err, ModuleNotFoundError):
        return missing_module(err)
    if isinstance(err, DBAPIError):
        first = str(err.orig).strip().splitlines()[0] if err.orig is not None else type(err).__name__
        return (f"the store's database cannot be used ({first}); check OPENLFR_DATABASE_URL "
                "or OPENLFR_DATA_DIR")
    return None


def user_errors(fn: F) -> F:
    """The error decorator of every command: a deliberate error (:func:`one_line`) ends it
    through :func:`fail` (one line on stderr, exit code 2) instead of a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as err:
            message = one_line(err)
            if message is None:
                raise
            fail(message)

    return wrapper  # type: ignore[return-value]


def about_file(err: Exception, path: Path | str) -> str:
    """``err``'s message naming the file ``path``: the face pipeline sees only bytes, and says
    ``image:`` or ``<bytes>:`` where the user needs the file they gave."""
    text = str(err)
    for anonymous in ("<bytes>: ", "image: "):
        if text.startswith(anonymous):
            return f"{path}: {text[len(anonymous):]}"
    text = text.replace("<bytes>", str(path))
    return text if str(path) in text else f"{path}: {text}"


# ---------------------------------------------------------------- the store
def missing_store() -> str | None:
    """Why the configured store cannot be opened without creating a new one, or ``None`` when
    it exists. Creates nothing: a mistyped ``--data-dir`` must not become an empty store.

    A SQLite store exists when its file is there and not empty; a server database
    (``OPENLFR_DATABASE_URL``) when it holds openlfr's tables (an unreachable one is left for
    the command to report)."""
    from openlfr.config import get_settings

    url = get_settings().store.database_url or ""
    hint = ("make one with 'openlfr admin create NAME --org ORG' or 'openlfr demo-setup', or add --init to "
            "start an empty one here")
    if url and not url.startswith("sqlite"):
        from sqlalchemy import create_engine, inspect
        from sqlalchemy.engine import make_url

        try:
            engine = create_engine(url)
            try:
                if inspect(engine).has_table("audit_events"):
                    return None
            finally:
                engine.dispose()
        except Exception:  # noqa: BLE001 - unreachable or unparsable: the command says so better
            return None
        shown = make_url(url).render_as_string(hide_password=True)
        return f"the database {shown} holds no openlfr store (check OPENLFR_DATABASE_URL; nothing was created): {hint}"
    if url:
        from sqlalchemy.engine import make_url

        database = make_url(url).database or ""
        if database in ("", ":memory:"):
            return None
        path = Path(database)
        where = "check OPENLFR_DATABASE_URL"
    else:
        path = Path(get_settings().data_dir) / "openlfr.db"
        where = "check --data-dir or OPENLFR_DATA_DIR"
    if path.is_file() and path.stat().st_size > 0:
        return None
    return f"no openlfr store at {path} ({where}; nothing was created): {hint}"


# ---------------------------------------------------------------- names and ids
# ---------------------------------------------------------------- progress


class Progress:
    """Progress of one long command on stderr: a Rich bar when stderr is a terminal, else a
    plain line every ``OPENLFR_PROGRESS_SECONDS`` (default 10) such as ``scanned 250 of 1000
    frames, 0 alerts``; and always a closing summary line (:meth:`done`). Use :func:`progress`."""

    def __init__(self, verb: str, total: int | None, unit: str, console: Any = None,
                 every_s: float | None = None) -> None:
        from rich.console import Console

        from openlfr.config import get_settings

        self.verb, self.total, self.unit = verb, total, unit
        self.count = 0
        self.note = ""  # extra counts shown after the count, e.g. "3 alerts"
        self.console = console or Console(stderr=True)
        self.every_s = every_s if every_s is not None else get_settings().pipeline.progress_seconds
        self.started = self._last = time.monotonic()
        self._bar: Any = None
        self._task: Any = None

    @property
    def elapsed(self) -> float:
        """Seconds since the work started."""
        return time.monotonic() - self.started

    def line(self) -> str:
        """The plain progress line: ``scanned 250 of 1000 frames, 0 alerts``."""
        of = f" of {self.total}" if self.total else ""
        return f"{self.verb} {self.count}{of} {self.unit}" + (f", {self.note}" if self.note else "")

    def advance(self, n: int = 1, note: str | None = None) -> None:
        """``n`` more done (``note``: the counts shown beside them)."""
        self.update(self.count + n, note)

    def update(self, count: int, note: str | None = None, total: int | None = None) -> None:
        """``count`` done so far (``note``: the counts shown beside them; ``total``: once known)."""
        self.count = count
        if note is not None:
            self.note = note
        if total is not None:
            self.total = total
        if self._bar is not None:
            self._bar.update(self._task, completed=count, note=self.note, total=self.total or None)
        elif time.monotonic() - self._last >= self.every_s:
            self._last = time.monotonic()
            self.console.print(self.line(), markup=False, highlight=False, soft_wrap=True)

    def done(self, summary: str) -> None:
        """Print the closing summary, with the time taken: ``0 alerts in 105 frames analysed (42 s)``."""
        self._stop()
        self.console.print(f"{summary} ({self.elapsed:.0f} s)", markup=False, highlight=False, soft_wrap=True)

    def _start(self) -> None:
        if not self.console.is_terminal:
            return
        from rich.progress import (BarColumn, MofNCompleteColumn, SpinnerColumn, TextColumn, TimeElapsedColumn,
                                   TimeRemainingColumn)
        from rich.progress import Progress as Bar

        # (a total learnt later, e.g. a video's length, turns the pulsing bar into a measured one)
        columns = [SpinnerColumn(), TextColumn(f"{self.verb} {self.unit}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[note]}"), TimeElapsedColumn(), TimeRemainingColumn()]
        # output meant for stdout stays there when it is piped (a file of alerts); on a shared
        # terminal it is printed above the bar instead of through it
        self._bar = Bar(*columns, console=self.console, transient=True, redirect_stdout=sys.stdout.isatty(),
                        redirect_stderr=False)
        self._task = self._bar.add_task(self.verb, total=self.total or None, note=self.note)
        self._bar.start()

    def _stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


@contextmanager
def progress(verb: str, total: int | None = None, unit: str = "frames", *, console: Any = None,
             every_s: float | None = None) -> Iterator[Progress]:
    """A :class:`Progress` for ``with``: ``with progress("scanned", 1000, "frames") as p:
    p.advance(); ...; p.done("0 alerts in 105 frames analysed")``. The bar is stopped however
    the block ends; the summary is the caller's (:meth:`Progress.done`)."""
    bar = Progress(verb, total, unit, console, every_s)
    bar._start()
    try:
        yield bar
    finally:
        bar._stop()


def password(prompt: str = "Password") -> str:
    """A password being proven: ``OPENLFR_PASSWORD``, else a hidden prompt."""
    return os.environ.get(PASSWORD_ENV) or typer.prompt(prompt, hide_input=True)


def new_password(prompt: str = "New password") -> str:
    """A password being set: ``OPENLFR_NEW_PASSWORD``, else a hidden prompt asked twice."""
    return os.environ.get(NEW_PASSWORD_ENV) or typer.prompt(prompt, hide_input=True, confirmation_prompt=True)
