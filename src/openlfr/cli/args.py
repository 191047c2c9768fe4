"""Arguments and values in the same form for the same thing in every command: users by name;
cameras by name or id; the rest by id; dates and times in ISO form (UTC when no zone is given)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

import typer

from openlfr.errors import InputError
from openlfr.governance.grounds import WatchlistCategory

#: the watchlist categories, for --help
CATEGORIES_HELP = ", ".join(
    f"{c.value} ({c.rule.words}{'; needs --warrant-ref' if c.rule.needs_reference else ''})" for c in WatchlistCategory)

UserName = Annotated[str, typer.Argument(help="The user's name.")]
AgreementId = Annotated[int, typer.Argument(help="The agreement's id (openlfr agreement list).")]
DeploymentId = Annotated[int, typer.Argument(help="The deployment's id (openlfr deployment list).")]
WatchlistId = Annotated[int, typer.Argument(
    help="The watchlist's id (printed by watchlist-create; openlfr deployment show).")]
ImageId = Annotated[int, typer.Argument(help="The shared image's id (openlfr share list).")]
CameraRef = Annotated[str, typer.Argument(help="The camera's name or id (openlfr camera list).")]


def parse_when(text: str) -> datetime:
    """ISO date or datetime; naive values are taken as UTC."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError as err:
        raise InputError(f"{text!r} is not an ISO date or date-time (e.g. 2030-03-01T09:00)") from err
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def parse_day(text: str) -> date:
    """An ISO date (YYYY-MM-DD)."""
    try:
        return date.fromisoformat(text)
    except ValueError as err:
        raise InputError(f"{text!r} is not an ISO date (YYYY-MM-DD)") from err


def iso(value: datetime | None) -> str:
    """``value`` in ISO form, or ``""`` for none."""
    return value.isoformat() if value else ""
