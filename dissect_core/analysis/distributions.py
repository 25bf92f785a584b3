"""A neuron's activations over the probe set, as numbers: histogram bins and quantile bands (its most correlated
units are in `similar_units`). Pure tensor maths (no I/O): the readers in app/read/neurons/distributions.py feed it
stored activations."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy
import torch

from dissect_core.analysis.standardise import LayerStandardiser

#: The quantile bands shown, by rank from the top: (name, first share, end share) of the images sorted by activation.
BANDS: tuple[tuple[str, float, float], ...] = (
    ("top 1%", 0.0, 0.01),
    ("1–5%", 0.01, 0.05),
    ("5–20%", 0.05, 0.20),
    ("20–50%", 0.20, 0.50),
)
RANDOM_BAND = "random sample"


@dataclass(frozen=True)
class Histogram:
    """Equal-width bins from `low` to `high`: counts[i] images have activations in [edges[i], edges[i + 1])."""

    low: float
    high: float
    counts: torch.Tensor  # [n_bins] int64; the last bin includes `high`

    @property
    def edges(self) -> torch.Tensor:
        """Return the n_bins + 1 bin edges."""
        return torch.linspace(self.low, self.high, self.counts.numel() + 1, dtype=torch.float64)


@dataclass(frozen=True)
class Band:
    """One quantile band: ranks [start, stop) of the images sorted by activation (0 the highest), its activation
    range and the sampled image indices, highest activation first."""

    name: str
    start: int
    stop: int
    low: float | None
    high: float | None
    images: torch.Tensor  # [k] int64 image indices

    @property
    def size(self) -> int:
        """Return how many images fall in the band."""
        return self.stop - self.start


def bin_counts(values: torch.Tensor, n_bins: int, low: float, high: float) -> torch.Tensor:
    """Return how many values [N] fall in each of `n_bins` equal bins over [low, high] (int64 [n_bins]): lower
    edges inclusive, the last bin holds `high`, values outside the range count in the end bins, non-finite ones
    nowhere. Arithmetic is in float64 for float64 values, float32 otherwise."""
    if n_bins < 1 or not high > low:
        raise ValueError(
            f"n_bins must be at least 1 over a non-empty range, got {n_bins} bins over [{low}, {high}]; "
            "ask for more bins or a high above low"
        )
    values = _finite(values if values.dtype == torch.float64 else values.float())
    scaled = ((values - low) / (high - low) * n_bins).floor().clamp(0, n_bins - 1).long()
    return torch.bincount(scaled, minlength=n_bins)


def _finite(values: torch.Tensor) -> torch.Tensor:
    """Return the finite values [N] (the tensor itself when all are: stored activations are)."""
    # When the extremes are finite, every value is (a NaN makes min and max NaN).
    if values.numel() == 0 or (math.isfinite(float(values.min())) and math.isfinite(float(values.max()))):
        return values
    return values[torch.isfinite(values)]


def histogram(values: torch.Tensor, n_bins: int) -> Histogram:
    """Return an equal-width histogram of the finite values [N] over their range; a constant column gets one bin
    around its value."""
    finite = _finite(values.float())
    if finite.numel() == 0:
        return Histogram(0.0, 1.0, bin_counts(finite, n_bins, 0.0, 1.0))
    low, high = float(finite.min()), float(finite.max())
    if high <= low:  # a constant (often dead) neuron: one visible bar centred on its value
        pad = max(abs(low) * 0.05, 0.5)
        low, high = low - pad, high + pad
    return Histogram(low, high, bin_counts(finite, n_bins, low, high))


def band_ranks(n_images: int) -> list[tuple[str, int, int]]:
    """Return each band's (name, start, stop) ranks: [ceil(first share · N), ceil(end share · N)), so bands never
    overlap and a band too thin for N holds no image."""
    # A share like 0.05 · 100 is 5.000000000000001 in floats: round before the ceiling.
    return [
        (name, math.ceil(round(first * n_images, 9)), math.ceil(round(end * n_images, 9))) for name, first, end in BANDS
    ]


def quantile_bands(values: torch.Tensor, per_band: int, seed: int) -> list[Band]:
    """Return the quantile bands and a random sample, `per_band` images each, drawn reproducibly from `seed`
    (images ranked by activation, highest first; equal activations in an order fixed by the values)."""
    n_images = values.numel()
    generator = torch.Generator().manual_seed(seed)
    spans = [*band_ranks(n_images), (RANDOM_BAND, 0, n_images)]
    picked = [
        (torch.randperm(stop - start, generator=generator)[:per_band].sort().values + start).tolist()
        for _, start, stop in spans
    ]
    # Only the sampled ranks and the bands' edges need their images: a partial sort finds them in O(N).
    wanted = sorted({rank for ranks in picked for rank in ranks} | _edge_ranks(spans))
    negated = -values.float().numpy()
    order = numpy.argpartition(negated, wanted) if wanted else numpy.arange(n_images)
    bands = []
    for (name, start, stop), ranks in zip(spans, picked, strict=True):
        low = float(-negated[order[stop - 1]]) if stop > start else None
        high = float(-negated[order[start]]) if stop > start else None
        bands.append(Band(name, start, stop, low, high, torch.as_tensor(order[ranks], dtype=torch.int64)))
    return bands


def _edge_ranks(spans: list[tuple[str, int, int]]) -> set[int]:
    return {rank for _, start, stop in spans if stop > start for rank in (start, stop - 1)}


def distribution_seed(run_id: int, layer: str, unit: int) -> int:
    """Return the band sampling seed of one neuron: the same on every server and call, different per neuron."""
    digest = hashlib.sha256(f"{run_id}\x00{layer}\x00{unit}".encode()).digest()
    return int.from_bytes(digest[:8], "big") & ((1 << 63) - 1)


@dataclass(frozen=True)
class LayerEvidence:
    """Every unit's histogram and quantile bands in one layer, computed once so a page only looks them up."""

    histograms: list[Histogram]
    bands: list[list[Band]]

    def nbytes(self) -> int:
        """Return roughly the bytes held (the bins and the sampled image indices)."""
        per_unit = [h.counts.numel() * 8 + sum(b.images.numel() * 8 + 96 for b in bands) for h, bands in self.each()]
        return sum(per_unit)

    def each(self) -> zip[tuple[Histogram, list[Band]]]:
        """Return (histogram, bands) per unit."""
        return zip(self.histograms, self.bands, strict=True)


def layer_evidence(layer: LayerStandardiser, n_bins: int, per_band: int, seeds: list[int]) -> LayerEvidence:
    """Return every unit's histogram and quantile bands (unit k sampled with seeds[k]), as `histogram` and
    `quantile_bands` give them one unit at a time."""
    histograms, bands = [], []
    for unit, seed in enumerate(seeds):
        values = layer.unit_activations(unit)
        histograms.append(histogram(values, n_bins))
        bands.append(quantile_bands(values, per_band, seed))
    return LayerEvidence(histograms, bands)
