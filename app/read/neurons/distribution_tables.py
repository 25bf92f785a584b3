"""A layer's neuron-page tables as dense tensors: every unit's histogram, quantile bands (with the sampled images'
activations) and most correlated units in each layer of its run.

Built once per layer: when a run is stored (app/jobs/runs/neuron_tables.py writes them beside its activations), or
on the first panel request for a run stored before that. A page then only looks its unit up; nothing is read from
the activations. The file holds tensors, ints, floats and strings only, so it loads with `weights_only=True`.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from app.persistence.store.layout import ArtifactsLayout
from dissect_core.analysis.distributions import Band, Histogram, distribution_seed, layer_evidence
from dissect_core.analysis.similar_units import CorrelationSketch, most_correlated_tables

#: Bumped when the file's fields change: a file of another format is ignored and the tables built again.
TABLES_FORMAT = 1


@dataclass(frozen=True)
class TableParameters:
    """What the tables were built for: the run (band samples are seeded by it), bins, images per band, neighbours."""

    run_id: int
    n_bins: int
    per_band: int
    n_similar: int


@dataclass(frozen=True)
class LayerTables:
    """Every unit's distribution panels of one layer. Units are rows; a band's missing value is NaN, a missing
    image or neighbour -1."""

    parameters: TableParameters
    n_images: int
    constant: torch.Tensor  # [K] bool
    histogram_low: torch.Tensor  # [K] float64
    histogram_high: torch.Tensor  # [K] float64
    histogram_counts: torch.Tensor  # [K, bins] int64
    band_names: tuple[str, ...]
    band_ranks: torch.Tensor  # [K, bands, 2] int64: [start, stop)
    band_range: torch.Tensor  # [K, bands, 2] float64: low, high (NaN: an empty band)
    band_images: torch.Tensor  # [K, bands, per_band] int64, highest activation first
    band_activations: torch.Tensor  # [K, bands, per_band] float32
    #: By layer name: (units [K, n], r [K, n]) of each unit's most correlated units there.
    similar: dict[str, tuple[torch.Tensor, torch.Tensor]]

    @property
    def n_units(self) -> int:
        """Return the number of units of the layer."""
        return int(self.constant.numel())

    def histogram(self, unit: int) -> Histogram:
        """Return one unit's histogram."""
        return Histogram(float(self.histogram_low[unit]), float(self.histogram_high[unit]), self.histogram_counts[unit])

    def bands(self, unit: int) -> list[tuple[Band, list[float]]]:
        """Return one unit's quantile bands, each with the activations of its sampled images."""
        bands = []
        for index, name in enumerate(self.band_names):
            start, stop = (int(value) for value in self.band_ranks[unit, index])
            low, high = (None if math.isnan(value) else value for value in self.band_range[unit, index].tolist())
            kept = self.band_images[unit, index] >= 0
            images = self.band_images[unit, index][kept]
            band = Band(name, start, stop, low, high, images)
            bands.append((band, self.band_activations[unit, index][kept].tolist()))
        return bands

    def nbytes(self) -> int:
        """Return roughly the bytes held."""
        tensors = [
            self.constant,
            self.histogram_low,
            self.histogram_high,
            self.histogram_counts,
            self.band_ranks,
            self.band_range,
            self.band_images,
            self.band_activations,
            *(table for pair in self.similar.values() for table in pair),
        ]
        return sum(tensor.numel() * tensor.element_size() for tensor in tensors)


def build_layer_tables(
    parameters: TableParameters, layer: str, own: CorrelationSketch, layers: dict[str, CorrelationSketch]
) -> LayerTables:
    """Return the tables of `layer` (its sketch `own`) against the run's layers over the same images (`layers`, by
    name, its own among them), as the neuron page shows them."""
    standardised = own.layer
    seeds = [distribution_seed(parameters.run_id, layer, unit) for unit in range(standardised.n_units)]
    evidence = layer_evidence(standardised, parameters.n_bins, parameters.per_band, seeds)
    names = tuple(band.name for band in evidence.bands[0]) if evidence.bands else ()
    n_units, n_bands = standardised.n_units, len(names)
    ranks = torch.zeros(n_units, n_bands, 2, dtype=torch.int64)
    ranges = torch.full((n_units, n_bands, 2), math.nan, dtype=torch.float64)
    images = torch.full((n_units, n_bands, parameters.per_band), -1, dtype=torch.int64)
    activations = torch.full((n_units, n_bands, parameters.per_band), math.nan, dtype=torch.float32)
    for unit, bands in enumerate(evidence.bands):
        values = standardised.unit_activations(unit)
        for index, band in enumerate(bands):
            ranks[unit, index] = torch.tensor([band.start, band.stop])
            ranges[unit, index] = torch.tensor([math.nan if v is None else v for v in (band.low, band.high)])
            count = band.images.numel()
            images[unit, index, :count] = band.images
            activations[unit, index, :count] = values[band.images]
    return LayerTables(
        parameters=parameters,
        n_images=standardised.n_images,
        constant=standardised.constant.clone(),
        histogram_low=torch.tensor([h.low for h in evidence.histograms], dtype=torch.float64),
        histogram_high=torch.tensor([h.high for h in evidence.histograms], dtype=torch.float64),
        histogram_counts=(
            torch.stack([h.counts for h in evidence.histograms])
            if evidence.histograms
            else torch.zeros(0, parameters.n_bins, dtype=torch.int64)
        ),
        band_names=names,
        band_ranks=ranks,
        band_range=ranges,
        band_images=images,
        band_activations=activations,
        similar=most_correlated_tables(own, layers, parameters.n_similar, own_name=layer),
    )


def save_layer_tables(layout: ArtifactsLayout, layer: str, tables: LayerTables) -> Path:
    """Write a layer's tables into the run's folder (whole or not at all: a reader never sees half a file)."""
    path = layout.distribution_tables(layer)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".partial-{os.getpid()}-{path.name}")
    fields = {name: getattr(tables, name) for name in _TENSOR_FIELDS}
    parameters = tables.parameters
    torch.save(
        {
            "format": TABLES_FORMAT,
            "parameters": [parameters.run_id, parameters.n_bins, parameters.per_band, parameters.n_similar],
            "n_images": tables.n_images,
            "band_names": list(tables.band_names),
            "similar_layers": list(tables.similar),
            "similar_units": [units for units, _ in tables.similar.values()],
            "similar_r": [r for _, r in tables.similar.values()],
            **fields,
        },
        partial,
    )
    partial.replace(path)
    return path


def load_layer_tables(layout: ArtifactsLayout, layer: str, parameters: TableParameters) -> LayerTables | None:
    """Return a layer's stored tables, or None when none were stored for these parameters (build them then)."""
    path = layout.distribution_tables(layer)
    if not path.is_file():
        return None
    try:
        stored = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # truncated or overwritten: the tables are built again from the activations, as for none
        return None
    if not isinstance(stored, dict) or stored.get("format") != TABLES_FORMAT:
        return None
    if stored["parameters"] != [parameters.run_id, parameters.n_bins, parameters.per_band, parameters.n_similar]:
        return None
    return LayerTables(
        parameters=parameters,
        n_images=int(stored["n_images"]),
        band_names=tuple(stored["band_names"]),
        similar={
            name: (units, r)
            for name, units, r in zip(
                stored["similar_layers"], stored["similar_units"], stored["similar_r"], strict=True
            )
        },
        **{name: stored[name] for name in _TENSOR_FIELDS},
    )


_TENSOR_FIELDS = (
    "constant",
    "histogram_low",
    "histogram_high",
    "histogram_counts",
    "band_ranks",
    "band_range",
    "band_images",
    "band_activations",
)
