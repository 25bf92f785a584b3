"""A small thread-safe least-recently-used cache, owned by whoever creates it (never a module global)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LRUCache(Generic[K, V]):
    """Keeps at most `max_items` values; `get_or_load` loads a missing one once, even under concurrency."""

    def __init__(self, max_items: int, *, weigh: Callable[[V], int] | None = None, max_weight: int = 0) -> None:
        if max_items < 1:
            raise ValueError(f"max_items must be at least 1, got {max_items}")
        if weigh is not None and max_weight < 1:
            raise ValueError(f"max_weight must be at least 1 when values are weighed, got {max_weight}")
        self.max_items = max_items
        # Optionally also bounded by total weight (say, objects held); the newest value always stays.
        self._weigh = weigh
        self.max_weight = max_weight
        self._weights: dict[K, int] = {}
        self._items: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()
        # One loader at a time: loads are heavy (an encoder, a tensor file) and a second copy is pure waste.
        self._load_lock = threading.Lock()

    def get(self, key: K) -> V | None:
        """Return the cached value and mark it recently used, or None."""
        with self._lock:
            if key not in self._items:
                return None
            self._items.move_to_end(key)
            return self._items[key]

    def put(self, key: K, value: V) -> None:
        """Store a value, evicting the least recently used beyond the limit."""
        weight = self._weigh(value) if self._weigh is not None else 0
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            self._weights[key] = weight
            while len(self._items) > self.max_items or (
                self._weigh is not None and len(self._items) > 1 and sum(self._weights.values()) > self.max_weight
            ):
                evicted, _ = self._items.popitem(last=False)
                del self._weights[evicted]

    def get_or_load(self, key: K, load: Callable[[], V]) -> V:
        """Return the cached value, loading and storing it first when missing."""
        value = self.get(key)
        if value is not None:
            return value
        with self._load_lock:
            value = self.get(key)
            if value is None:
                value = load()
                self.put(key, value)
            return value

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._items
