"""Errors the web layer raises, and handlers that turn them into pages or JSON naming the fix."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.errors import BadUpload, InUse, NotFound, QuotaExceeded, StorageUnavailable, TooLarge
from app.core.redact import strip_ansi
from app.core.urls import API_PREFIX
from app.persistence.writable import RETRY_AFTER_S, database_write_problem, folder_write_problem
from app.web.views.paging import MAX_ID
from dissect_core.errors import DissectError

log = logging.getLogger(__name__)

#: Pydantic's error types of a number in a path that is out of the ids' range, or too long to parse.
#: The methods an `Allow` header may name.
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
OUT_OF_RANGE = frozenset({"greater_than_equal", "less_than_equal", "int_parsing_size"})
#: What an answer refused for the storage's sake (503) tells the client: when to try again.
RETRY_LATER = {"Retry-After": str(RETRY_AFTER_S)}
SERVER_ERROR = "The server failed to answer this request (its log says why); try again, and report it if it persists."


class ValidationProblem(BaseModel):
    """One part of a request that does not fit the schema, as FastAPI names it."""

    model_config = ConfigDict(extra="allow")

    loc: list[str | int] = Field(description="where: path, query or body, then the field")
    msg: str
    type: str


class ErrorBody(BaseModel):
    """Every error answer of the API: `detail` names the problem and its fix; a request that does not fit the
    schema (422 from FastAPI's own checks) gets the list of problems instead."""

    detail: str | list[ValidationProblem]


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


#: The error answers any API operation can give (a router's `responses`).
API_ERRORS: dict[int | str, dict[str, Any]] = {
    401: _error("the bearer token is unknown or revoked, or a login is required"),
    404: _error("nothing has that id or name (ids out of range included)"),
    422: _error("the request does not fit the schema, or its input cannot be used"),
}
#: What a change (POST) can also answer: not the user's to make, over a quota, or storage refusing writes.
WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    403: _error("the user may not make this change"),
    429: _error("over a quota or rate limit; the message says which and when it frees up"),
    503: _error("the database or data folder refuses writes now (read-only, full or busy); see Retry-After"),
}


def storage_problem(error: BaseException) -> str | None:
    """Return why the database or the data folder refused (read-only, full, locked too long), or None."""
    return database_write_problem(error) or folder_write_problem(error)


def wants_json(request: Request) -> bool:
    """Return whether the request came to the API (JSON) rather than to a page (HTML)."""
    return request.url.path.startswith(API_PREFIX + "/") or request.url.path == API_PREFIX


def error_response(request: Request, templates: Jinja2Templates, status: int, title: str, message: str) -> Response:
    """Return a JSON `{"detail": message}` for the API, an error page for everything else (no terminal codes)."""
    message = strip_ansi(message)
    if wants_json(request):
        return JSONResponse({"detail": message}, status_code=status)
    return templates.TemplateResponse(request, "error.html", {"title": title, "message": message}, status_code=status)


#: Errors whose message is the whole answer, by the first type that matches: (type, status, page title).
_ANSWERED_AS_IS: tuple[tuple[type[Exception], int, str], ...] = (
    (NotFound, 404, "Not found"),
    (TooLarge, 413, "That file is too large"),
    (BadUpload, 400, "Cannot use that file"),
    (QuotaExceeded, 429, "Over the limit"),
    (StorageUnavailable, 503, "Cannot store that now"),
    (InUse, 409, "In use"),
    (DissectError, 422, "Cannot do that"),
)


def _status_and_title(error: Exception) -> tuple[int, str]:
    """Return the HTTP status and page title of an error answered with its message."""
    return next((status, title) for kind, status, title in _ANSWERED_AS_IS if isinstance(error, kind))


def error_status(error: DissectError) -> int:
    """Return the HTTP status of an input error: 400 unusable upload (413 too large), 429 over a limit, 503
    unwritable, else 422."""
    return _status_and_title(error)[0]


def _answer_as_is(templates: Jinja2Templates) -> Callable[[Request, Exception], Any]:
    """Return a handler answering an error with its message, as JSON for the API and a page otherwise."""

    async def answer(request: Request, error: Exception) -> Response:
        status, title = _status_and_title(error)
        response = error_response(request, templates, status, title, str(error))
        if status == 503:
            response.headers.update(RETRY_LATER)
        return response

    return answer


def install_error_handlers(app: FastAPI, templates: Jinja2Templates) -> None:
    """Register handlers: NotFound (404), DissectError and AtlasError (422; 400 an unusable upload, 413 too large,
    429 over a limit, 503 unwritable), a refused database or data-folder write (503 with the reason), pages for the
    framework's own errors."""

    async def refused_write(request: Request, error: Exception) -> Response:
        problem = storage_problem(error)
        if problem is None:
            raise error
        response = error_response(request, templates, 503, "Cannot store that now", problem)
        response.headers.update(RETRY_LATER)
        return response

    async def http_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, HTTPException)
        if error.status_code == 405:
            error = HTTPException(405, error.detail, headers={"Allow": allowed_methods(request)})
        if wants_json(request) or error.status_code < 400:
            return await http_exception_handler(request, error)
        message = str(error.detail)
        if error.status_code == 404 and message == "Not Found":
            message = f"There is no page at {request.url.path}; start from the list of runs at /."
        page = error_response(
            request,
            templates,
            error.status_code,
            "Not found" if error.status_code == 404 else "Error",
            message,
        )
        page.headers.update(error.headers or {})
        return page

    async def invalid_request(request: Request, error: Exception) -> Response:
        assert isinstance(error, RequestValidationError)
        missing = out_of_range_id(error)
        if missing is not None:
            return error_response(request, templates, 404, "Not found", missing)
        if wants_json(request):
            return await request_validation_exception_handler(request, error)
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc'][1:])}: {problem['msg']}" for problem in error.errors()
        )
        return error_response(request, templates, 422, "Bad address", f"{problems}; fix the address and reload.")

    for kind in (NotFound, DissectError):
        app.add_exception_handler(kind, _answer_as_is(templates))
    app.add_exception_handler(DBAPIError, refused_write)
    app.add_exception_handler(OSError, refused_write)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid_request)


def out_of_range_id(error: RequestValidationError) -> str | None:
    """Return why nothing exists at a path whose number is out of the ids' range (answered 404), else None."""
    for problem in error.errors():
        location = problem.get("loc", ())
        if len(location) == 2 and location[0] == "path" and problem.get("type") in OUT_OF_RANGE:
            value = str(problem.get("input", ""))
            shown = value if len(value) <= 24 else f"{value[:10]}…({len(value)} digits)"
            return (
                f"There is no {location[1]} {shown} (ids and unit numbers run from 0 to {MAX_ID}); "
                "check the number in the address."
            )
    return None


def allowed_methods(request: Request) -> str:
    """Return the `Allow` header of a path: every method some route at it answers (one route per method here),
    and HEAD wherever GET is (app.web.middleware.head answers it)."""
    routes = request.app.router.routes
    allowed = {
        method
        for method in HTTP_METHODS
        if any(route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes)
    }
    if "GET" in allowed:
        allowed.add("HEAD")
    return ", ".join(method for method in HTTP_METHODS if method in allowed)


class AnswerServerErrors:
    """Answer an unhandled exception with a plain 500 (JSON for the API), logged, and keep the connection open; a
    database or data folder refusing a middleware's write (a token's last use, a session) gets 503 and the reason.

    Starlette's outermost handler re-raises after answering, which makes uvicorn drop the keep-alive connection;
    an exception after the answer has started still does (the answer cannot be finished).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; answer 500 in place of an exception raised before the answer started."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking)
        except Exception as error:
            if started:
                raise
            problem = storage_problem(error)  # raised outside a route (a middleware's write): as a route's would be
            if problem is None:
                log.exception("Unhandled error answering %s %s", scope["method"], scope["path"])
            else:
                log.warning("Storage refused %s %s: %s", scope["method"], scope["path"], problem)
            status, message = (500, SERVER_ERROR) if problem is None else (503, problem)
            headers = RETRY_LATER if problem is not None else None
            request = Request(scope)
            response: Response = (
                JSONResponse({"detail": message}, status_code=status, headers=headers)
                if wants_json(request)
                else Response(message, status_code=status, media_type="text/plain", headers=headers)
            )
            await response(scope, receive, send)
