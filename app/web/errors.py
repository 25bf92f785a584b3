"""Errors the web layer raises, and handlers that turn them into pages or JSON naming the fix."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException

from app.core.errors import NotFound
from app.core.urls import API_PREFIX
from dissect_core.errors import DissectError


def wants_json(request: Request) -> bool:
    """Return whether the request came to the API (JSON) rather than to a page (HTML)."""
    return request.url.path.startswith(API_PREFIX + "/") or request.url.path == API_PREFIX


def error_response(request: Request, templates: Jinja2Templates, status: int, title: str, message: str) -> Response:
    """Return a JSON `{"detail": message}` for the API, an error page for everything else."""
    if wants_json(request):
        return JSONResponse({"detail": message}, status_code=status)
    return templates.TemplateResponse(request, "error.html", {"title": title, "message": message}, status_code=status)


def install_error_handlers(app: FastAPI, templates: Jinja2Templates) -> None:
    """Register handlers: NotFound (404), DissectError and AtlasError (422), pages for the framework's own errors."""

    async def not_found(request: Request, error: Exception) -> Response:
        return error_response(request, templates, 404, "Not found", str(error))

    async def bad_input(request: Request, error: Exception) -> Response:
        return error_response(request, templates, 422, "Cannot do that", str(error))

    async def http_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, HTTPException)
        if wants_json(request) or error.status_code < 400:
            return await http_exception_handler(request, error)
        message = str(error.detail)
        if error.status_code == 404 and message == "Not Found":
            message = f"There is no page at {request.url.path}. Start from the list of runs at /."
        return error_response(
            request,
            templates,
            error.status_code,
            "Not found" if error.status_code == 404 else "Error",
            message,
        )

    async def invalid_request(request: Request, error: Exception) -> Response:
        assert isinstance(error, RequestValidationError)
        if wants_json(request):
            return await request_validation_exception_handler(request, error)
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc'][1:])}: {problem['msg']}" for problem in error.errors()
        )
        return error_response(request, templates, 422, "Bad address", f"{problems}. Fix the address and reload.")

    app.add_exception_handler(NotFound, not_found)
    app.add_exception_handler(DissectError, bad_input)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
