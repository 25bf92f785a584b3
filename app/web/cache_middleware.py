"""ASGI middleware answering GETs of already-rendered immutable pages before routing, from the ReadCache.

Routes decide what is cacheable (they store bodies with `ReadCache.keep`); this only replays them, which
skips routing, parameter validation and the thread pool on the hot path.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from app.read.read_cache import ReadCache, body_key


def _htmx(scope: Scope) -> bool:
    headers = dict(scope["headers"])
    return headers.get(b"hx-request") == b"true" and headers.get(b"hx-history-restore-request") != b"true"


class ServeCachedBodies:
    """Send a cached body for a GET whose key the routes stored; pass everything else on."""

    def __init__(self, app: ASGIApp, cache: ReadCache) -> None:
        self.app = app
        self.cache = cache

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer from the cache, or call the app."""
        if scope["type"] == "http" and scope["method"] == "GET":
            key = body_key(scope["path"], scope["query_string"].decode("latin-1"), _htmx(scope))
            cached = self.cache.body(key)
            if cached is not None:
                headers = [
                    (b"content-type", cached.media_type.encode()),
                    (b"content-length", str(len(cached.body)).encode()),
                    (b"vary", b"HX-Request"),
                ]
                await send({"type": "http.response.start", "status": 200, "headers": headers})
                await send({"type": "http.response.body", "body": cached.body})
                return
        await self.app(scope, receive, send)
