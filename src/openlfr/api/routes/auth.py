"""Log in (API tokens), log out, who am I, and user administration."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from openlfr.api import auth, defs
from openlfr.api.auth import Principal, require
from openlfr.api.deps import tx
from openlfr.governance import Role, parse
from openlfr.governance import users
from openlfr.governance.schemas import UserCreate

router = APIRouter(prefix="/api", tags=["auth"])


@router.post("/auth/token", response_model=defs.TokenOut)
def token(body: defs.LoginIn, request: Request) -> defs.TokenOut:
    """Exchange a user name and password for a bearer token (rate-limited)."""
    tok, row, user = auth.login(request, body.name, body.password, "bearer")
    return defs.TokenOut(token=tok, expires_at=row.expires_at, user=user.name, role=Role(user.role))


@router.post("/auth/logout", status_code=204)
def logout(request: Request, me: Principal = Depends(require())) -> Response:
    """End the session or revoke the token used for this request."""
    with tx(request) as ctx:
        auth.revoke(ctx, me)
    response = Response(status_code=204)
    response.delete_cookie(auth.SESSION_COOKIE)
    return response


@router.get("/auth/me", response_model=defs.MeOut)
def me(me: Principal = Depends(require())) -> defs.MeOut:
    """The caller (and, for cookie sessions, the CSRF token to send back)."""
    return defs.MeOut(name=me.name, role=me.role, organisation=me.organisation, via=me.via,
                      csrf_token=me.csrf if me.via == "session" else None)


@router.get("/users", response_model=list[defs.UserOut])
def list_users(request: Request, me: Principal = Depends(require(Role.OPERATOR_ADMIN, Role.AUDITOR))) -> list[defs.UserOut]:
    """Every user and role."""
    with tx(request) as ctx:
        return [defs.UserOut.model_validate(u) for u in users.list_users(ctx)]


@router.post("/users", response_model=defs.UserOut, status_code=201)
def create_user(body: defs.UserIn, request: Request,
                me: Principal = Depends(require(Role.OPERATOR_ADMIN))) -> defs.UserOut:
    """Add a user with a password (operator admin)."""
    data = parse(UserCreate, name=body.name, role=body.role, organisation=body.organisation)
    with tx(request) as ctx:
        user = users.create_user(ctx, me.name, data)
        auth.set_password(ctx, me.name, user, body.password)
        return defs.UserOut.model_validate(user)
