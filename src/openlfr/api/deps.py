"""Small helpers the routes share."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import Request

from openlfr.config import ApiSettings
from openlfr.governance import Ctx, Governance


@contextmanager
def tx(request: Request) -> Iterator[Ctx]:
    """One governance transaction for this request."""
    gov: Governance = request.app.state.gov
    with gov.transaction() as ctx:
        yield ctx


@contextmanager
def reading(request: Request) -> Iterator[Ctx]:
    """A read-only governance context for this request (never waits for a write in progress)."""
    gov: Governance = request.app.state.gov
    with gov.reading() as ctx:
        yield ctx


def settings(request: Request) -> ApiSettings:
    """The app's API settings."""
    return request.app.state.settings
