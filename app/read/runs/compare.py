"""Compare two runs of one architecture from their in-memory layer indexes: per layer the share of labels that
changed, and each layer's neurons with both labels and scores in any of the comparison's orders.

A layer's comparison is computed once per pair of layer indexes and kept as long as both are (weakly keyed by
them), so a run that is deleted, or a layer the ReadCache evicts, takes its comparisons along.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from app.core.errors import AtlasError, NotFound
from app.core.urls import neuron_url, run_url
from app.read.caches import ReadCache
from app.read.layers.index import LayerIndex
from app.read.schemas.compare import ComparedNeuron, CompareSort, LayerChange, RunComparison
from app.read.schemas.runs import RunDetail, RunLink


class RunsNotComparable(AtlasError):
    """Two runs of different architectures were asked to be compared (HTTP 409); the message names both."""


_SORT_KEYS: dict[str, tuple[Callable[[ComparedNeuron], Any], bool]] = {
    "unit": (lambda neuron: neuron.unit, False),
    "-unit": (lambda neuron: neuron.unit, True),
    "delta": (lambda neuron: (neuron.delta, neuron.unit), False),
    "-delta": (lambda neuron: (-neuron.delta, neuron.unit), False),
    "abs_delta": (lambda neuron: (abs(neuron.delta), neuron.unit), False),
    "-abs_delta": (lambda neuron: (-abs(neuron.delta), neuron.unit), False),
    "changed": (lambda neuron: (not neuron.changed, -abs(neuron.delta), neuron.unit), False),
}


@dataclass(eq=False)
class LayerComparison:
    """One layer's units present in both runs, in unit order, with the orders of the sorts computed once each."""

    change: LayerChange
    neurons: tuple[ComparedNeuron, ...]
    _orders: dict[str, tuple[ComparedNeuron, ...]] = field(default_factory=dict, repr=False)

    def ordered(self, sort: CompareSort) -> tuple[ComparedNeuron, ...]:
        """Return the compared neurons in a sort order (computed on first use)."""
        order = self._orders.get(sort)
        if order is None:
            key, reverse = _SORT_KEYS[sort]
            order = tuple(sorted(self.neurons, key=key, reverse=reverse))
            self._orders[sort] = order
        return order


def compare_layers(index: LayerIndex, other: LayerIndex) -> LayerComparison:
    """Return the comparison of one layer in two runs over the units both have."""
    theirs = {neuron.unit: neuron.summary for neuron in other.neurons}
    compared = []
    for neuron in index.neurons:
        mine, their = neuron.summary, theirs.get(neuron.unit)
        if their is None:
            continue
        compared.append(
            ComparedNeuron(
                unit=mine.unit,
                label=mine.label,
                other_label=their.label,
                score=mine.score,
                other_score=their.score,
                delta=their.score - mine.score,
                changed=mine.label != their.label,
                url=neuron_url(index.run_id, index.layer, mine.unit),
                other_url=neuron_url(other.run_id, other.layer, mine.unit),
            )
        )
    n_changed = sum(neuron.changed for neuron in compared)
    change = LayerChange(
        name=index.layer,
        n_units=len(compared),
        n_changed=n_changed,
        share_changed=n_changed / len(compared) if compared else 0.0,
        mean_delta=sum(neuron.delta for neuron in compared) / len(compared) if compared else 0.0,
    )
    return LayerComparison(change=change, neurons=tuple(compared))


class _Comparisons:
    """Layer comparisons weakly keyed by both layer indexes: each lives exactly as long as the two indexes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_index: weakref.WeakKeyDictionary[LayerIndex, weakref.WeakKeyDictionary[LayerIndex, LayerComparison]]
        self._by_index = weakref.WeakKeyDictionary()

    def get(self, index: LayerIndex, other: LayerIndex) -> LayerComparison:
        """Return the layer's comparison, computed on first use."""
        with self._lock:
            by_other = self._by_index.get(index)
            found = by_other.get(other) if by_other is not None else None
        if found is None:
            found = compare_layers(index, other)
            with self._lock:
                self._by_index.setdefault(index, weakref.WeakKeyDictionary())[other] = found
        return found


_COMPARISONS = _Comparisons()


def run_link(run: RunDetail) -> RunLink:
    """Return a link to a run as comparisons name it."""
    return RunLink(id=run.id, title=run.title or f"run #{run.id} · {run.model_name}", url=run_url(run.id))


def check_comparable(run: RunDetail, other: RunDetail) -> None:
    """Raise RunsNotComparable unless both runs dissected the same architecture."""
    if run.architecture != other.architecture:
        raise RunsNotComparable(
            f"Run #{run.id} dissected {run.architecture} and run #{other.id} dissected {other.architecture}, and only "
            f"runs of one architecture compare unit by unit; pick another run of {run.architecture}."
        )


def shared_layers(run: RunDetail, other: RunDetail) -> list[str]:
    """Return the names of the layers both runs have, in the first run's forward order."""
    theirs = {layer.name for layer in other.layers}
    return [layer.name for layer in run.layers if layer.name in theirs]


def compare_runs(
    session: Session,
    cache: ReadCache,
    run_id: int,
    other_id: int,
    *,
    layer: str = "",
    sort: CompareSort = "changed",
    offset: int = 0,
    limit: int = 100,
) -> RunComparison:
    """Return two runs compared: every shared layer's share of changed labels, and a page of one layer's neurons
    (`layer`, else the first shared one); raise NotFound or RunsNotComparable."""
    run, other = cache.run(session, run_id), cache.run(session, other_id)
    check_comparable(run, other)
    names = shared_layers(run, other)
    if layer and layer not in names:
        shared = ", ".join(names) if names else "none"
        raise NotFound(f"Runs #{run_id} and #{other_id} do not both have a layer {layer!r}; they share: {shared}.")
    comparisons = {
        name: _COMPARISONS.get(cache.layer_index(session, run_id, name), cache.layer_index(session, other_id, name))
        for name in names
    }
    listed = layer or (names[0] if names else None)
    ordered = comparisons[listed].ordered(sort) if listed is not None else ()
    return RunComparison(
        run=run_link(run),
        other=run_link(other),
        architecture=run.architecture,
        layers=[comparison.change for comparison in comparisons.values()],
        layer=listed,
        sort=sort,
        offset=offset,
        limit=limit,
        total=len(ordered),
        neurons=list(ordered[offset : offset + limit]),
    )
