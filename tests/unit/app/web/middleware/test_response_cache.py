"""The response cache: kept answers keyed by the route's validated parameters alone, bounded by bytes."""

from __future__ import annotations

from typing import Annotated, Literal

import pytest
from fastapi import APIRouter, FastAPI, Query
from fastapi.testclient import TestClient

from app.web.middleware.cached_answers import ServeCachedBodies
from app.web.middleware.response_cache import ImmutableRoute, ResponseCache


def make_client(calls: list[tuple[int, int, str, bool]], max_bytes: int = 1 << 20) -> tuple[TestClient, ResponseCache]:
    """Return a client of an app with one kept route (recording each call of it in `calls`), and its cache."""
    router = APIRouter()

    def thing(
        thing_id: int, page: Annotated[int, Query(ge=1)] = 1, sort: Literal["a", "b"] = "a", flag: bool = False
    ) -> dict[str, object]:
        calls.append((thing_id, page, sort, flag))
        return {"id": thing_id, "page": page, "sort": sort, "flag": flag, "padding": "x" * 1000}

    router.add_api_route("/things/{thing_id}", thing, methods=["GET"], route_class_override=ImmutableRoute)
    app = FastAPI()
    cache = app.state.response_cache = ResponseCache(max_bytes=max_bytes)
    app.add_middleware(ServeCachedBodies, cache=cache)
    app.include_router(router)
    return TestClient(app), cache


@pytest.mark.slow
def test_junk_parameters_and_other_spellings_add_no_entries() -> None:
    calls: list[tuple[int, int, str, bool]] = []
    client, cache = make_client(calls)
    first = client.get("/things/1?page=2&sort=b&flag=true")
    assert first.status_code == 200 and len(cache) == 1
    for index in range(200):
        again = client.get(f"/things/1?junk{index}={'y' * 500}&flag=1&page=02&sort=b&page=2")
        assert again.content == first.content
    assert client.get("/things/1?sort=b&flag=true&page=2").content == first.content  # another order
    assert len(cache) == 1 and calls == [(1, 2, "b", True)]


def test_invalid_or_oddly_spelled_paths_are_answered_but_not_kept() -> None:
    calls: list[tuple[int, int, str, bool]] = []
    client, cache = make_client(calls)
    assert client.get("/things/1?page=0").status_code == 422
    assert client.get("/things/01").status_code == 200 and client.get("/things/01").status_code == 200
    assert len(cache) == 0 and len(calls) == 2
    client.get("/things/1")
    assert len(cache) == 1


def test_kept_bodies_are_bounded_by_bytes() -> None:
    calls: list[tuple[int, int, str, bool]] = []
    client, cache = make_client(calls, max_bytes=5_000)
    for page in range(1, 21):
        assert client.get(f"/things/1?page={page}").status_code == 200
    assert 0 < cache.bytes_held <= 5_000 and len(cache) == 4
    assert cache.body("/things/1?page=20|page") is not None  # the newest stay
    tiny = ResponseCache(max_bytes=100)
    tiny.keep("/big?|page", b"x" * 200, "text/plain")
    assert len(tiny) == 0  # a body over the whole budget is answered, not kept
