"""Accounts: logging in (a password, or a one-time link printed by `serve`), logging out, the top bar's account
link, and who a token or session belongs to."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from app.auth.logins import password_login
from app.auth.permissions import can_edit, require_login
from app.auth.sessions import log_in, log_out
from app.auth.throttle import Refusal
from app.auth.tokens import redeem_login_link
from app.core.urls import API_PREFIX, LOGIN_PATH, safe_local_path
from app.persistence.db import write_session
from app.persistence.models import User
from app.read.schemas.catalogue import UserView
from app.web.deps import CurrentUserDep, EngineDep, SessionsDep, SettingsDep, TemplatesDep, bearer_token
from app.web.errors import API_ERRORS

router = APIRouter(tags=["account"], responses=API_ERRORS)

LINK_UNUSABLE = (
    "This login link was used already or has expired, or a newer link or a password replaced it (a link logs in "
    "once, within 24 hours). Restart `neuron-atlas serve` for a new one, ask an admin for one (`neuron-atlas "
    "users link NAME`), or log in below."
)
WRONG_PASSWORD = (
    "Wrong name or password. Check both (names and passwords are case-sensitive), or ask an admin for a "
    "one-time login link (`neuron-atlas users link NAME`)."
)


def _login_page(
    request: Request,
    templates: Jinja2Templates,
    user: User | None,
    next_path: str,
    *,
    name: str = "",
    error: str | None = None,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    context = {"title": "Account" if user else "Log in", "user": user, "next": next_path, "name": name, "error": error}
    return templates.TemplateResponse(request, "login.html", context, status_code=status, headers=headers)


@router.get(LOGIN_PATH, response_class=HTMLResponse, include_in_schema=False)
def login_page(
    request: Request,
    engine: EngineDep,
    templates: TemplatesDep,
    user: CurrentUserDep,
    next_path: Annotated[str, Query(alias="next")] = "/",
    token: str = "",
) -> Response:
    """The login form; with `token` (a one-time link), log in as its user and go on to `next`."""
    target = safe_local_path(next_path)
    if not token:
        return _login_page(request, templates, user, target)
    with write_session(engine) as session:
        linked = redeem_login_link(session, token)
        if linked is not None:
            log_in(session, request.session, linked)
    if linked is None:
        return _login_page(request, templates, None, target, error=LINK_UNUSABLE, status=400)
    return RedirectResponse(target, status_code=303)


@router.post(LOGIN_PATH, response_class=HTMLResponse, include_in_schema=False)
def login_submit(
    request: Request,
    engine: EngineDep,
    sessions: SessionsDep,
    settings: SettingsDep,
    templates: TemplatesDep,
    name: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next_path: Annotated[str, Form(alias="next")] = "/",
) -> Response:
    """Log in with a name and password, then go on to `next`; a wrong pair shows the form again (401), and so does
    an attempt while too many failures make this account or address wait (429 with Retry-After)."""
    target = safe_local_path(next_path)
    # The client's address; behind `serve --proxy-headers`, uvicorn has put the trusted proxy's X-Forwarded-For here.
    address = request.client.host if request.client is not None else "unknown"
    outcome = password_login(engine, sessions, settings, request.session, name=name, password=password, address=address)
    if isinstance(outcome, Refusal):
        wait = {"Retry-After": str(outcome.retry_after_s)}
        return _login_page(request, templates, None, target, name=name, error=outcome.message, status=429, headers=wait)
    if not outcome:
        return _login_page(request, templates, None, target, name=name, error=WRONG_PASSWORD, status=401)
    return RedirectResponse(target, status_code=303)


@router.get("/logout", response_class=HTMLResponse, include_in_schema=False)
def logout_page(request: Request, templates: TemplatesDep, user: CurrentUserDep) -> Response:
    """Who is logged in, with the button to log out (logging out is a POST, like every change)."""
    if user is None:
        return RedirectResponse(LOGIN_PATH, status_code=303)
    return _login_page(request, templates, user, "/")


@router.post("/logout", include_in_schema=False)
def logout(request: Request, engine: EngineDep) -> Response:
    """End the session's login everywhere (a copied cookie stops working too) and go to the home page."""
    with write_session(engine) as session:
        log_out(session, request.session)
    return RedirectResponse("/", status_code=303)


@router.get("/account", response_class=HTMLResponse, include_in_schema=False)
def account_link(request: Request, templates: TemplatesDep, user: CurrentUserDep) -> Response:
    """The top bar's account link: the user's name (to log out), or `Log in` coming back to the current page; before
    it the upload link, for those who may upload."""
    current = urlsplit(request.headers.get("hx-current-url", "/"))
    next_path = safe_local_path(current.path + (f"?{current.query}" if current.query else ""))
    context = {"user": user, "next": next_path, "may_upload": can_edit(user)}
    return templates.TemplateResponse(request, "partials/account.html", context)


@router.get(API_PREFIX + "/me", dependencies=[Depends(bearer_token)])
def me(user: CurrentUserDep) -> UserView:
    """The user the request's API token (or session) belongs to; 401 without one."""
    known = require_login(user, "see who you are")
    return UserView(name=known.name, role=known.role)
