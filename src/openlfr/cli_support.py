"""What every ``openlfr`` command module shares: deliberate errors become one line.

Every :class:`~openlfr.errors.OpenLFRError` a command raises (bad input, a refused action)
is printed as ``error: <message>`` on stderr with exit code 2 — never a traceback.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from openlfr.errors import OpenLFRError

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str) -> None:
    """Stop the command with one ``error:`` line and exit code 2."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def user_errors(fn: F) -> F:
    """Decorate a command so that deliberate openlfr errors end it through :func:`fail`."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except OpenLFRError as err:
            fail(str(err))

    return wrapper  # type: ignore[return-value]
