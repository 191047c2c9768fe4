"""Governance services: users and roles, agreements, sharing ledger, watchlists, cameras and
signage, deployments, retention. Open a transaction with :class:`Governance` and call the
service functions with its :class:`Ctx`; every action is role-checked and audited."""

from openlfr.governance.context import Ctx, Governance, TemplateFn, utc_now
from openlfr.governance.errors import DuplicateError, PermissionDenied, RuleViolation
from openlfr.governance.schemas import Role, parse
from openlfr.governance.settings import Policy

__all__ = ["Ctx", "DuplicateError", "Governance", "PermissionDenied", "Policy", "Role", "RuleViolation",
           "TemplateFn", "parse", "utc_now"]
