"""A neuron's activations over the probe set, as numbers: histogram bins, quantile bands and its most correlated
units. Pure tensor maths (no I/O): the readers in app/read/neurons/distributions.py feed it stored activations."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy
import torch

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


def histogram(values: torch.Tensor, n_bins: int) -> Histogram:
    """Return an equal-width histogram of the finite values [N]; a constant column gets one bin around its value."""
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1, got {n_bins}")
    values = values.float()
    # Stored activations are finite: when the extremes are, every value is (a NaN makes min and max NaN).
    extremes_finite = values.numel() > 0 and math.isfinite(float(values.min())) and math.isfinite(float(values.max()))
    finite = values if extremes_finite else values[torch.isfinite(values)]
    if finite.numel() == 0:
        return Histogram(0.0, 1.0, torch.zeros(n_bins, dtype=torch.int64))
    low, high = float(finite.min()), float(finite.max())
    if high <= low:  # a constant (often dead) neuron: one visible bar centred on its value
        pad = max(abs(low) * 0.05, 0.5)
        low, high = low - pad, high + pad
    scaled = ((finite - low) / (high - low) * n_bins).floor().long().clamp(0, n_bins - 1)
    return Histogram(low, high, torch.bincount(scaled, minlength=n_bins))


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


#: Correlations are searched over at most this many probe images (a fixed sample), then computed exactly.
SKETCH_IMAGES = 4096
_CHUNK_UNITS = 128


@dataclass(frozen=True)
class Standardised:
    """A layer's activations [N images, K units] kept per unit: `values` [K, N] as stored, each unit's centred norm
    over every image, and `z` [K, S]: each unit centred and scaled to unit norm over a fixed sample of S images
    (all of them when N <= SKETCH_IMAGES), so that `z[k] · z[j]` is the Pearson r of units k and j over the
    sample. A unit that is the same on every image (`varies` False) has r undefined with anything."""

    z: torch.Tensor  # [K, S] float32
    values: torch.Tensor  # [K, N] as stored (float16 on disk: kept so, exact and half the bytes of float32)
    norms: torch.Tensor  # [K] float32: the norm of each unit's activations minus their mean, over every image
    varies: torch.Tensor  # [K] bool

    def activations(self, unit: int) -> torch.Tensor:
        """Return one unit's activations [N] as float32 (exact for float16 stored values)."""
        return self.values[unit].float()

    def nbytes(self) -> int:
        """Return the bytes the tensors hold."""
        tensors = (self.z, self.values, self.norms, self.varies)
        return sum(tensor.numel() * tensor.element_size() for tensor in tensors)


def sketch_sample(n_images: int, size: int = SKETCH_IMAGES) -> torch.Tensor:
    """Return the image indices correlations are searched over: all of them, or a fixed random `size` of them."""
    if n_images <= size:
        return torch.arange(n_images)
    return torch.randperm(n_images, generator=torch.Generator().manual_seed(0))[:size].sort().values


def _unit_rows(rows: torch.Tensor) -> torch.Tensor:
    """Return rows [C, M] centred and scaled to unit norm (float64); a constant row (to float rounding of its
    mean) becomes zeros."""
    rows = rows.double()
    centred = rows - rows.mean(dim=1, keepdim=True)
    norm = centred.norm(dim=1, keepdim=True)
    constant = norm <= 1e-9 * (rows.abs().amax(dim=1, keepdim=True) + 1.0) * math.sqrt(max(1, rows.shape[1]))
    return torch.where(constant, 0.0, centred / torch.where(constant, 1.0, norm))


def centred_unit(unit_values: torch.Tensor) -> torch.Tensor:
    """Return one unit's activations [N] centred and scaled to unit norm (float32; zeros when constant)."""
    return _unit_rows(unit_values.reshape(1, -1))[0].float()


def standardise(
    activations: torch.Tensor, stored_dtype: torch.dtype = torch.float16, sketch_images: int = SKETCH_IMAGES
) -> Standardised:
    """Return a layer's activations [N, K] kept as `stored_dtype` rows [K, N] (float16 holds stored activations
    exactly), with their centred norms and their standardised rows over the sketch sample."""
    return standardise_rows(activations.T.to(stored_dtype).contiguous(), sketch_images)


def standardise_rows(values: torch.Tensor, sketch_images: int = SKETCH_IMAGES) -> Standardised:
    """Return `standardise`'s answer for activations already kept as rows [K units, N images] (shared, not copied),
    a hundred units at a time."""
    n_units, n_images = values.shape
    sample = sketch_sample(n_images, sketch_images)
    z = torch.zeros(n_units, sample.numel(), dtype=torch.float32)
    norms = torch.zeros(n_units, dtype=torch.float32)
    every_image = sample.numel() == n_images
    for first in range(0, n_units if n_images else 0, _CHUNK_UNITS):
        rows = values[first : first + _CHUNK_UNITS].float()
        std = torch.std(rows, dim=1, correction=0)
        norms[first : first + _CHUNK_UNITS] = std * math.sqrt(n_images)
        z[first : first + _CHUNK_UNITS] = _unit_rows(rows if every_image else rows[:, sample]).float()
    # Exactly constant units (dead ones, often) have no r; any other has a positive norm.
    varies = values.amax(dim=1) > values.amin(dim=1) if n_images else torch.zeros(n_units, dtype=torch.bool)
    return Standardised(z, values, torch.where(varies, norms, 0.0), varies)


def most_correlated(
    own: torch.Tensor,
    column: torch.Tensor,
    layer: Standardised,
    k: int,
    exclude: int | None = None,
    candidates: int = 2,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the (units, r) of the k units of `layer` whose Pearson r with a unit is highest, r descending;
    constant units and `exclude` are left out.

    `column` is the unit's standardised sketch row [S]: the `candidates` × k best units over the sketch sample
    are ranked by their exact r over every image with `own`, the unit's `centred_unit` activations [N]."""
    sketch = torch.mv(layer.z, column)
    sketch.masked_fill_(~layer.varies, -math.inf)
    available = int(layer.varies.sum())
    if exclude is not None and bool(layer.varies[exclude]):
        sketch[exclude] = -math.inf
        available -= 1
    n_short = min(candidates * k, available)
    if n_short <= 0 or k <= 0:
        return torch.zeros(0, dtype=torch.int64), torch.zeros(0, dtype=torch.float32)
    if layer.z.shape[1] == layer.values.shape[1]:  # the sample is every image: the sketch's r are exact
        top = torch.topk(sketch, min(k, available))
        order = torch.sort(top.values, descending=True, stable=True).indices
        return top.indices[order], top.values[order].clamp(-1.0, 1.0)
    shortlist = torch.topk(sketch, n_short).indices
    # `own` sums to zero, so each row's dot with it is the dot of the row minus its mean: no centring pass.
    exact = (torch.mv(layer.values[shortlist].float(), own) / layer.norms[shortlist]).clamp(-1.0, 1.0)
    order = torch.sort(exact, descending=True, stable=True).indices[:k]
    return shortlist[order], exact[order]


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


def layer_evidence(layer: Standardised, n_bins: int, per_band: int, seeds: list[int]) -> LayerEvidence:
    """Return every unit's histogram and quantile bands (unit k sampled with seeds[k]), as `histogram` and
    `quantile_bands` give them one unit at a time."""
    histograms, bands = [], []
    for unit, seed in enumerate(seeds):
        values = layer.activations(unit)
        histograms.append(histogram(values, n_bins))
        bands.append(quantile_bands(values, per_band, seed))
    return LayerEvidence(histograms, bands)


def most_correlated_all(
    own: Standardised, other: Standardised, k: int, same_layer: bool, candidates: int = 2
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return for every unit of `own` the (units [K, k], r [K, k]) of the k units of `other` most correlated with
    it, as `most_correlated` ranks them one unit at a time (rows padded with -1 units and NaN r where fewer
    exist; a constant unit's row is all padding). `same_layer` leaves each unit itself out."""
    name = "own" if same_layer else "other"
    return most_correlated_tables(own, {name: other}, k, own_name="own", candidates=candidates)[name]


def most_correlated_tables(
    own: Standardised, layers: dict[str, Standardised], k: int, own_name: str, candidates: int = 2
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Return `most_correlated_all`'s table of `own` against each of `layers` (the one named `own_name` is `own`'s
    own layer: each unit itself is left out), centring each block of `own`'s units once for all of them."""
    n_own = own.values.shape[0]
    tables = {
        name: (torch.full((n_own, k), -1, dtype=torch.int64), torch.full((n_own, k), math.nan, dtype=torch.float32))
        for name in layers
    }
    if k <= 0 or n_own == 0:
        return tables
    for first in range(0, n_own, _CHUNK_UNITS):
        rows = torch.arange(first, min(first + _CHUNK_UNITS, n_own))
        centred: torch.Tensor | None = None  # [c, N]: each unit centred, unit norm; made once, when needed
        for name, other in layers.items():
            if other.values.shape[0] == 0:
                continue
            sketch = own.z[rows] @ other.z.T  # [c, K other]
            sketch.masked_fill_(~other.varies.unsqueeze(0), -math.inf)
            available = torch.full((rows.numel(),), int(other.varies.sum()))
            if name == own_name:
                sketch[torch.arange(rows.numel()), rows] = -math.inf
                available -= other.varies[rows].long()
            exact_sample = other.z.shape[1] == other.values.shape[1]
            if centred is None and not exact_sample:
                centred = _unit_rows(own.values[rows].float()).float()
            units, r = tables[name]
            exact_rows = None if exact_sample else centred
            _rank_block(own, other, rows, sketch, available, k, candidates, exact_rows, units, r)
    return tables


def _rank_block(
    own: Standardised,
    other: Standardised,
    rows: torch.Tensor,
    sketch: torch.Tensor,
    available: torch.Tensor,
    k: int,
    candidates: int,
    centred: torch.Tensor | None,
    units: torch.Tensor,
    r: torch.Tensor,
) -> None:
    """Fill `units`/`r` for a block of units: their shortlists over the sketch, ranked by exact r over every image
    (with `centred`, the block's centred unit-norm activations; without, the sketch covers every image)."""
    n_short = min(candidates * k, int(available.max()))
    if n_short <= 0:
        return
    if centred is None:
        top = torch.topk(sketch, min(k, n_short), dim=1)
        values, shortlist = top.values.clamp(-1.0, 1.0), top.indices
    else:
        shortlist = torch.topk(sketch, n_short, dim=1).indices  # [b, n_short]
        # Correlated units share candidates: one product with the block's distinct candidates reads each of their
        # rows once, instead of gathering [b, n_short, N] (12 GB of traffic over a 2,048-unit, 50,000-image layer).
        distinct, position = torch.unique(shortlist, return_inverse=True)
        dots = (centred @ other.values[distinct].float().T).gather(1, position)
        values = (dots / other.norms[shortlist]).clamp(-1.0, 1.0)
    # Rank every row at once: past a row's own number of available units the shortlist holds no real candidate.
    usable = torch.arange(values.shape[1]).unsqueeze(0) < available.clamp(max=values.shape[1]).unsqueeze(1)
    values = values.masked_fill(~usable, -math.inf)
    order = torch.sort(values, dim=1, descending=True, stable=True).indices[:, :k]
    best_r, best_units = values.gather(1, order), shortlist.gather(1, order)
    keep = torch.isfinite(best_r) & own.varies[rows].unsqueeze(1)
    width = order.shape[1]
    units[rows, :width] = torch.where(keep, best_units, -1)
    r[rows, :width] = torch.where(keep, best_r, math.nan)
