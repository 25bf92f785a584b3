"""A neuron's distribution evidence read from its run's stored activations: histogram, quantile bands with probe
image views, and the most correlated units. Each layer is standardised once and kept in an LRU (owned by one
`NeuronDistributions` per app), so a page needs one matrix-vector product per layer and no pass over images."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from app.core.lru import LRUCache
from app.core.paths import resolved_path
from app.core.urls import image_url, media_url, neuron_url
from app.persistence.models import Layer, Neuron, ProbeImage
from app.read.distribution_schemas import (
    ActivationHistogram,
    BandImage,
    NeuronDistribution,
    QuantileBand,
    SimilarNeuron,
)
from app.read.neuron_distribution import (
    Band,
    Standardised,
    centred_unit,
    distribution_seed,
    histogram,
    most_correlated,
    quantile_bands,
    standardise,
)
from app.read.queries import get_run
from app.read.schemas import NeuronDetail, RunDetail
from app.read.stored_activations import NO_EVIDENCE, ActivationsUnavailable, load_layer_activations

N_BINS = 40
PER_BAND = 6
N_SIMILAR = 10


class NeuronDistributions:
    """Builds NeuronDistribution answers, caching each run's folder and each layer's standardised activations."""

    def __init__(
        self,
        *,
        data_dir: Path | None = None,
        max_layers: int = 64,
        max_bytes: int = 1024 * 2**20,
        n_bins: int = N_BINS,
        per_band: int = PER_BAND,
        n_similar: int = N_SIMILAR,
    ) -> None:
        self.data_dir = data_dir
        self.n_bins, self.per_band, self.n_similar = n_bins, per_band, n_similar
        # Keyed by the run's artifacts folder (a new uuid per stored run), so a deleted run's id reused by a later
        # run never finds the old tensors. Weighed by bytes: a 4,000-unit layer over 50,000 probe images holds
        # 400 MB of float16 activations and a 64 MB sketch.
        self._layers: LRUCache[tuple[Path, str], Standardised] = LRUCache(
            max_layers, weigh=Standardised.nbytes, max_weight=max_bytes
        )

    def folder(self, session: Session, run_id: int) -> Path:
        """Return the run's artifacts folder (a stored relative path lies under the data folder)."""
        stored = get_run(session, run_id).artifacts_dir
        return resolved_path(stored, self.data_dir) if self.data_dir is not None else Path(stored)

    def layer(self, folder: Path, layer: str) -> Standardised:
        """Return a layer's standardised activations (cached), or raise ActivationsUnavailable."""
        return self._layers.get_or_load((folder, layer), lambda: standardise(load_layer_activations(folder, layer)))

    def evidence(self, session: Session, run: RunDetail, neuron: NeuronDetail) -> NeuronDistribution:
        """Return the neuron's histogram, bands and similar neurons, or (no activations stored) why there are none."""
        try:
            return self.distribution(session, run, neuron)
        except ActivationsUnavailable as error:
            return NeuronDistribution(run_id=run.id, layer=neuron.layer, unit=neuron.unit, unavailable=str(error))

    def distribution(self, session: Session, run: RunDetail, neuron: NeuronDetail) -> NeuronDistribution:
        """Return the neuron's histogram, quantile bands and similar neurons, or raise ActivationsUnavailable."""
        folder = self.folder(session, run.id)
        own = self.layer(folder, neuron.layer)
        if neuron.unit >= own.z.shape[0]:
            raise ActivationsUnavailable(
                f"Layer '{neuron.layer}' of this run stores activations of {own.z.shape[0]} units, not of unit "
                f"{neuron.unit}, so {NO_EVIDENCE}; dissect the model again to store its artifacts."
            )
        values = own.activations(neuron.unit)
        seed = distribution_seed(run.id, neuron.layer, neuron.unit)
        bands = quantile_bands(values, self.per_band, seed)
        bins = histogram(values, self.n_bins)
        constant = not bool(own.varies[neuron.unit])
        in_layer, others = ([], []) if constant else self._similar(folder, run, neuron, own)
        views = _view_urls(session, run.id, (int(index) for band in bands for index in band.images))
        labels = _labels(session, run.id, [*in_layer, *others])
        return NeuronDistribution(
            run_id=run.id,
            layer=neuron.layer,
            unit=neuron.unit,
            n_images=values.numel(),
            constant=constant,
            histogram=ActivationHistogram(low=bins.low, high=bins.high, counts=bins.counts.tolist()),
            top_activations=[image.activation for image in neuron.top_images],
            bands=[_band_view(run.id, band, values, views) for band in bands],
            similar_in_layer=[_similar_view(run.id, pair, labels) for pair in in_layer],
            similar_in_other_layers=[_similar_view(run.id, pair, labels) for pair in others],
        )

    def _similar(
        self, folder: Path, run: RunDetail, neuron: NeuronDetail, own: Standardised
    ) -> tuple[list[tuple[str, int, float]], list[tuple[str, int, float]]]:
        """Return the (layer, unit, r) of the most correlated units in the neuron's layer and in the others."""
        column, unit_values = own.z[neuron.unit], centred_unit(own.values[neuron.unit])
        units, r = most_correlated(unit_values, column, own, self.n_similar, exclude=neuron.unit)
        in_layer = [(neuron.layer, int(u), float(v)) for u, v in zip(units, r, strict=True)]
        others: list[tuple[int, str, int, float]] = []
        for summary in run.layers:
            if summary.name == neuron.layer:
                continue
            try:
                other = self.layer(folder, summary.name)
            except ActivationsUnavailable:
                continue  # that layer's evidence is missing; the others still answer
            if other.values.shape[1] != unit_values.numel():
                continue
            units, r = most_correlated(unit_values, column, other, self.n_similar)
            others.extend((summary.position, summary.name, int(u), float(v)) for u, v in zip(units, r, strict=True))
        others.sort(key=lambda item: (-item[3], item[0], item[2]))
        return in_layer, [(name, unit, value) for _, name, unit, value in others[: self.n_similar]]


def _band_view(run_id: int, band: Band, values: torch.Tensor, views: dict[int, str | None]) -> QuantileBand:
    images = [
        BandImage(
            image_index=int(index),
            activation=float(values[int(index)]),
            view_url=views.get(int(index)),
            image_url=image_url(run_id, int(index)),
        )
        for index in band.images
    ]
    return QuantileBand(name=band.name, start=band.start, stop=band.stop, low=band.low, high=band.high, images=images)


def _similar_view(run_id: int, pair: tuple[str, int, float], labels: dict[tuple[str, int], str]) -> SimilarNeuron:
    layer, unit, r = pair
    return SimilarNeuron(
        layer=layer, unit=unit, label=labels.get((layer, unit)), r=r, url=neuron_url(run_id, layer, unit)
    )


def _view_urls(session: Session, run_id: int, indices: Iterable[int]) -> dict[int, str | None]:
    """Return the media URL of each probe image's view (one query)."""
    wanted = sorted(set(indices))
    if not wanted:
        return {}
    rows = session.execute(
        select(ProbeImage.index, ProbeImage.view_file).where(ProbeImage.run_id == run_id, ProbeImage.index.in_(wanted))
    ).all()
    return {index: media_url(view) for index, view in rows}


def _labels(session: Session, run_id: int, pairs: list[tuple[str, int, float]]) -> dict[tuple[str, int], str]:
    """Return the labels of (layer, unit) pairs of one run (one query)."""
    if not pairs:
        return {}
    by_layer: dict[str, set[int]] = {}
    for layer, unit, _ in pairs:
        by_layer.setdefault(layer, set()).add(unit)
    condition = or_(*(and_(Layer.name == name, Neuron.unit.in_(sorted(units))) for name, units in by_layer.items()))
    rows = session.execute(
        select(Layer.name, Neuron.unit, Neuron.label)
        .join(Layer, Layer.id == Neuron.layer_id)
        .where(Layer.run_id == run_id, condition)
    ).all()
    return {(name, unit): label for name, unit, label in rows}
