"""Who is asking: the user of a bearer token or of the session cookie; the login gate of READ_ACCESS=users; and
the answers to LoginRequired (401, or the login page for a browser) and Forbidden (403)."""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from app.auth.permissions import Forbidden, LoginRequired
from app.auth.sessions import session_user
from app.auth.tokens import find_api_token, record_token_use, use_is_unrecorded
from app.core.urls import LOGIN_PATH, login_url, safe_local_path
from app.persistence.db import write_session
from app.persistence.models import User
from app.persistence.writable import database_write_problem
from app.web.errors import error_response, wants_json
from app.web.views.htmx import is_htmx

#: Open to anyone even when READ_ACCESS=users: logging in, the stylesheet and scripts, the health check.
OPEN_PATHS = frozenset({LOGIN_PATH, "/healthz"})
OPEN_PREFIXES = ("/static/",)
_USER_KEY = "atlas_user"
_BAD_TOKEN = (
    "The API token is unknown or revoked; create one with `neuron-atlas tokens create NAME` and send it as "
    "`Authorization: Bearer TOKEN`."
)
_MEMBERS_ONLY = (
    "This dashboard is open to its users only; log in at /login, or send `Authorization: Bearer TOKEN` with a "
    "token from `neuron-atlas tokens create NAME`."
)


async def current_user(request: Request) -> User | None:
    """Return the user of the request's bearer token (checked by Authenticate) or session cookie, or None."""
    state = request.scope.setdefault("state", {})
    if _USER_KEY not in state:
        sessions: sessionmaker[Session] = request.app.state.sessions
        state[_USER_KEY] = await run_in_threadpool(_user_of_session, sessions, dict(request.session))
    return state[_USER_KEY]


def _user_of_session(sessions: sessionmaker[Session], data: dict[str, object]) -> User | None:
    with sessions() as db:
        return session_user(db, data)


def _coming_back_to(request: Request) -> str:
    """Return where to go after logging in: this page, or for a form post or htmx call, the page it came from."""
    if request.method == "GET" and not is_htmx(request.headers):
        return request.url.path + (f"?{request.url.query}" if request.url.query else "")
    source = request.headers.get("hx-current-url") or request.headers.get("referer") or "/"
    parts = urlsplit(source)
    if parts.netloc and parts.netloc.lower() != request.headers.get("host", "").lower():
        return "/"
    return safe_local_path(parts.path + (f"?{parts.query}" if parts.query else ""))


def login_required_response(request: Request, message: str) -> Response:
    """Return 401 with the message (API; htmx also gets HX-Redirect), or a redirect to the login page (pages)."""
    if wants_json(request):
        return JSONResponse({"detail": message}, status_code=401, headers={"WWW-Authenticate": "Bearer"})
    target = login_url(_coming_back_to(request))
    if is_htmx(request.headers):
        return Response(message, status_code=401, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


class Authenticate:
    """Check bearer tokens (401 when unknown or revoked) and, with READ_ACCESS=users, require a login."""

    def __init__(self, app: ASGIApp, *, engine: Engine, sessions: sessionmaker[Session], users_only: bool) -> None:
        self.app = app
        self.engine = engine
        self.sessions = sessions
        self.users_only = users_only

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on once its credentials are checked; answer 401 or the login page otherwise."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        authorization = Headers(scope=scope).get("authorization")
        if authorization is not None:
            user = await run_in_threadpool(self._token_user, authorization)
            if user is None:
                challenge = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
                response = JSONResponse({"detail": _BAD_TOKEN}, status_code=401, headers=challenge)
                await response(scope, receive, send)
                return
            scope.setdefault("state", {})[_USER_KEY] = user
        if self.users_only and not _is_open(scope["path"]):
            request = Request(scope, receive)
            if await current_user(request) is None:
                await login_required_response(request, _MEMBERS_ONLY)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _token_user(self, authorization: str) -> User | None:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        with self.sessions() as db:
            row = find_api_token(db, token.strip())
            if row is None:
                return None
            user, stale = row.user, use_is_unrecorded(row)
        if stale:
            try:
                with write_session(self.engine) as db:
                    record_token_use(db, row.id)
            except DBAPIError as error:  # a read-only database still serves reads; only the use goes unrecorded
                if database_write_problem(error) is None:
                    raise
        return user


def _is_open(path: str) -> bool:
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)


def install_auth_handlers(app: FastAPI, templates: Jinja2Templates) -> None:
    """Answer LoginRequired with 401 or the login page, Forbidden with 403 (JSON or an error page)."""

    async def login_required(request: Request, error: Exception) -> Response:
        return login_required_response(request, str(error))

    async def forbidden(request: Request, error: Exception) -> Response:
        return error_response(request, templates, 403, "Not allowed", str(error))

    app.add_exception_handler(LoginRequired, login_required)
    app.add_exception_handler(Forbidden, forbidden)
