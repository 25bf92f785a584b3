"""A neuron's distribution evidence from its run's stored activations: histogram, quantile bands with probe image
views, and the most correlated units. Each layer's tables (`distribution_tables`) are written when the run is
stored; a run stored before that has them built from its activations (read through the app's `ArtifactsReader`,
standardised once) on the first request. Either way they are kept in an LRU (owned by one `NeuronDistributions` per
app), so a page is a lookup and no pass over images."""

from __future__ import annotations

from pathlib import Path

import torch
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.cache_bounds import CacheBounds
from app.core.lru import LRUCache
from app.core.urls import image_url, neuron_url
from app.persistence.models import Layer, Neuron
from app.persistence.store.layout import ArtifactsLayout
from app.read.artifacts.activations import NO_EVIDENCE, ActivationsUnavailable
from app.read.artifacts.reader import ArtifactsReader
from app.read.images.queries import view_urls
from app.read.neurons.distribution_tables import (
    LayerTables,
    TableParameters,
    build_layer_tables,
    load_layer_tables,
    save_layer_tables,
)
from app.read.runs.queries import get_run
from app.read.runs.queries import run_detail as get_run_detail
from app.read.schemas.distributions import (
    ActivationHistogram,
    BandImage,
    NeuronDistribution,
    QuantileBand,
    SimilarNeuron,
)
from app.read.schemas.neurons import NeuronDetail
from app.read.schemas.runs import RunDetail
from dissect_core.analysis.distributions import Band
from dissect_core.analysis.similar_units import CorrelationSketch, correlation_sketch
from dissect_core.analysis.standardise import LayerStandardiser

N_BINS = 40
PER_BAND = 6
N_SIMILAR = 10


class NeuronDistributions:
    """Builds NeuronDistribution answers, caching each run's folder and each layer's standardised activations."""

    def __init__(
        self,
        reader: ArtifactsReader,
        *,
        bounds: CacheBounds | None = None,
        n_bins: int = N_BINS,
        per_band: int = PER_BAND,
        n_similar: int = N_SIMILAR,
    ) -> None:
        bounds = bounds or CacheBounds()
        self.reader = reader
        self.n_bins, self.per_band, self.n_similar = n_bins, per_band, n_similar
        max_layers = bounds.standardised_layers
        # Keyed by the run's artifacts folder (a new uuid per stored run), so a deleted run's id reused by a later
        # run never finds the old tensors. Weighed by bytes.
        self._layers: LRUCache[tuple[Path, str], CorrelationSketch] = LRUCache(
            max_layers, weigh=CorrelationSketch.nbytes, max_weight=bounds.standardised_bytes
        )
        # Every unit's histogram and bands, and its most correlated units in each layer, read from the run's folder
        # (written when it was stored) or built for a whole layer on its first request, so pages only look them up.
        self._tables: LRUCache[tuple[Path, str], LayerTables] = LRUCache(max_layers)
        # What a page would otherwise query each time: a run's folder (keyed by id and creation time, so a reused
        # id misses), its probe images' view URLs and each layer's labels (a stored run never changes).
        self._folders: LRUCache[tuple[int, object], Path] = LRUCache(bounds.run_folders)
        self._views: LRUCache[Path, dict[int, str | None]] = LRUCache(bounds.view_url_runs)
        self._labels: LRUCache[tuple[Path, str], dict[int, str]] = LRUCache(max_layers)

    def folder(self, session: Session, run_id: int) -> Path:
        """Return the run's artifacts folder (a stored relative path lies under the data folder)."""
        return self.reader.layout(get_run(session, run_id).artifacts_dir).folder

    def _run_folder(self, session: Session, run: RunDetail) -> Path:
        return self._folders.get_or_load((run.id, run.created_at), lambda: self.folder(session, run.id))

    def layer(self, folder: Path, layer: str) -> CorrelationSketch:
        """Return a layer's standardised activations and correlation sketch (cached), or raise
        ActivationsUnavailable."""
        return self._layers.get_or_load(
            (folder, layer),
            lambda: correlation_sketch(LayerStandardiser.from_rows(self.reader.activation_rows(folder, layer))),
        )

    def evidence(self, session: Session, run: RunDetail, neuron: NeuronDetail) -> NeuronDistribution:
        """Return the neuron's histogram, bands and similar neurons, or (no activations stored) why there are none."""
        try:
            return self.distribution(session, run, neuron)
        except ActivationsUnavailable as error:
            return NeuronDistribution(run_id=run.id, layer=neuron.layer, unit=neuron.unit, unavailable=str(error))

    def distribution(self, session: Session, run: RunDetail, neuron: NeuronDetail) -> NeuronDistribution:
        """Return the neuron's histogram, quantile bands and similar neurons, or raise ActivationsUnavailable."""
        folder = self._run_folder(session, run)
        tables = self.tables(folder, run, neuron.layer)
        if neuron.unit >= tables.n_units:
            raise ActivationsUnavailable(
                f"Layer '{neuron.layer}' of this run stores activations of {tables.n_units} units, not of unit "
                f"{neuron.unit}, so {NO_EVIDENCE}; dissect the model again to store its artifacts."
            )
        bins = tables.histogram(neuron.unit)
        constant = bool(tables.constant[neuron.unit])
        in_layer, others = ([], []) if constant else self._similar(run, neuron, tables)
        views = self._views.get_or_load(folder, lambda: view_urls(session, run.id))
        labels = {
            (name, unit): self._layer_labels(session, folder, run.id, name).get(unit)
            for name, unit, _ in [*in_layer, *others]
        }
        return NeuronDistribution(
            run_id=run.id,
            layer=neuron.layer,
            unit=neuron.unit,
            n_images=tables.n_images,
            constant=constant,
            histogram=ActivationHistogram(low=bins.low, high=bins.high, counts=bins.counts.tolist()),
            top_activations=[image.activation for image in neuron.top_images],
            bands=[_band_view(run.id, band, values, views) for band, values in tables.bands(neuron.unit)],
            similar_in_layer=[_similar_view(run.id, pair, labels) for pair in in_layer],
            similar_in_other_layers=[_similar_view(run.id, pair, labels) for pair in others],
        )

    def tables(self, folder: Path, run: RunDetail, layer: str) -> LayerTables:
        """Return a layer's tables (cached): those stored with the run, else built now from its activations (a run
        stored before tables were kept; seconds at 50,000 images x 2,048 units), or raise ActivationsUnavailable."""
        parameters = self._parameters(run.id)

        def load() -> LayerTables:
            stored = load_layer_tables(ArtifactsLayout(folder), layer, parameters)
            return stored if stored is not None else self._build_tables(folder, run, layer, parameters)

        return self._tables.get_or_load((folder, layer), load)

    def write_tables(self, session: Session, run_id: int) -> list[str]:
        """Build every layer's tables of a stored run and write them into its folder; return the layers written
        (a layer without stored activations has none)."""
        run = get_run_detail(session, run_id)
        folder = self.folder(session, run_id)
        # Every layer's sketch is held here while all are built: the LRU alone could evict one another layer needs.
        sketches = self._sketches(folder, run)
        for name, own in sketches.items():
            tables = build_layer_tables(self._parameters(run_id), name, own, _same_images(own, sketches))
            save_layer_tables(ArtifactsLayout(folder), name, tables)
        return list(sketches)

    def _parameters(self, run_id: int) -> TableParameters:
        return TableParameters(run_id=run_id, n_bins=self.n_bins, per_band=self.per_band, n_similar=self.n_similar)

    def _layer_labels(self, session: Session, folder: Path, run_id: int, layer: str) -> dict[int, str]:
        return self._labels.get_or_load((folder, layer), lambda: _labels(session, run_id, layer))

    def _build_tables(self, folder: Path, run: RunDetail, layer: str, parameters: TableParameters) -> LayerTables:
        """Return a layer's tables built from the stored activations of it and of the run's layers over the same
        images, or raise ActivationsUnavailable."""
        own = self.layer(folder, layer)
        layers = _same_images(own, self._sketches(folder, run, own=(layer, own)))
        return build_layer_tables(parameters, layer, own, layers)

    def _sketches(
        self, folder: Path, run: RunDetail, own: tuple[str, CorrelationSketch] | None = None
    ) -> dict[str, CorrelationSketch]:
        """Return the sketches of the run's layers that have stored activations, by name, in forward order."""
        sketches: dict[str, CorrelationSketch] = {}
        for summary in run.layers:
            if own is not None and summary.name == own[0]:
                sketches[summary.name] = own[1]
                continue
            try:
                sketches[summary.name] = self.layer(folder, summary.name)
            except ActivationsUnavailable:
                continue  # that layer's evidence is missing; the others still answer
        return sketches

    def _similar(
        self, run: RunDetail, neuron: NeuronDetail, tables: LayerTables
    ) -> tuple[list[tuple[str, int, float]], list[tuple[str, int, float]]]:
        """Return the (layer, unit, r) of the most correlated units in the neuron's layer and in the others."""
        units, r = tables.similar[neuron.layer]
        in_layer = _row(neuron.layer, units[neuron.unit], r[neuron.unit])
        positions = {summary.name: summary.position for summary in run.layers}
        others: list[tuple[int, str, int, float]] = []
        for name, (units, r) in tables.similar.items():
            if name != neuron.layer and name in positions:
                row = _row(name, units[neuron.unit], r[neuron.unit])
                others.extend((positions[name], name, unit, value) for name, unit, value in row)
        others.sort(key=lambda item: (-item[3], item[0], item[2]))
        return in_layer, [(name, unit, value) for _, name, unit, value in others[: self.n_similar]]


def _same_images(own: CorrelationSketch, sketches: dict[str, CorrelationSketch]) -> dict[str, CorrelationSketch]:
    """Return the sketches over as many images as `own`'s (units of other probe sets cannot be correlated)."""
    return {name: sketch for name, sketch in sketches.items() if sketch.layer.n_images == own.layer.n_images}


def _row(layer: str, units: torch.Tensor, r: torch.Tensor) -> list[tuple[str, int, float]]:
    """Return one unit's (layer, unit, r) list from a similar-units table row (padding left out)."""
    return [(layer, int(u), float(v)) for u, v in zip(units.tolist(), r.tolist(), strict=True) if u >= 0]


def _band_view(run_id: int, band: Band, activations: list[float], views: dict[int, str | None]) -> QuantileBand:
    images = [
        BandImage(
            image_index=int(index),
            activation=activation,
            view_url=views.get(int(index)),
            image_url=image_url(run_id, int(index)),
        )
        for index, activation in zip(band.images.tolist(), activations, strict=True)
    ]
    return QuantileBand(name=band.name, start=band.start, stop=band.stop, low=band.low, high=band.high, images=images)


def _similar_view(
    run_id: int, pair: tuple[str, int, float], labels: dict[tuple[str, int], str | None]
) -> SimilarNeuron:
    layer, unit, r = pair
    return SimilarNeuron(
        layer=layer, unit=unit, label=labels.get((layer, unit)), r=r, url=neuron_url(run_id, layer, unit)
    )


def _labels(session: Session, run_id: int, layer: str) -> dict[int, str]:
    """Return the label of every unit of one layer of a run (one query)."""
    rows = session.execute(
        select(Neuron.unit, Neuron.label)
        .join(Layer, Layer.id == Neuron.layer_id)
        .where(Layer.run_id == run_id, Layer.name == layer)
    ).all()
    return dict(rows)
