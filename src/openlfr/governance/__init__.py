"""Governance services: organisations, users and credentials, agreements, sharing ledger, watchlists, cameras and
signage, deployments, retention. Open a transaction with :class:`Governance` and call the
service functions with its :class:`Ctx`; every action is role-checked and audited."""

from openlfr.governance.context import Ctx, Governance, TemplateFn, utc_now
from openlfr.governance.credentials import Actor
from openlfr.governance.errors import DuplicateError, PermissionDenied, RuleViolation
from openlfr.governance.schemas import OrgKind, Role, parse
from openlfr.governance.settings import Policy

__all__ = ["Actor", "Ctx", "DuplicateError", "Governance", "OrgKind", "PermissionDenied", "Policy", "Role",
           "RuleViolation", "TemplateFn", "parse", "utc_now"]
