"""What every ``openlfr`` command module shares: deliberate errors become one line, and
passwords are read from the environment (for scripts) or a hidden prompt.

Every :class:`~openlfr.errors.OpenLFRError` a command raises (bad input, a refused action)
is printed as ``error: <message>`` on stderr with exit code 2 — never a traceback.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from openlfr.errors import OpenLFRError

F = TypeVar("F", bound=Callable[..., Any])

# the password of the user logging in (or changing their own), and a new password being set
PASSWORD_ENV = "OPENLFR_PASSWORD"
NEW_PASSWORD_ENV = "OPENLFR_NEW_PASSWORD"


def print_rows(rows: list[dict[str, Any]], json_out: bool) -> None:
    """Rows as JSON (``--json``) or one ``key=value`` line each; ``(none)`` for no rows."""
    if json_out:
        sys.stdout.write(json.dumps(rows, indent=2, default=str) + "\n")
        return
    if not rows:
        typer.echo("(none)")
    for row in rows:
        typer.echo("  ".join(f"{k}={v}" for k, v in row.items()))


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


def password(prompt: str = "Password") -> str:
    """A password being proven: ``OPENLFR_PASSWORD``, else a hidden prompt."""
    return os.environ.get(PASSWORD_ENV) or typer.prompt(prompt, hide_input=True)


def new_password(prompt: str = "New password") -> str:
    """A password being set: ``OPENLFR_NEW_PASSWORD``, else a hidden prompt asked twice."""
    return os.environ.get(NEW_PASSWORD_ENV) or typer.prompt(prompt, hide_input=True, confirmation_prompt=True)
