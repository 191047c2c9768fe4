"""Log in (API tokens), log out, who am I, one's own password; enrolment of an organisation's
first admin; the users of one's own organisation (its admins alone); the public list of
organisations."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Request, Response

from openlfr.api import auth, defs, views
from openlfr.api.auth import Principal, require
from openlfr.api.deps import reading, tx
from openlfr.governance import PermissionDenied, Role, parse
from openlfr.governance import organisations, users
from openlfr.governance.schemas import UserCreate

router = APIRouter(prefix="/api", tags=["auth"])
# a user name in a path may hold any printable character, "/" included
UserName = Path(min_length=1, max_length=120)


@router.post("/auth/token", response_model=defs.TokenOut)
def token(body: defs.LoginIn, request: Request) -> defs.TokenOut:
    """Exchange a user name and password for a bearer token (rate-limited)."""
    actor, row, user = auth.login(request, body.name, body.password, "bearer")
    return defs.TokenOut(token=actor.token, expires_at=row.expires_at, user=user.name, role=Role(user.role),
                         organisation=user.organisation)


@router.post("/auth/logout", status_code=204)
def logout(request: Request, me: Principal = Depends(require())) -> Response:
    """End the session or revoke the token used for this request."""
    auth.logout(request, me)
    response = Response(status_code=204)
    response.delete_cookie(auth.SESSION_COOKIE)
    return response


@router.get("/auth/me", response_model=defs.MeOut)
def me(me: Principal = Depends(require())) -> defs.MeOut:
    """The caller (and, for cookie sessions, the CSRF token to send back)."""
    return defs.MeOut(name=me.name, role=me.role, organisation=me.organisation, organisation_kind=me.org_kind,
                      rank=me.rank, via=me.via, csrf_token=me.csrf if me.via == "session" else None)


@router.post("/auth/password", status_code=204)
def own_password(body: defs.OwnPasswordIn, request: Request, me: Principal = Depends(require())) -> Response:
    """Change one's own password (the current one is checked); every token of the caller,
    this one included, is revoked: log in again."""
    with tx(request) as ctx:
        users.change_own_password(ctx, me.actor, body.old, body.new)
    response = Response(status_code=204)
    response.delete_cookie(auth.SESSION_COOKIE)
    return response


# --- enrolment and organisations ------------------------------------------------------------
@router.post("/enrol", response_model=defs.UserOut, status_code=201, tags=["organisations"])
def enrol(body: defs.EnrolIn, request: Request) -> defs.UserOut:
    """Redeem a one-time enrolment token (handed out of band) and become the first admin of its
    organisation. Public, rate-limited like logins; every attempt is audited."""
    keys = auth.enrolment_keys(request)
    auth.throttle(request, *keys)
    try:
        with tx(request) as ctx:
            user = organisations.enrol(ctx, body.token, body.name, body.password, body.rank)
            return defs.UserOut.model_validate(user)
    except PermissionDenied:
        request.app.state.limiter.failed(*keys)
        raise


@router.get("/organisations", response_model=list[defs.OrganisationOut], tags=["organisations"])
def list_organisations(request: Request) -> list[defs.OrganisationOut]:
    """Every registered organisation: name, kind, whether it hosts this installation, when it
    was registered and when its first admin enrolled. Public; no users."""
    with reading(request) as ctx:
        return views.organisations(ctx)


# --- users of one's own organisation ----------------------------------------------------------
@router.get("/users", response_model=list[defs.UserOut], tags=["users"])
def list_users(request: Request, me: Principal = Depends(require(Role.ADMIN, Role.AUDITOR))) -> list[defs.UserOut]:
    """The users of the caller's organisation (an oversight body's auditors: every user)."""
    with reading(request) as ctx:
        return [defs.UserOut.model_validate(u) for u in users.list_users(ctx, me.actor)]


@router.post("/users", response_model=defs.UserOut, status_code=201, tags=["users"])
def create_user(body: defs.UserIn, request: Request, me: Principal = Depends(require(Role.ADMIN))) -> defs.UserOut:
    """An admin adds a user, with a password, to their own organisation (roles its kind allows;
    a rank for police users)."""
    data = parse(UserCreate, name=body.name, role=body.role, rank=body.rank)
    with tx(request) as ctx:
        return defs.UserOut.model_validate(users.create_user(ctx, me.actor, data, body.password))


@router.post("/users/{name:path}/deactivate", response_model=defs.UserOut, tags=["users"])
def deactivate_user(body: defs.ReasonIn, request: Request, name: str = UserName,
                    me: Principal = Depends(require(Role.ADMIN))) -> defs.UserOut:
    """Offboard a user of the admin's organisation: every session, token and open alert stream
    of theirs stops at once."""
    with tx(request) as ctx:
        return defs.UserOut.model_validate(users.deactivate(ctx, me.actor, name, body.reason))


@router.post("/users/{name:path}/role", response_model=defs.UserOut, tags=["users"])
def set_role(body: defs.RoleIn, request: Request, name: str = UserName,
             me: Principal = Depends(require(Role.ADMIN))) -> defs.UserOut:
    """Change the role (and rank) of a user of the admin's organisation; their tokens are revoked."""
    with tx(request) as ctx:
        return defs.UserOut.model_validate(users.set_role(ctx, me.actor, name, body.role, body.rank))


@router.post("/users/{name:path}/password", status_code=204, tags=["users"])
def reset_password(body: defs.PasswordIn, request: Request, name: str = UserName,
                   me: Principal = Depends(require(Role.ADMIN))) -> Response:
    """Set a new password for a user of the admin's organisation; every token of theirs is revoked."""
    with tx(request) as ctx:
        users.reset_password(ctx, me.actor, name, body.password)
    return Response(status_code=204)
