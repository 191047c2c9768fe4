"""Errors the governance services raise; each is an :class:`~openlfr.errors.OpenLFRError`."""

from openlfr.errors import InputError, NotFoundError, OpenLFRError

__all__ = ["DuplicateError", "InputError", "NotFoundError", "PermissionDenied", "RuleViolation"]


class PermissionDenied(OpenLFRError):
    """The acting user's role (or identity) does not allow this action."""


class RuleViolation(OpenLFRError):
    """The action breaks a governance rule (agreement, limit, window, signage, ...)."""


class DuplicateError(InputError):
    """The same thing (image hash, name, entry) already exists."""


class Throttled(OpenLFRError):
    """Too many failed logins for this name from this place: wait ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after
