"""The dashboard's small helpers: LRU cache, URLs, paging, media path checks, the cached-body middleware."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from app.core.errors import NotFound
from app.core.lru import LRUCache
from app.core.urls import layer_url, media_url, model_neuron_url, neuron_url
from app.read.schemas import LayerScoreStats, NeuronList
from app.web.cache_middleware import ServeCachedBodies
from app.web.paging import grid_params, make_pager
from app.web.response_cache import ResponseCache, body_key
from app.web.routes.media import resolve_media_path


def test_lru_evicts_the_least_recently_used() -> None:
    cache: LRUCache[str, int] = LRUCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # a is now the most recent
    cache.put("c", 3)
    assert "b" not in cache and cache.get("a") == 1 and cache.get("c") == 3 and len(cache) == 2
    with pytest.raises(ValueError, match="at least 1"):
        LRUCache(0)


def test_weighed_lru_also_bounds_the_total_weight_but_keeps_the_newest() -> None:
    cache: LRUCache[str, list[int]] = LRUCache(10, weigh=len, max_weight=5)
    cache.put("a", [1, 2])
    cache.put("b", [1, 2])
    assert cache.get("a") == [1, 2]  # b is now the least recent
    cache.put("c", [1, 2])
    assert "b" not in cache and "a" in cache and "c" in cache
    cache.put("huge", list(range(9)))
    assert len(cache) == 1 and cache.get("huge") is not None


def test_lru_loads_a_missing_value_once_under_concurrency() -> None:
    cache: LRUCache[str, int] = LRUCache(4)
    calls = []

    def load() -> int:
        calls.append(1)
        return 42

    threads = [threading.Thread(target=lambda: cache.get_or_load("k", load)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert cache.get("k") == 42 and len(calls) == 1


def test_urls_keep_dotted_layer_names_readable_and_escape_the_rest() -> None:
    assert neuron_url(3, "blocks.3", 7) == "/runs/3/layers/blocks.3/neurons/7"
    assert layer_url(3, "features.0", sort="-score", q="", page=None) == "/runs/3/layers/features.0?sort=-score"
    assert layer_url(1, "a b/c") == "/runs/1/layers/a%20b%2Fc"
    assert model_neuron_url("my net", "fc", 1) == "/models/my%20net/layers/fc/neurons/1"
    assert media_url("ab/abcdef.jpg") == "/media/ab/abcdef.jpg"
    assert media_url("ab/a b#.jpg") == "/media/ab/a%20b%23.jpg"
    assert media_url(None) is None


def listing(total: int, offset: int, n_shown: int, q: str = "") -> NeuronList:
    return NeuronList(
        run_id=1,
        layer="blocks.3",
        n_units=total,
        total=total,
        offset=offset,
        limit=96,
        sort="-score",
        q=q,
        stats=LayerScoreStats(score_min=0, score_max=1, low_confidence_below=0.25),
        neurons=[],
    ).model_copy(update={"neurons": [None] * n_shown})


def test_pager_links_keep_the_grid_state() -> None:
    pager = make_pager(listing(2048, 96, 96), page=2)
    assert (pager.page, pager.n_pages, pager.first, pager.last) == (2, 22, 97, 192)
    assert pager.previous_url == "/runs/1/layers/blocks.3?sort=-score"
    assert pager.next_url == "/runs/1/layers/blocks.3?sort=-score&page=3"
    assert pager.more_url == "/runs/1/layers/blocks.3?sort=-score&page=3&part=cards"
    last = make_pager(listing(2048, 2016, 32), page=22)
    assert last.next_url is None and last.more_url is None and last.last == 2048
    with pytest.raises(NotFound, match="22 pages"):
        make_pager(listing(2048, 0, 0), page=23)
    assert grid_params("unit", "", 1) == {}


@pytest.mark.parametrize(
    "relative", ["../atlas.db", "ab/../../atlas.db", "/etc/passwd", "ab\\..\\x", "ab/.tmp-1.jpg", "", "a\x00b"]
)
def test_media_paths_outside_the_media_dir_are_refused(tmp_path: Path, relative: str) -> None:
    (tmp_path / "media" / "ab").mkdir(parents=True)
    (tmp_path / "atlas.db").write_text("secret")
    with pytest.raises(NotFound):
        resolve_media_path(tmp_path / "media", relative)


def test_media_path_of_a_stored_file(tmp_path: Path) -> None:
    (tmp_path / "ab").mkdir()
    (tmp_path / "ab" / "abc.jpg").write_bytes(b"x")
    assert resolve_media_path(tmp_path, "ab/abc.jpg") == (tmp_path / "ab" / "abc.jpg").resolve()


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
