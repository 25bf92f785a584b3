"""The replay middleware: kept bodies answer GETs before the app, page and fragment apart."""

from __future__ import annotations

import asyncio

from app.web.middleware.cached_answers import ServeCachedBodies
from app.web.middleware.response_cache import ResponseCache, body_key


def test_cached_bodies_are_replayed_before_the_app() -> None:
    cache = ResponseCache()
    cache.keep(body_key("/runs/1/layers/fc", "page=2", htmx=True), b"<div>grid</div>", "text/html; charset=utf-8")
    reached: list[str] = []

    async def app(scope: dict, _receive: object, _send: object) -> None:
        reached.append(scope["path"])

    middleware = ServeCachedBodies(app, cache)
    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    def request(path: str, query: bytes, headers: list[tuple[bytes, bytes]], method: str = "GET") -> None:
        scope = {"type": "http", "method": method, "path": path, "query_string": query, "headers": headers}
        asyncio.run(middleware(scope, None, send))

    request("/runs/1/layers/fc", b"page=2", [(b"hx-request", b"true")])
    assert sent[0]["status"] == 200 and sent[1]["body"] == b"<div>grid</div>" and not reached
    assert (b"vary", b"HX-Request") in sent[0]["headers"]
    request("/runs/1/layers/fc", b"page=2", [])  # the full page is another entry
    request("/runs/1/layers/fc", b"page=2", [(b"hx-request", b"true")], method="POST")
    assert reached == ["/runs/1/layers/fc", "/runs/1/layers/fc"]
