"""Organisations (the parties), their enrolment, and the host's break-glass.

* The **host** is the organisation that runs the installation. Its first admin is created
  on the machine (``openlfr admin create``), and its machine operator may, by break-glass,
  reset the password of one of its own users — never another organisation's.
* Every **other organisation** is registered on the machine and gets a one-time enrolment
  token, to be handed out of band to the person who will be its first admin. They enrol
  with it (console ``/enrol``, ``POST /api/enrol`` or ``openlfr enrol``) and choose their own
  password; from then on only that organisation's admins manage its users.

Registration and enrolment are machine-local and loud: each is audited with the machine
user who did it, and every organisation is listed on the public transparency page with its
kind, when it was registered and when its first admin enrolled. (The host's machine
operator could register an organisation under any name; that cannot be prevented inside
one installation, so it is made visible instead.)
"""

from __future__ import annotations

import getpass
import secrets
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select

from openlfr.errors import InputError, NotFoundError
from openlfr.governance import credentials
from openlfr.governance.context import Ctx
from openlfr.governance.errors import DuplicateError, PermissionDenied, RuleViolation
from openlfr.governance.ranks import check_rank
from openlfr.governance.schemas import ROLES_BY_KIND, OrganisationCreate, OrgKind, Role
from openlfr.store.models import EnrolmentToken, Organisation, User

ENROLMENT_DAYS = 7


def machine_user() -> str:
    """Who is at this machine: ``machine:<OS user>@<host>`` (recorded for local actions)."""
    try:
        who = getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name in some containers
        who = "unknown"
    return f"machine:{credentials.clean_name(who, 40)}@{credentials.clean_name(socket.gethostname(), 60)}"


@dataclass(frozen=True)
class Enrolment:
    """A one-time enrolment token (shown once) for an organisation's first admin."""

    organisation: str
    token: str
    expires_at: datetime


def by_name(ctx: Ctx, name: str) -> Organisation:
    """The organisation called ``name`` or a clear :class:`NotFoundError`."""
    row = ctx.session.execute(select(Organisation).where(Organisation.name == name.strip())).scalar_one_or_none()
    if row is None:
        raise NotFoundError(f"no organisation named {name!r}")
    return row


def host(ctx: Ctx) -> Organisation | None:
    """The organisation that runs this installation, once registered."""
    return ctx.session.execute(select(Organisation).where(Organisation.is_host.is_(True))).scalar_one_or_none()


def list_organisations(ctx: Ctx) -> list[Organisation]:
    """Every organisation, oldest first (public: names and kinds only)."""
    return list(ctx.session.execute(select(Organisation).order_by(Organisation.id)).scalars())


def register(ctx: Ctx, data: OrganisationCreate, by: str, *, is_host: bool = False) -> tuple[Organisation, Enrolment]:
    """Register an organisation (machine-local) and issue the one-time token for its first admin."""
    ctx.attempt = (by, "org.register", "organisation", data.name)
    if ctx.session.execute(select(Organisation.id).where(func.lower(Organisation.name) == data.name.lower())).first():
        raise DuplicateError(f"an organisation named {data.name!r} already exists")
    if is_host and (current := host(ctx)) is not None:
        raise RuleViolation(f"this installation already has a host organisation ({current.name})")
    row = Organisation(name=data.name, kind=data.kind.value, is_host=is_host, registered_by=by, created_at=ctx.now())
    ctx.session.add(row)
    ctx.session.flush()
    ctx.audit(by, "org.register", "organisation", row.id, name=row.name, kind=row.kind, host=is_host)
    return row, issue_enrolment(ctx, row, by)


def has_admin(ctx: Ctx, org_id: int) -> bool:
    """Whether the organisation has an active admin."""
    return ctx.session.execute(select(User.id).where(
        User.organisation_id == org_id, User.role == Role.ADMIN.value, User.active.is_(True))).first() is not None


def issue_enrolment(ctx: Ctx, org: Organisation, by: str) -> Enrolment:
    """A new one-time token for ``org``'s first admin (machine-local); earlier unused ones stop
    working. Refused once the organisation has an active admin: from then on only its own
    admins add users, so the machine cannot mint an admin for an organisation that runs itself."""
    ctx.attempt = (by, "org.enrolment_token", "organisation", str(org.id))
    if has_admin(ctx, org.id):
        raise PermissionDenied(f"{org.name} already has an admin: its own admins add users (an enrolment "
                               "token is only for an organisation's first admin)")
    now = ctx.now()
    for old in ctx.session.execute(select(EnrolmentToken).where(
            EnrolmentToken.organisation_id == org.id, EnrolmentToken.used_at.is_(None))).scalars():
        old.expires_at = min(old.expires_at, now)
    token = "enrol-" + secrets.token_urlsafe(24)
    row = EnrolmentToken(organisation_id=org.id, token_sha256=credentials.token_digest(token), issued_by=by,
                         issued_at=now, expires_at=now + timedelta(days=ENROLMENT_DAYS))
    ctx.session.add(row)
    ctx.session.flush()
    ctx.audit(by, "org.enrolment_token", "organisation", org.id, expires_at=row.expires_at)
    return Enrolment(org.name, token, row.expires_at)


def enrol(ctx: Ctx, token: str, name: str, password: str, rank: str | None = None) -> User:
    """Redeem a one-time enrolment token: the new user becomes an admin of its organisation."""
    ctx.attempt = (f"unverified:{credentials.clean_name(name)}", "org.enrol", "organisation", "-")
    row = ctx.session.execute(select(EnrolmentToken).where(
        EnrolmentToken.token_sha256 == credentials.token_digest(token.strip()))).scalar_one_or_none()
    if row is None or row.used_at is not None or row.expires_at <= ctx.now():
        raise PermissionDenied("the enrolment token is not valid: unknown, already used or expired "
                               "(ask for a new one: openlfr org token ORGANISATION)")
    org = ctx.get(Organisation, row.organisation_id, "organisation")
    if has_admin(ctx, org.id):
        raise PermissionDenied(f"{org.name} already has an admin: ask them to add you")
    user = _new_user(ctx, org, name, Role.ADMIN, rank)
    credentials.store_password(ctx.session, user, password, ctx.now())
    row.used_at, row.used_by_id = ctx.now(), user.id
    ctx.audit(user.name, "org.enrol", "organisation", org.id, user=user.id, role=user.role)
    return user


def check_role(kind: OrgKind, role: Role, rank: str | None) -> None:
    """Refuse a role the kind of organisation may not give, or a rank that does not fit."""
    if role not in ROLES_BY_KIND[kind]:
        allowed = ", ".join(sorted(r.value for r in ROLES_BY_KIND[kind]))
        raise PermissionDenied(f"a {kind.value.replace('_', ' ')} cannot have a {role.value}; its roles: {allowed}")
    if rank is not None:
        if kind is not OrgKind.POLICE_FORCE:
            raise InputError("only police users have a rank")
        check_rank(rank)
    if role is Role.AUTHORISING_OFFICER and rank is None:
        raise InputError("an authorising officer needs a rank (e.g. --rank superintendent)")


def _new_user(ctx: Ctx, org: Organisation, name: str, role: Role, rank: str | None) -> User:
    """Add a user to ``org`` after checking the role fits the organisation and the rank the role."""
    name = name.strip()
    if not name or len(name) > 120 or not name.isprintable():
        raise InputError("a user name needs 1 to 120 printable characters")
    check_role(OrgKind(org.kind), role, rank)
    if ctx.session.execute(select(User.id).where(User.name == name)).first() is not None:
        raise DuplicateError(f"user {name!r} already exists")
    user = User(name=name, role=role.value, organisation_id=org.id, rank=rank, created_at=ctx.now(), active=True)
    ctx.session.add(user)
    ctx.session.flush()
    ctx.session.refresh(user)
    return user


def create_host_admin(ctx: Ctx, org_name: str, kind: OrgKind, name: str, password: str, by: str) -> User:
    """First run (machine-local): register the host organisation and create its first admin."""
    if ctx.session.execute(select(User.id)).first() is not None:
        raise RuleViolation("this store already has users: an admin of the organisation adds more, with "
                            "'openlfr user add NAME --role ROLE' (logged in), on the console's users page "
                            "(/console/users, an admin's home page) or POST /api/users")
    org, enrolment = register(ctx, OrganisationCreate(name=org_name, kind=kind), by, is_host=True)
    return enrol(ctx, enrolment.token, name, password)


def break_glass(ctx: Ctx, name: str, password: str, reason: str, by: str) -> User:
    """The host's machine operator resets the password of one of the host's own users
    (machine-local, loud, audited); every session and token that user held is revoked."""
    ctx.attempt = (by, "auth.break_glass", "user", credentials.clean_name(name))
    if not reason.strip():
        raise InputError("break-glass needs a reason (--reason)")
    home = host(ctx)
    user = ctx.session.execute(select(User).where(User.name == name)).scalar_one_or_none()
    if user is None:
        raise NotFoundError(f"no user named {name!r}")
    if home is None or user.organisation_id != home.id:
        raise PermissionDenied(f"break-glass is limited to the host organisation "
                               f"({home.name if home else 'none registered'}); {name} is of {user.organisation}")
    credentials.store_password(ctx.session, user, password, ctx.now())
    revoked = credentials.revoke_all(ctx.session, user.id, ctx.now())
    ctx.audit(by, "auth.break_glass", "user", user.id, name=user.name, reason=reason.strip(), tokens_revoked=revoked)
    return user
