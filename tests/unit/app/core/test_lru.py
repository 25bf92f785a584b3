"""The LRU cache: eviction by recency and by total weight, one load under concurrency."""

from __future__ import annotations

import threading

import pytest

from app.core.lru import LRUCache


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


def test_per_key_loads_run_at_once_for_different_keys_and_once_per_key() -> None:
    cache: LRUCache[str, str] = LRUCache(4, loads_per_key=True)
    started, release = threading.Event(), threading.Event()
    calls: list[str] = []

    def slow() -> str:
        calls.append("slow")
        started.set()
        assert release.wait(10)
        return "slow"

    waiting = [threading.Thread(target=lambda: cache.get_or_load("slow", slow)) for _ in range(3)]
    for thread in waiting:
        thread.start()
    assert started.wait(10)
    assert cache.get_or_load("fast", lambda: "fast") == "fast"  # not held up by the load of "slow"
    release.set()
    for thread in waiting:
        thread.join(10)
    assert cache.get("slow") == "slow" and calls == ["slow"] and not cache._key_locks


def test_total_weight_follows_puts_replacements_and_evictions() -> None:
    cache: LRUCache[str, bytes] = LRUCache(10, weigh=len, max_weight=10)
    cache.put("a", b"1234")
    cache.put("a", b"12")  # a replacement counts once
    cache.put("b", b"123456")
    assert cache.total_weight == 8
    cache.put("c", b"123")
    assert "a" not in cache and cache.total_weight == 9
