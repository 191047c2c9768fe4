"""Users and their roles."""

from __future__ import annotations

from sqlalchemy import func, select

from openlfr.governance.context import Ctx
from openlfr.governance.errors import DuplicateError, PermissionDenied
from openlfr.governance.schemas import Role, UserCreate
from openlfr.store.models import User

BOOTSTRAP_ACTOR = "setup"


def create_user(ctx: Ctx, actor: str, data: UserCreate) -> User:
    """Add a user. Only an operator admin may, except for the very first user of a new store."""
    ctx.attempt = (actor, "user.create", "user", data.name)
    has_users = ctx.session.execute(select(func.count()).select_from(User)).scalar_one() > 0
    if has_users:
        ctx.require(actor, {Role.OPERATOR_ADMIN}, "user.create", "user", data.name)
    elif data.role is not Role.OPERATOR_ADMIN:
        raise PermissionDenied("the first user of a new store must be an operator_admin")
    if ctx.session.execute(select(User).where(User.name == data.name)).scalar_one_or_none() is not None:
        raise DuplicateError(f"user {data.name!r} already exists")
    user = User(name=data.name, role=data.role.value, organisation=data.organisation, created_at=ctx.now())
    ctx.session.add(user)
    ctx.session.flush()
    ctx.audit(actor if has_users else BOOTSTRAP_ACTOR, "user.create", "user", user.id,
              name=user.name, role=user.role, organisation=user.organisation)
    return user


def list_users(ctx: Ctx) -> list[User]:
    """Every user, oldest first."""
    return list(ctx.session.execute(select(User).order_by(User.id)).scalars())
