"""A small thread-safe least-recently-used cache, owned by whoever creates it (never a module global)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass
class _KeyLock:
    """The lock loading one key, and how many callers are waiting on or holding it."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    users: int = 0


class LRUCache(Generic[K, V]):
    """Keeps at most `max_items` values; `get_or_load` loads a missing one once, even under concurrency."""

    def __init__(
        self,
        max_items: int,
        *,
        weigh: Callable[[V], int] | None = None,
        max_weight: int = 0,
        loads_per_key: bool = False,
    ) -> None:
        if max_items < 1:
            raise ValueError(f"max_items must be at least 1, got {max_items}")
        if weigh is not None and max_weight < 1:
            raise ValueError(f"max_weight must be at least 1 when values are weighed, got {max_weight}")
        self.max_items = max_items
        # Optionally also bounded by total weight (say, objects held); the newest value always stays.
        self._weigh = weigh
        self.max_weight = max_weight
        self._weights: dict[K, int] = {}
        self._total_weight = 0
        self._items: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()
        # One loader at a time by default: loads are heavy (an encoder, a tensor file) and two at once hold twice
        # the memory. With `loads_per_key`, loads of different keys run at once (each key still loads once).
        self._load_lock = threading.Lock()
        self._loads_per_key = loads_per_key
        self._key_locks: dict[K, _KeyLock] = {}

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
            self._total_weight += weight - self._weights.get(key, 0)
            self._weights[key] = weight
            while len(self._items) > self.max_items or (
                self._weigh is not None and len(self._items) > 1 and self._total_weight > self.max_weight
            ):
                evicted, _ = self._items.popitem(last=False)
                self._total_weight -= self._weights.pop(evicted)

    def discard(self, matches: Callable[[K], bool]) -> int:
        """Drop every value whose key `matches`; return how many were dropped."""
        with self._lock:
            dropped = [key for key in self._items if matches(key)]
            for key in dropped:
                del self._items[key]
                self._total_weight -= self._weights.pop(key, 0)
        return len(dropped)

    def get_or_load(self, key: K, load: Callable[[], V]) -> V:
        """Return the cached value, loading and storing it first when missing."""
        value = self.get(key)
        if value is not None:
            return value
        lock = self._key_lock(key).lock if self._loads_per_key else self._load_lock
        try:
            with lock:
                value = self.get(key)
                if value is None:
                    value = load()
                    self.put(key, value)
                return value
        finally:
            if self._loads_per_key:
                self._release_key_lock(key)

    def _key_lock(self, key: K) -> _KeyLock:
        """Return the lock loading `key`, counting the caller among its users."""
        with self._lock:
            lock = self._key_locks.setdefault(key, _KeyLock())
            lock.users += 1
            return lock

    def _release_key_lock(self, key: K) -> None:
        with self._lock:
            lock = self._key_locks[key]
            lock.users -= 1
            if not lock.users:
                del self._key_locks[key]

    @property
    def total_weight(self) -> int:
        """Return the summed weight of the values held (0 when values are not weighed)."""
        with self._lock:
            return self._total_weight

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._items
