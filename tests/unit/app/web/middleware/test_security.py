"""The CSRF, cookie and header middleware on a tiny Starlette app: what passes, what is refused, what the route sees."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from fastapi.templating import Jinja2Templates
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from app.auth.csrf import matches_session, session_csrf_token
from app.web.middleware.security import (
    MAX_FORM_BYTES,
    CsrfProtection,
    FormProblem,
    SecureCookiesOnHttps,
    SecurityHeaders,
    cross_site_source,
    form_token,
)
from app.web.views.templating import TEMPLATES_DIR

SESSION = "session"


async def token(request: Request) -> Response:
    return PlainTextResponse(session_csrf_token(request.session))


async def echo(request: Request) -> Response:
    """Answer what the route received: the whole body, as the client sent it."""
    body = await request.body()
    return JSONResponse({"bytes": len(body), "text": body.decode("latin-1")})


def make_client(**options: Any) -> TestClient:
    app = Starlette(
        routes=[
            Route("/token", token),
            Route("/echo", echo, methods=["POST"]),
            Route("/login", echo, methods=["POST"]),
        ],
        middleware=[
            Middleware(SecurityHeaders),
            Middleware(SecureCookiesOnHttps),
            Middleware(SessionMiddleware, secret_key="k" * 40, session_cookie=SESSION),
            Middleware(CsrfProtection, templates=Jinja2Templates(directory=str(TEMPLATES_DIR)), session_cookie=SESSION),
        ],
    )
    return TestClient(app, **options)


def session_client() -> tuple[TestClient, str]:
    client = make_client()
    return client, client.get("/token").text


def test_a_url_encoded_form_needs_the_sessions_token() -> None:
    client, csrf = session_client()
    assert client.post("/echo", data={"csrftoken": csrf, "text": "x"}).status_code == 200
    refused = client.post("/echo", data={"csrftoken": "wrong", "text": "x"})
    assert refused.status_code == 403 and "security token is missing or out of date" in refused.text
    assert client.post("/echo", data={"text": "x"}).status_code == 403
    assert client.post("/echo", content=b"{}", headers={"content-type": "application/json"}).status_code == 403
    assert client.post("/echo", content=b"{}", headers={"X-CSRFToken": csrf}).status_code == 200


def test_the_route_still_gets_the_whole_body() -> None:
    client, csrf = session_client()
    payload = b"z" * 300_000 + b"END-OF-FILE"
    answer = client.post("/echo", data={"csrftoken": csrf}, files={"checkpoint": ("a.pt", payload)}).json()
    assert answer["bytes"] > len(payload) and payload.decode() in answer["text"]
    form = client.post("/echo", data={"csrftoken": csrf, "text": "hello"}).json()
    assert form["text"] == f"csrftoken={csrf}&text=hello"


def test_a_multipart_token_must_come_first_and_before_any_file() -> None:
    client, csrf = session_client()
    file_first = client.post("/echo", files={"checkpoint": ("a.pt", b"x" * 10), "csrftoken": (None, csrf)})
    assert file_first.status_code == 403 and "must come before the file" in file_first.text
    field_first = client.post("/echo", data={"text": "x", "csrftoken": csrf}, files={"f": ("a.pt", b"x")})
    assert field_first.status_code == 403
    no_boundary = client.post("/echo", content=b"--x--", headers={"content-type": "multipart/form-data"})
    assert no_boundary.status_code == 400 and "names no boundary" in no_boundary.text


def test_a_multipart_token_split_across_messages_is_found() -> None:
    boundary = "b0undary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="csrftoken"\r\n\r\nTOKEN-123\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="checkpoint"; filename="a.pt"\r\n\r\n'
        + "x" * 5000
        + f"\r\n--{boundary}--\r\n"
    ).encode()
    chunks = [body[index : index + 7] for index in range(0, len(body), 7)]
    messages = [{"type": "http.request", "body": chunk, "more_body": True} for chunk in chunks]
    messages[-1]["more_body"] = False
    source = iter(messages)

    async def receive() -> dict[str, Any]:
        return next(source)

    async def read() -> tuple[str | None, bytes]:
        found, replay = await form_token(Headers({"content-type": f"multipart/form-data;boundary={boundary}"}), receive)
        return found, b"".join([(await replay())["body"] for _ in messages])

    assert asyncio.run(read()) == ("TOKEN-123", body)


def test_an_oversized_url_encoded_form_is_refused() -> None:
    sent = iter([{"type": "http.request", "body": b"a" * (MAX_FORM_BYTES + 1), "more_body": False}])

    async def receive() -> dict[str, Any]:
        return next(sent)

    with pytest.raises(FormProblem, match="larger than 1 MB"):
        asyncio.run(form_token(Headers({"content-type": "application/x-www-form-urlencoded"}), receive))


def test_requests_without_a_session_or_with_a_bearer_token_pass() -> None:
    anonymous = make_client()
    assert anonymous.post("/echo", data={"text": "x"}).status_code == 200  # no session: the login check answers
    assert anonymous.post("/login", data={"name": "x"}).status_code == 403  # but logging in always needs it
    client, _csrf = session_client()
    assert client.post("/echo", data={"x": "1"}, headers={"Authorization": "Bearer na_x"}).status_code == 200


def test_cross_site_origins_are_refused_even_with_the_token() -> None:
    client, csrf = session_client()
    for origin in ("https://evil.example", "null", "http://testserver.evil.example"):
        refused = client.post("/echo", data={"csrftoken": csrf}, headers={"Origin": origin})
        assert refused.status_code == 403 and "cross-site" in refused.text, origin
    referer = client.post("/echo", data={"csrftoken": csrf}, headers={"Referer": "https://evil.example/page"})
    assert referer.status_code == 403
    same = client.post("/echo", data={"csrftoken": csrf}, headers={"Origin": "http://testserver"})
    assert same.status_code == 200
    assert cross_site_source(Headers({"host": "a:8000", "origin": "http://a:8000"})) is None
    assert cross_site_source(Headers({"host": "a:8000", "origin": "http://a:8001"})) == "http://a:8001"
    assert cross_site_source(Headers({"host": "a"})) is None


def test_cookies_are_secure_over_https_and_headers_are_added() -> None:
    plain = make_client().get("/token")
    assert "secure" not in plain.headers["set-cookie"].lower()
    assert plain.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in plain.headers["content-security-policy"]
    secure = make_client(base_url="https://testserver").get("/token")
    attributes = [part.strip().lower() for part in secure.headers["set-cookie"].split(";")]
    assert "secure" in attributes and "httponly" in attributes and "samesite=lax" in attributes


def test_the_session_token_is_stable_and_compared_exactly() -> None:
    data: dict[str, Any] = {}
    first = session_csrf_token(data)
    assert session_csrf_token(data) == first and len(first) >= 40
    assert matches_session(data, first) and not matches_session(data, first[:-1]) and not matches_session(data, None)
    assert not matches_session({}, first)
