"""The one response cache: bodies of answers that never change, keyed by path, parameters and htmx-ness.

Routes of class `ImmutableRoute` keep their 200 answers to GETs here, under the key of the request's canonical
form: the path and the query parameters the route declares alone, validated, spelled as their values print and
sorted. Unknown parameters, their order and other spellings of a value (`page=02`) add no entry; the cache is
bounded by the bytes it holds. `ServeCachedBodies` replays an answer before routing when the request as sent has
a kept key (its parameters sorted); any other spelling reaches the route, which answers from the entry of its
canonical key. Only answers derived from a stored run alone belong here (a run is never edited once stored).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import request_params_to_args
from starlette.datastructures import Headers
from starlette.types import Scope

from app.core.cache_bounds import CacheBounds
from app.core.lru import LRUCache
from app.core.urls import API_PREFIX
from app.web.views.htmx import HtmxAwareRoute, is_htmx, vary_on_htmx


@dataclass(frozen=True)
class CachedBody:
    """A kept 200 answer: its bytes, the headers it is replayed with, and the bytes the entry holds."""

    body: bytes
    headers: tuple[tuple[bytes, bytes], ...]
    size: int

    def response(self) -> Response:
        """Return the kept answer as a response to send again."""
        response = Response(self.body)
        response.raw_headers = list(self.headers)
        return response


def body_key(path: str, query: str, htmx: bool) -> str:
    """Return the cache key of a GET: its path, its query parameters sorted, and whether htmx asked for a fragment."""
    pairs = sorted(parse_qsl(query, keep_blank_values=True))
    return f"{path}?{urlencode(pairs)}|{'hx' if htmx else 'page'}"


def request_key(scope: Scope) -> str:
    """Return the cache key of the HTTP request a scope describes, as sent."""
    return body_key(scope["path"], scope["query_string"].decode("latin-1"), is_htmx(Headers(scope=scope)))


class ResponseCache:
    """An LRU of kept bodies, bounded by their count and their bytes; one per app."""

    def __init__(
        self, max_bytes: int = CacheBounds.response_bytes, max_bodies: int = CacheBounds.response_bodies
    ) -> None:
        self.max_bytes = max_bytes
        self._bodies: LRUCache[str, CachedBody] = LRUCache(
            max_bodies, weigh=lambda cached: cached.size, max_weight=max_bytes
        )

    def body(self, key: str) -> CachedBody | None:
        """Return the body kept under key, or None."""
        return self._bodies.get(key)

    def keep(self, key: str, body: bytes, media_type: str) -> CachedBody:
        """Keep a body under key, to be replayed as a 200 of that media type; return it (not kept when it alone
        is over the cache's bytes)."""
        # Kept per htmx-ness, so a replay varies on HX-Request like the answer it repeats.
        headers = tuple(vary_on_htmx(Response(body, media_type=media_type)).raw_headers)
        size = len(body) + len(key) + sum(len(name) + len(value) for name, value in headers)
        cached = CachedBody(body, headers, size)
        if size <= self.max_bytes:
            self._bodies.put(key, cached)
        return cached

    def forget_run(self, run_id: int) -> int:
        """Drop the kept pages and JSON of a run (it was deleted); return how many were dropped."""
        prefixes = tuple(f"{root}/runs/{run_id}{end}" for root in ("", API_PREFIX) for end in ("/", "?"))
        return self._bodies.discard(lambda key: key.startswith(prefixes))

    @property
    def bytes_held(self) -> int:
        """Return the bytes of the entries kept."""
        return self._bodies.total_weight

    def __len__(self) -> int:
        return len(self._bodies)


def _dependants(dependant: Dependant) -> Iterable[Dependant]:
    """Return a route's dependant and all its sub-dependencies'."""
    yield dependant
    for sub in dependant.dependencies:
        yield from _dependants(sub)


def _spelling(value: object) -> str:
    """Return how a validated parameter value is spelled in a canonical URL."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        return str(value.value)
    return "" if value is None else str(value)


class ImmutableRoute(HtmxAwareRoute):
    """A route whose answers derive from a stored run alone: a 200 answer to a GET is kept in the app's cache.

    An answer may depend on its path, htmx-ness and declared query parameters only (plain or list ones, not
    parameter models): others are not in its key.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """Return the handler, answering from and keeping answers in `app.state.response_cache`."""
        handler = super().get_route_handler()
        path_fields = list(
            {field.alias: field for d in _dependants(self.dependant) for field in d.path_params}.values()
        )
        query_fields = list(
            {field.alias: field for d in _dependants(self.dependant) for field in d.query_params}.values()
        )

        def canonical_key(request: Request) -> str | None:
            """Return the key of the request's canonical form; None when a parameter does not validate or the path
            is not spelled canonically (`/runs/01`), and then nothing is kept."""
            path_values, path_errors = request_params_to_args(path_fields, request.path_params)
            if path_errors or any(
                _spelling(path_values[field.name]) != request.path_params[field.alias] for field in path_fields
            ):
                return None
            query = request.query_params
            values, errors = request_params_to_args(query_fields, query)
            if errors:
                return None
            pairs = [
                (field.alias, _spelling(item))
                for field in query_fields
                if field.alias in query
                for item in (values[field.name] if isinstance(values[field.name], list) else [values[field.name]])
            ]
            return body_key(request.scope["path"], urlencode(pairs), is_htmx(request.headers))

        async def answer(request: Request) -> Response:
            key = canonical_key(request) if request.method == "GET" else None
            if key is None:
                return await handler(request)
            cache: ResponseCache = request.app.state.response_cache
            cached = cache.body(key)
            if cached is not None:
                return cached.response()
            response = await handler(request)
            if response.status_code == 200:
                cache.keep(key, bytes(response.body), response.headers["content-type"])
            return response

        return answer
