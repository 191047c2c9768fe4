"""Users of one organisation, managed only by that organisation's admins.

An admin creates users of their own organisation (with roles the organisation's kind
allows, and a rank for police), changes their role or rank, resets their password and
deactivates them; each change that touches a user's access revokes every token they hold.
No admin can do any of this for another organisation's users, at any door.
"""

from __future__ import annotations

from sqlalchemy import select

from openlfr.errors import NotFoundError
from openlfr.governance import credentials
from openlfr.governance.context import Ctx
from openlfr.governance.credentials import Actor
from openlfr.governance.errors import PermissionDenied, RuleViolation
from openlfr.governance.organisations import _new_user, check_role
from openlfr.governance.schemas import OrgKind, Role, UserCreate
from openlfr.store.models import User


def _own_user(ctx: Ctx, actor: Actor, action: str, name: str) -> tuple[User, User]:
    """(the acting admin, the user ``name`` of the admin's own organisation)."""
    admin = ctx.require(actor, {Role.ADMIN}, action, "user", name)
    user = ctx.session.execute(select(User).where(User.name == name)).scalar_one_or_none()
    if user is None:
        raise NotFoundError(f"no user named {name!r}")
    if user.organisation_id != admin.organisation_id:
        raise PermissionDenied(f"{admin.name} is an admin of {admin.organisation}; {name} belongs to "
                               f"{user.organisation}, whose own admins alone manage its users")
    ctx.attempt = (admin.name, action, "user", str(user.id))
    return admin, user


def create_user(ctx: Ctx, actor: Actor, data: UserCreate, password: str | None) -> User:
    """An admin adds a user to their own organisation, with a first password (``None``: none
    yet; the admin sets one later with :func:`reset_password`)."""
    admin = ctx.require(actor, {Role.ADMIN}, "user.create", "user", data.name)
    user = _new_user(ctx, admin.org, data.name, data.role, data.rank)
    if password is not None:
        credentials.store_password(ctx.session, user, password, ctx.now())
    ctx.audit(actor, "user.create", "user", user.id, name=user.name, role=user.role, rank=user.rank,
              organisation=admin.org.name)
    return user


def set_role(ctx: Ctx, actor: Actor, name: str, role: Role, rank: str | None = None) -> User:
    """Change a user's role (and rank); their tokens are revoked, so the change holds at once."""
    admin, user = _own_user(ctx, actor, "user.role", name)
    new = _role_fits(admin, role, rank)
    old = (user.role, user.rank)
    user.role, user.rank = new
    revoked = credentials.revoke_all(ctx.session, user.id, ctx.now())
    ctx.audit(actor, "user.role", "user", user.id, old_role=old[0], old_rank=old[1], role=user.role, rank=user.rank,
              tokens_revoked=revoked)
    return user


def _role_fits(admin: User, role: Role, rank: str | None) -> tuple[str, str | None]:
    check_role(OrgKind(admin.org.kind), role, rank)
    return role.value, rank


def reset_password(ctx: Ctx, actor: Actor, name: str, password: str) -> User:
    """An admin sets a new password for a user of their organisation; every token of that user is revoked."""
    _, user = _own_user(ctx, actor, "user.password", name)
    credentials.store_password(ctx.session, user, password, ctx.now())
    revoked = credentials.revoke_all(ctx.session, user.id, ctx.now())
    ctx.audit(actor, "user.password", "user", user.id, tokens_revoked=revoked)
    return user


def change_own_password(ctx: Ctx, actor: Actor, old: str, new: str) -> User:
    """A user changes their own password (the old one is checked); their other tokens are revoked."""
    user = ctx.require(actor, None, "user.own_password", "user", "")
    if credentials.check_password(ctx.session, user.name, old) is None:
        raise PermissionDenied("the current password is wrong")
    credentials.store_password(ctx.session, user, new, ctx.now())
    revoked = credentials.revoke_all(ctx.session, user.id, ctx.now())
    ctx.audit(user.name, "user.own_password", "user", user.id, tokens_revoked=revoked)
    return user


def deactivate(ctx: Ctx, actor: Actor, name: str, reason: str) -> User:
    """Offboard a user of the admin's organisation: refused from now on, every token revoked at once."""
    admin, user = _own_user(ctx, actor, "user.deactivate", name)
    if user.id == admin.id:
        raise RuleViolation("an admin cannot deactivate themselves: another admin of the organisation must")
    if not user.active:
        raise RuleViolation(f"{name} is already deactivated")
    user.active = False
    revoked = credentials.revoke_all(ctx.session, user.id, ctx.now())
    ctx.audit(actor, "user.deactivate", "user", user.id, reason=reason, tokens_revoked=revoked)
    return user


def list_users(ctx: Ctx, actor: Actor) -> list[User]:
    """The users an admin or auditor may see: their own organisation's (an oversight body's auditors: all)."""
    query = ctx.visible(actor, "user.list", select(User).order_by(User.id), User.organisation_id,
                        {Role.ADMIN, Role.AUDITOR})
    return list(ctx.session.execute(query).scalars())
