"""The one response cache: bodies of answers that never change, keyed by path, query and htmx-ness.

Routes of class `ImmutableRoute` keep their 200 answers to GETs here; `ServeCachedBodies` replays them before
routing. Only answers derived from a stored run alone belong here (a run is never edited once stored).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from fastapi import Request, Response
from starlette.datastructures import Headers
from starlette.types import Scope

from app.core.lru import LRUCache
from app.web.htmx import HtmxAwareRoute, is_htmx, vary_on_htmx


@dataclass(frozen=True)
class CachedBody:
    """A kept 200 answer: its bytes and the headers it is replayed with."""

    body: bytes
    headers: tuple[tuple[bytes, bytes], ...]


def body_key(path: str, query: str, htmx: bool) -> str:
    """Return the cache key of a GET: its path, its query string and whether htmx asked for a fragment."""
    return f"{path}?{query}|{'hx' if htmx else 'page'}"


def request_key(scope: Scope) -> str:
    """Return the cache key of the HTTP request a scope describes."""
    return body_key(scope["path"], scope["query_string"].decode("latin-1"), is_htmx(Headers(scope=scope)))


class ResponseCache:
    """An LRU of kept bodies; one per app."""

    def __init__(self, max_bodies: int = 4096) -> None:
        self._bodies: LRUCache[str, CachedBody] = LRUCache(max_bodies)

    def body(self, key: str) -> CachedBody | None:
        """Return the body kept under key, or None."""
        return self._bodies.get(key)

    def keep(self, key: str, body: bytes, media_type: str) -> CachedBody:
        """Keep a body under key, to be replayed as a 200 of that media type; return it."""
        # Kept per htmx-ness, so a replay varies on HX-Request like the answer it repeats.
        headers = vary_on_htmx(Response(body, media_type=media_type)).raw_headers
        cached = CachedBody(body, tuple(headers))
        self._bodies.put(key, cached)
        return cached


class ImmutableRoute(HtmxAwareRoute):
    """A route whose answers derive from a stored run alone: a 200 answer to a GET is kept in the app's cache."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Return the handler, keeping what it answers in `app.state.response_cache`."""
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            response = await handler(request)
            if request.method == "GET" and response.status_code == 200:
                cache: ResponseCache = request.app.state.response_cache
                cache.keep(request_key(request.scope), bytes(response.body), response.headers["content-type"])
            return response

        return answer
