"""First run: create the first operator admin (with a password), and check one exists."""

from __future__ import annotations

from sqlalchemy import select

from openlfr.api.auth import set_password
from openlfr.governance import Governance, Role, RuleViolation
from openlfr.governance import users
from openlfr.governance.schemas import UserCreate
from openlfr.store.api_models import Credential
from openlfr.store.models import User


def has_admin(gov: Governance) -> bool:
    """Whether an active operator admin who can log in exists."""
    with gov.transaction() as ctx:
        return ctx.session.execute(
            select(User.id).join(Credential, Credential.user_id == User.id)
            .where(User.role == Role.OPERATOR_ADMIN.value, User.active.is_(True))
        ).first() is not None


def create_first_admin(gov: Governance, name: str, password: str, organisation: str = "") -> int:
    """Create the store's first user, an operator admin with a password; refused once users exist
    (later users are added by an admin through the API or console)."""
    with gov.transaction() as ctx:
        if ctx.session.execute(select(User.id)).first() is not None:
            raise RuleViolation("this store already has users: an operator admin adds more in the console or "
                                "with POST /api/users (use 'openlfr admin password NAME' to set a password)")
        user = users.create_user(ctx, users.BOOTSTRAP_ACTOR,
                                 UserCreate(name=name, role=Role.OPERATOR_ADMIN, organisation=organisation))
        set_password(ctx, users.BOOTSTRAP_ACTOR, user, password)
        return user.id


def set_user_password(gov: Governance, name: str, password: str, actor: str = "cli") -> None:
    """Give an existing user (e.g. one made with ``openlfr user add``) a password to log in with."""
    with gov.transaction() as ctx:
        user = ctx.session.execute(select(User).where(User.name == name)).scalar_one_or_none()
        if user is None:
            from openlfr.errors import NotFoundError

            raise NotFoundError(f"no user named {name!r}")
        set_password(ctx, actor, user, password)
