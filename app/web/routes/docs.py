"""A self-hosted API reference at /docs, rendered from the OpenAPI schema (FastAPI's default loads a CDN)."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from app.web.deps import TemplatesDep

HTTP_METHODS = ("get", "post", "put", "patch", "delete")

router = APIRouter(include_in_schema=False)


def _type_name(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if "anyOf" in schema:
        return " | ".join(_type_name(option) for option in schema["anyOf"])
    if schema.get("type") == "array":
        return f"list[{_type_name(schema.get('items', {}))}]"
    if "enum" in schema:
        return " | ".join(repr(value) for value in schema["enum"])
    return str(schema.get("type", "any"))


def operation_examples(operation: dict[str, Any]) -> list[dict[str, str]]:
    """Return an operation's examples, the request body's then each answer's: what it is, its summary and its JSON."""
    found = []
    sources = [("request", operation.get("requestBody", {}))]
    sources += [(f"{code} answer", response) for code, response in sorted(operation.get("responses", {}).items())]
    for what, source in sources:
        for media in source.get("content", {}).values():
            for name, example in media.get("examples", {}).items():
                summary = example.get("summary", name)
                found.append({"what": what, "summary": summary, "json": json.dumps(example.get("value"), indent=2)})
    return found


def endpoints_by_tag(openapi: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Return the schema's operations grouped by tag, each with method, path, summary, params, responses and
    examples."""
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for path, operations in openapi.get("paths", {}).items():
        for method in HTTP_METHODS:
            operation = operations.get(method)
            if operation is None:
                continue
            responses = {}
            for code, response in operation.get("responses", {}).items():
                schema = response.get("content", {}).get("application/json", {}).get("schema")
                responses[code] = _type_name(schema) if schema else response.get("description", "")
            body = operation.get("requestBody", {}).get("content", {})
            grouped[(operation.get("tags") or ["other"])[0]].append(
                {
                    "method": method.upper(),
                    "path": path,
                    "summary": operation.get("summary", ""),
                    "description": operation.get("description", ""),
                    "params": [
                        {
                            "name": param["name"],
                            "where": param["in"],
                            "required": param.get("required", False),
                            "type": _type_name(param.get("schema", {})),
                        }
                        for param in operation.get("parameters", [])
                    ],
                    "body": ", ".join(body),
                    "responses": responses,
                    "examples": operation_examples(operation),
                }
            )
    return dict(grouped)


@router.get("/docs", response_class=HTMLResponse)
def docs(request: Request, templates: TemplatesDep) -> Response:
    """The API reference, from the app's OpenAPI schema, with no script from outside."""
    schema = request.app.openapi()
    context = {"title": "API", "info": schema.get("info", {}), "groups": endpoints_by_tag(schema)}
    return templates.TemplateResponse(request, "docs.html", context)
