"""The one way a command opens the store: :func:`open_store` (at the machine), and on it
:func:`acting` and :func:`as_user` (as the logged-in user, whose credential is checked
before anything else happens) and :func:`at_machine` (one transaction as no user).

The store is the configured one (``OPENLFR_DATABASE_URL``, default SQLite in the data
directory); each is closed when the command is done with it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from openlfr.cli.credentials import verify
from openlfr.errors import InputError


def _template_fn() -> Callable[[bytes], Any]:
    """The face pipeline's enrolment template function (replaced by a fake in tests)."""
    try:
        from openlfr.face.analyzer import enrolment_template
    except ImportError as err:  # pragma: no cover - the face pipeline ships with openlfr
        raise InputError(f"the face pipeline is not available: {err}") from err
    return enrolment_template


@contextmanager
def open_store(with_templates: bool = False) -> Iterator[Any]:
    """A :class:`~openlfr.governance.Governance` on the configured store (``with_templates``:
    able to make face templates), closed afterwards."""
    from openlfr.governance import Governance

    gov = Governance(template_fn=_template_fn() if with_templates else None)
    try:
        yield gov
    finally:
        gov.close()


@contextmanager
def acting(action: str, with_templates: bool = False) -> Iterator[tuple[Any, Any]]:
    """(the store, the logged-in user's credential), checked before anything else happens:
    without a valid credential the command is refused, the refusal audited as ``<action>.refused``."""
    with open_store() as gov:
        me = verify(gov, action)
        if with_templates:  # after the check: a refused command loads no face model
            gov.template_fn = _template_fn()
        yield gov, me


@contextmanager
def as_user(action: str, with_templates: bool = False) -> Iterator[tuple[Any, Any]]:
    """One transaction acting as the logged-in user: (ctx, credential)."""
    with acting(action, with_templates) as (gov, me), gov.transaction() as ctx:
        yield ctx, me


@contextmanager
def at_machine() -> Iterator[Any]:
    """One transaction at the machine, as no user (the retention sweep, the audit log)."""
    with open_store() as gov, gov.transaction() as ctx:
        yield ctx
