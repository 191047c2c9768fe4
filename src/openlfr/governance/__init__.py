"""Governance services: organisations, users and credentials, agreements, sharing ledger, watchlists, cameras and
signage, deployments, retention. Open a transaction with :class:`Governance` and call the
service functions with its :class:`Ctx`; every action is role-checked and audited."""

from openlfr.config import Policy
from openlfr.governance.context import Ctx, Governance, TemplateFn, utc_now
from openlfr.governance.credentials import Actor
from openlfr.governance.errors import DuplicateError, PermissionDenied, RuleViolation
from openlfr.governance.schemas import OrgKind, Role, parse

__all__ = ["Actor", "Ctx", "DuplicateError", "Governance", "OrgKind", "PermissionDenied", "Policy", "Role",
           "RuleViolation", "TemplateFn", "parse", "utc_now"]
