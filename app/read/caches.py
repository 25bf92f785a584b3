"""Per-app caches of what never changes once a run is stored: run details and overviews, layer facts, layer indexes.

A run is written once, in one transaction, and never edited (a relabel makes a new run), so anything
derived from a run alone can be kept until evicted. Its name and notes are the exception: changing them forgets
the run here (`forget_run`), as deleting it does. Changing rows (jobs, typed concepts) are not cached here.
Every in-memory cache of the app, these among them, is listed with its bound in app.core.cache_bounds.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.core.cache_bounds import CacheBounds
from app.core.lru import LRUCache
from app.read.classes.names import run_class_names
from app.read.layers import queries as layer_queries
from app.read.layers.index import LayerIndex, load_layer_index
from app.read.runs import queries as run_queries
from app.read.runs.overview import layer_overviews
from app.read.schemas.runs import LayerOverview, RunDetail


class ReadCache:
    """LRUs of run details and overviews, layer facts and in-memory layer indexes."""

    def __init__(self, bounds: CacheBounds | None = None) -> None:
        bounds = bounds or CacheBounds()
        self._runs: LRUCache[int, RunDetail] = LRUCache(bounds.runs)
        self._overviews: LRUCache[int, list[LayerOverview]] = LRUCache(bounds.runs)
        self._layers: LRUCache[tuple[int, str], layer_queries.LayerFacts] = LRUCache(bounds.layer_facts)
        self._indexes: LRUCache[tuple[int, str], LayerIndex] = LRUCache(
            bounds.layer_indexes, weigh=LayerIndex.n_top_images, max_weight=bounds.index_top_images
        )

    def forget_run(self, run_id: int) -> None:
        """Drop everything kept about a run (it was deleted: the one change a stored run can undergo)."""
        self._runs.discard(lambda key: key == run_id)
        self._overviews.discard(lambda key: key == run_id)
        self._layers.discard(lambda key: key[0] == run_id)
        self._indexes.discard(lambda key: key[0] == run_id)

    def run(self, session: Session, run_id: int) -> RunDetail:
        """Return the run's details (cached); NotFound is raised, never cached."""
        cached = self._runs.get(run_id)
        if cached is None:
            cached = run_queries.run_detail(session, run_id)
            self._runs.put(run_id, cached)
        return cached

    def overview(self, session: Session, run_id: int) -> list[LayerOverview]:
        """Return the run's per-layer overview of its labels (cached)."""
        cached = self._overviews.get(run_id)
        if cached is None:
            cached = layer_overviews(session, run_id)
            self._overviews.put(run_id, cached)
        return cached

    def layer(self, session: Session, run_id: int, layer_name: str) -> layer_queries.LayerFacts:
        """Return a run's layer with its score statistics (cached)."""
        key = (run_id, layer_name)
        cached = self._layers.get(key)
        if cached is None:
            cached = layer_queries.layer_facts(session, run_id, layer_name)
            self._layers.put(key, cached)
        return cached

    def layer_index(self, session: Session, run_id: int, layer_name: str) -> LayerIndex:
        """Return a run's layer with every neuron in memory (loaded once, even under concurrent requests)."""
        facts = self.layer(session, run_id, layer_name)

        def load() -> LayerIndex:
            return load_layer_index(
                session,
                run_id=run_id,
                layer_id=facts.id,
                layer=facts.name,
                layer_kind=facts.summary.kind,
                n_units=facts.summary.n_units,
                stats=facts.stats,
                evaluation=facts.summary.evaluation,
                class_names=run_class_names(self.run(session, run_id)),
            )

        return self._indexes.get_or_load((run_id, facts.name), load)
