"""A run's labels at a glance, per layer: a histogram of explained_r, its means, the shares reliable (the top grade)
and generic, the count at each grade and the mean label-free scores, with those of random image sets beside them."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.persistence.models import Layer, Neuron
from app.read.artifacts.reader import ArtifactsReader
from app.read.artifacts.scoring import ConceptSearchUnavailable
from app.read.layers import queries as layer_queries
from app.read.runs.queries import get_run
from app.read.schemas.layers import LayerSummary
from app.read.schemas.runs import LayerOverview, RHistogram
from dissect_core.analysis.distributions import bin_counts
from dissect_core.analysis.label_free import LABEL_FREE_TOP_IMAGES
from dissect_core.data.vocabulary import is_generic_concept
from dissect_core.evaluation.verdict import VERDICTS, WEAK_CAUSES, weak_causes

#: Bins of the explained_r histogram, over one fixed range so that layers and runs compare at a glance.
HISTOGRAM_BINS = 20
HISTOGRAM_LOW = -0.2
HISTOGRAM_HIGH = 1.0


class NeuronFacts(NamedTuple):
    """What the overview reads of one neuron (the evaluation columns are None for neurons stored before them)."""

    label: str
    explained_r: float | None
    explanation_r: float | None
    reliable: bool | None
    verdict: str | None = None
    clarity: float | None = None
    polysemanticity: float | None = None
    stability: float | None = None
    coverage_judgeable: bool | None = None


def r_bin_counts(values: Sequence[float]) -> list[int]:
    """Return how many r fall in each bin of the explained_r histogram (`bin_counts` over the fixed range)."""
    return bin_counts(torch.tensor(values, dtype=torch.float64), HISTOGRAM_BINS, HISTOGRAM_LOW, HISTOGRAM_HIGH).tolist()


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _explained_rs(neurons: Sequence[NeuronFacts], *, reliable: bool) -> list[float]:
    return [neuron.explained_r for neuron in neurons if neuron.explained_r is not None and neuron.reliable is reliable]


def _verdict_counts(neurons: Sequence[NeuronFacts]) -> dict[str, int] | None:
    """Return how many labels have each grade, best first, or None when none was graded."""
    graded = [neuron.verdict for neuron in neurons if neuron.verdict is not None]
    return {grade: graded.count(grade) for grade in VERDICTS} if graded else None


def _weak_cause_counts(neurons: Sequence[NeuronFacts]) -> dict[str, int] | None:
    """Return how many weak labels miss each top-grade rule (`weak_causes`; a label can miss two), or None when no
    label is weak."""
    weak = [weak_causes(n.stability, n.coverage_judgeable) for n in neurons if n.verdict == "weak"]
    return {cause: sum(cause in causes for causes in weak) for cause in WEAK_CAUSES} if weak else None


def summarise_layer(layer: LayerSummary, neurons: Sequence[NeuronFacts]) -> LayerOverview:
    """Return a layer's overview from its neurons' labels and evaluation columns."""
    evaluated = [neuron for neuron in neurons if neuron.reliable is not None]
    reliable_rs, unreliable_rs = _explained_rs(evaluated, reliable=True), _explained_rs(evaluated, reliable=False)
    histogram = RHistogram(
        low=HISTOGRAM_LOW,
        high=HISTOGRAM_HIGH,
        reliable=r_bin_counts(reliable_rs),
        unreliable=r_bin_counts(unreliable_rs),
    )
    return LayerOverview(
        name=layer.name,
        position=layer.position,
        kind=layer.kind,
        n_units=layer.n_units,
        n_evaluated=len(evaluated),
        share_generic=sum(is_generic_concept(neuron.label) for neuron in neurons) / len(neurons) if neurons else 0.0,
        share_reliable=sum(bool(neuron.reliable) for neuron in evaluated) / len(evaluated) if evaluated else None,
        verdict_counts=_verdict_counts(neurons),
        weak_causes=_weak_cause_counts(neurons),
        mean_clarity=_mean([neuron.clarity for neuron in neurons if neuron.clarity is not None]),
        mean_polysemanticity=_mean([n.polysemanticity for n in neurons if n.polysemanticity is not None]),
        mean_explained_r=_mean(reliable_rs + unreliable_rs),
        mean_explanation_r=_mean([neuron.explanation_r for neuron in evaluated if neuron.explanation_r is not None]),
        histogram=histogram if reliable_rs or unreliable_rs else None,
        evaluation=layer.evaluation,
    )


def layer_overviews(session: Session, run_id: int) -> list[LayerOverview]:
    """Return every layer of a run in forward order with its overview, or raise NotFound."""
    layers = layer_queries.list_layers(session, run_id)
    rows = session.execute(
        select(
            Layer.name,
            Neuron.label,
            Neuron.explained_r,
            Neuron.explanation_r,
            Neuron.reliable,
            Neuron.verdict,
            Neuron.clarity,
            Neuron.polysemanticity,
            Neuron.stability,
            Neuron.coverage_judgeable,
        )
        .join(Layer, Neuron.layer_id == Layer.id)
        .where(Layer.run_id == run_id)
    ).all()
    by_layer: dict[str, list[NeuronFacts]] = {}
    for name, *facts in rows:
        by_layer.setdefault(name, []).append(NeuronFacts(*facts))
    return [summarise_layer(layer, by_layer.get(layer.name, [])) for layer in layers]


@dataclass(frozen=True)
class LabelFreeBaseline:
    """The mean clarity and polysemanticity of `n_sets` random sets of `n_top` probe images: scores by chance."""

    clarity: float
    polysemanticity: float
    n_top: int
    n_sets: int


def label_free_baselines(
    session: Session, reader: ArtifactsReader, run_id: int, overview: Sequence[LayerOverview]
) -> dict[str, LabelFreeBaseline]:
    """Return, per layer with label-free scores, the random baseline of as many top images as its scores used.

    One baseline per set size from the run's stored image embeddings (the reader caches it, a few hundred seeded
    sets, so its cost does not grow with the layers); layers without scores, or a run whose embeddings are gone, get
    none."""
    scored = [layer.name for layer in overview if layer.mean_clarity is not None]
    if not scored:
        return {}
    artifacts_dir = get_run(session, run_id).artifacts_dir
    baselines = {}
    try:
        for name in scored:
            n_top = min(LABEL_FREE_TOP_IMAGES, int(reader.top_indices(artifacts_dir, name).shape[1]))
            if n_top < 2:
                continue
            scores = reader.label_free_baseline(artifacts_dir, n_top)
            baselines[name] = LabelFreeBaseline(
                clarity=_finite_mean(scores.clarity),
                polysemanticity=_finite_mean(scores.polysemanticity),
                n_top=n_top,
                n_sets=len(scores.clarity),
            )
    except ConceptSearchUnavailable:
        return {}
    return baselines


def _finite_mean(values: torch.Tensor) -> float:
    finite = values[torch.isfinite(values)].double()
    return float(finite.mean()) if len(finite) else math.nan
