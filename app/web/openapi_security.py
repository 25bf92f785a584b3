"""The OpenAPI schema's word on API tokens: every API operation accepts one, the changes (and `/me`) require it.

Routes that need a user declare the token through their dependencies (`app.web.deps.bearer_token`), which FastAPI
turns into a required `security` entry. Every other operation reads without one, yet checks a token that is sent
(401 when unknown or revoked): its `security` becomes optional, `[{}, {bearerToken: []}]`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from app.web.deps import BEARER_SCHEME, bearer_token

HTTP_METHODS = ("get", "put", "post", "delete", "patch")


def optional_token(schema: dict[str, Any]) -> dict[str, Any]:
    """Return the schema with the token scheme declared and optional on each operation that does not require it."""
    schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
    schemes.setdefault(BEARER_SCHEME, bearer_token.model.model_dump(by_alias=True, exclude_none=True))
    for operations in schema.get("paths", {}).values():
        for method in HTTP_METHODS:
            operation = operations.get(method)
            if operation is not None and "security" not in operation:
                operation["security"] = [{}, {BEARER_SCHEME: []}]
    return schema


def declare_tokens(app: FastAPI) -> None:
    """Make `app.openapi()` declare API tokens as `optional_token` says (computed once, as FastAPI does)."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = optional_token(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
