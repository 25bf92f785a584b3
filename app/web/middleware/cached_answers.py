"""ASGI middleware answering GETs of already-rendered immutable answers before routing, from the ResponseCache.

Routes decide what is kept (those of class `ImmutableRoute`); this only replays it, which skips routing,
parameter validation and the thread pool on the hot path.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from app.web.middleware.response_cache import ResponseCache, request_key


class ServeCachedBodies:
    """Send a kept body for a GET whose key the routes stored; pass everything else on."""

    def __init__(self, app: ASGIApp, cache: ResponseCache) -> None:
        self.app = app
        self.cache = cache

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer from the cache, or call the app."""
        if scope["type"] == "http" and scope["method"] == "GET":
            cached = self.cache.body(request_key(scope))
            if cached is not None:
                await send({"type": "http.response.start", "status": 200, "headers": list(cached.headers)})
                await send({"type": "http.response.body", "body": cached.body})
                return
        await self.app(scope, receive, send)
