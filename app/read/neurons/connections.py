"""A neuron's connections read from its run's stored connection matrices: the strongest units feeding it (its
layer is a pair's downstream end) and those it feeds (the upstream end), each pair's top 20 by |weight| with the
linked units' labels, reliability and, for class units, class names. A row or column of a stored matrix is all a
neuron needs, so nothing is precomputed; a run stored without connections answers empty lists."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from app.core.urls import neuron_url
from app.read.artifacts.reader import ArtifactsReader
from app.read.caches import ReadCache
from app.read.classes.names import run_class_names, unit_class_name
from app.read.neurons.unit_links import unit_summary
from app.read.runs.queries import get_run
from app.read.schemas.connections import ConnectionLink, NeuronConnections
from app.read.schemas.runs import RunDetail
from dissect_core.analysis.connections import STRONGEST_LINKS, LayerConnections, strongest_links


def neuron_connections(
    session: Session, cache: ReadCache, reader: ArtifactsReader, run_id: int, layer: str, unit: int
) -> NeuronConnections:
    """Return a neuron's strongest inputs and outputs over every connected pair it is an end of, by |weight|, or
    raise NotFound when the run has no such neuron."""
    run = cache.run(session, run_id)
    detail = cache.layer_index(session, run_id, layer).detail(run, unit)  # NotFound names the units there are
    connections = reader.connections(get_run(session, run_id).artifacts_dir)
    inputs: list[ConnectionLink] = []
    outputs: list[ConnectionLink] = []
    notes = []
    ends = _Ends(session, cache, run, run_class_names(run))
    for pair in connections:
        if pair.to_layer == detail.layer and unit < pair.weights.shape[0]:
            links = strongest_links(pair.weights[unit : unit + 1], STRONGEST_LINKS)[0].of(0)
            inputs.extend(ends.link(pair, pair.from_layer, linked, weight) for linked, weight in links)
            notes.append(_note(pair))
        if pair.from_layer == detail.layer and unit < pair.weights.shape[1]:
            links = strongest_links(pair.weights[:, unit : unit + 1], STRONGEST_LINKS)[1].of(0)
            outputs.extend(ends.link(pair, pair.to_layer, linked, weight) for linked, weight in links)
            notes.append(_note(pair))
    return NeuronConnections(
        run_id=run_id, layer=detail.layer, unit=unit, inputs=_by_size(inputs), outputs=_by_size(outputs), notes=notes
    )


def _by_size(links: list[ConnectionLink]) -> list[ConnectionLink]:
    """Return the links by |weight|, largest first (stable: a pair's own order on ties)."""
    return sorted(links, key=lambda link: -abs(link.weight))


def _note(pair: LayerConnections) -> str:
    """Return how a pair's weights were computed, as the panel states it."""
    sample = f" over {pair.n_images} probe images" if pair.n_images is not None else ""
    folded = " (a per-channel affine map between folded in)" if pair.folded_affine else ""
    return f"{pair.from_layer} → {pair.to_layer}: {pair.kind}{sample}{folded}. {pair.note}"


@dataclass(frozen=True)
class _Ends:
    """What a link's far end is looked up in: the run's layer indexes and its class names."""

    session: Session
    cache: ReadCache
    run: RunDetail
    class_names: tuple[str, ...] | None

    def link(self, pair: LayerConnections, layer: str, unit: int, weight: float) -> ConnectionLink:
        """Return one linked unit with its label, its grade and (for a class unit) class."""
        index = self.cache.layer_index(self.session, self.run.id, layer)
        summary = unit_summary(index, unit)
        class_name = unit_class_name(self.class_names, index.n_units, unit)
        return ConnectionLink(
            layer=layer,
            unit=unit,
            label=None if summary is None else summary.label,
            reliable=None if summary is None else summary.reliable,
            verdict=None if summary is None else summary.verdict,
            weight=weight,
            kind=pair.kind,
            n_images=pair.n_images,
            class_index=None if class_name is None else unit,
            class_name=class_name,
            url=neuron_url(self.run.id, layer, unit),
        )
