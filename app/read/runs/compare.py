"""Compare two runs of one architecture from their in-memory layer indexes: per layer the share of labels that
changed, and each layer's neurons with both labels and scores in any of the comparison's orders.

A layer's comparison is computed once per pair of layer indexes and kept as long as both are (weakly keyed by
them), so a run that is deleted, or a layer the ReadCache evicts, takes its comparisons along.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from app.core.errors import AtlasError, NotFound
from app.core.urls import neuron_url, run_url
from app.read.artifacts.reader import ArtifactsReader
from app.read.caches import ReadCache
from app.read.layers.index import LayerIndex
from app.read.runs.activation_agreement import unit_activation_r
from app.read.schemas.compare import ComparedNeuron, CompareSort, LayerChange, RunComparison
from app.read.schemas.runs import LayerOverview, RunDetail, RunLink

#: Top images per unit shown side by side for each run.
COMPARED_TOP_IMAGES = 5


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
                explained_r=mine.explained_r,
                other_explained_r=their.explained_r,
                verdict=mine.verdict,
                other_verdict=their.verdict,
                top_images=mine.top_images[:COMPARED_TOP_IMAGES],
                other_top_images=their.top_images[:COMPARED_TOP_IMAGES],
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
    """Return a link to a run as comparisons name it, with the weights it used."""
    title = run.title or f"run #{run.id} · {run.model_name}"
    return RunLink(id=run.id, title=title, url=run_url(run.id), weights_label=run.weights_label)


def verdict_shares(layer: LayerOverview | None) -> dict[str, float] | None:
    """Return the share of a layer's graded labels at each grade, or None when none was graded."""
    counts = layer.verdict_counts if layer is not None else None
    graded = sum(counts.values()) if counts else 0
    return {grade: count / graded for grade, count in counts.items()} if counts and graded else None


def with_trust(change: LayerChange, layer: LayerOverview | None, other: LayerOverview | None) -> LayerChange:
    """Return a layer's change with each run's mean explained_r and verdict shares of that layer."""
    return change.model_copy(
        update={
            "mean_r": layer.mean_explained_r if layer is not None else None,
            "other_mean_r": other.mean_explained_r if other is not None else None,
            "verdict_shares": verdict_shares(layer),
            "other_verdict_shares": verdict_shares(other),
        }
    )


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
    reader: ArtifactsReader | None = None,
) -> RunComparison:
    """Return two runs compared: every shared layer's share of changed labels, and a page of one layer's neurons
    (`layer`, else the first shared one), each listed unit with the correlation of its activations across the runs
    when a `reader` is given; raise NotFound or RunsNotComparable."""
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
    overview = {layer.name: layer for layer in cache.overview(session, run_id)}
    other_overview = {layer.name: layer for layer in cache.overview(session, other_id)}
    ordered = comparisons[listed].ordered(sort) if listed is not None else ()
    return RunComparison(
        run=run_link(run),
        other=run_link(other),
        architecture=run.architecture,
        layers=[
            with_trust(comparison.change, overview.get(name), other_overview.get(name))
            for name, comparison in comparisons.items()
        ],
        layer=listed,
        sort=sort,
        offset=offset,
        limit=limit,
        total=len(ordered),
        items=with_activation_r(session, reader, run_id, other_id, listed, ordered[offset : offset + limit]),
    )


def with_activation_r(
    session: Session,
    reader: ArtifactsReader | None,
    run_id: int,
    other_id: int,
    layer: str | None,
    neurons: Sequence[ComparedNeuron],
) -> list[ComparedNeuron]:
    """Return the listed neurons, each with the correlation of its activations in both runs where it is known."""
    if reader is None or layer is None:
        return list(neurons)
    correlations = unit_activation_r(session, reader, run_id, other_id, layer, [neuron.unit for neuron in neurons])
    if correlations is None:
        return list(neurons)
    return [neuron.model_copy(update={"activation_r": correlations.get(neuron.unit)}) for neuron in neurons]
