"""The units most correlated with a unit (Pearson r over the probe images), in its own layer or another.

Pure tensor maths (no I/O). Each layer's units are searched over a fixed sample of the images (the sketch: every
unit centred and scaled to unit norm there, so one product gives every r), then the best candidates are ranked by
their exact r over every image. Ranks are stable: the higher r first and, on equal r, the lower unit index.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from dissect_core.analysis.standardise import LayerStandardiser, unit_norm_rows
from dissect_core.topk import stable_topk, stable_topk_positions

#: Correlations are searched over at most this many probe images (a fixed sample), then computed exactly.
SKETCH_IMAGES = 4096
#: Units of a layer whose tables are filled at once.
_CHUNK_UNITS = 128


@dataclass(frozen=True)
class CorrelationSketch:
    """A layer's standardiser with `z` [K, S]: each unit centred and scaled to unit norm over a fixed sample of S
    images (all of them when N <= SKETCH_IMAGES), so that `z[k] · z[j]` is the Pearson r of units k and j over the
    sample. Constant units (by the standardiser's rule) have no r with anything."""

    layer: LayerStandardiser
    z: torch.Tensor  # [K, S] float32

    @property
    def exact(self) -> bool:
        """Return whether the sample is every image, so that the sketch's r are the exact ones."""
        return self.z.shape[1] == self.layer.n_images

    def nbytes(self) -> int:
        """Return the bytes the standardiser and the sketch hold."""
        return self.layer.nbytes() + self.z.numel() * self.z.element_size()


def sketch_sample(n_images: int, size: int = SKETCH_IMAGES) -> torch.Tensor:
    """Return the image indices correlations are searched over: all of them, or a fixed random `size` of them."""
    if n_images <= size:
        return torch.arange(n_images)
    return torch.randperm(n_images, generator=torch.Generator().manual_seed(0))[:size].sort().values


def correlation_sketch(layer: LayerStandardiser, sketch_images: int = SKETCH_IMAGES) -> CorrelationSketch:
    """Return the layer's sketch over `sketch_sample`, a block of units at a time."""
    sample = sketch_sample(layer.n_images, sketch_images)
    every_image = sample.numel() == layer.n_images
    z = torch.zeros(layer.n_units, sample.numel(), dtype=torch.float32)
    for first in range(0, layer.n_units, _CHUNK_UNITS):
        rows = layer.rows[first : first + _CHUNK_UNITS]
        z[first : first + _CHUNK_UNITS] = unit_norm_rows(rows if every_image else rows[:, sample])
    # A unit constant over every image is constant over the sample too: its row is already zeros.
    return CorrelationSketch(layer, z)


def centred_unit(unit_values: torch.Tensor) -> torch.Tensor:
    """Return one unit's activations [N] centred and scaled to unit norm (float32; zeros when constant)."""
    return unit_norm_rows(unit_values.reshape(1, -1))[0]


def most_correlated(
    own: torch.Tensor,
    column: torch.Tensor,
    sketch: CorrelationSketch,
    k: int,
    exclude: int | None = None,
    candidates: int = 2,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the (units, r) of the k units of `sketch`'s layer whose Pearson r with a unit is highest, r
    descending and the lower unit first on equal r; constant units and `exclude` are left out.

    `column` is the unit's sketch row [S]: the `candidates` × k best units over the sketch sample are ranked by
    their exact r over every image with `own`, the unit's `centred_unit` activations [N]."""
    layer = sketch.layer
    scores = torch.mv(sketch.z, column).clamp_(-1.0, 1.0).masked_fill_(layer.constant, -math.inf)
    available = layer.n_units - int(layer.constant.sum())
    if exclude is not None and not bool(layer.constant[exclude]):
        scores[exclude] = -math.inf
        available -= 1
    n_short = min(candidates * k, available)
    if n_short <= 0 or k <= 0:
        return torch.zeros(0, dtype=torch.int64), torch.zeros(0, dtype=torch.float32)
    if sketch.exact:
        r, units = stable_topk(scores.unsqueeze(0), min(k, available))
        return units[0], r[0]
    shortlist = stable_topk_positions(scores.unsqueeze(0), n_short)[0]
    # `own` sums to zero, so each row's dot with it is the dot of the row minus its mean: no centring pass.
    dots = torch.mv(layer.rows[shortlist].float(), own)
    exact = (dots / layer.centred_norms()[shortlist]).clamp(-1.0, 1.0)
    r, units = stable_topk(exact.unsqueeze(0), min(k, n_short), indices=shortlist)
    return units[0], r[0]


def most_correlated_all(
    own: CorrelationSketch, other: CorrelationSketch, k: int, same_layer: bool, candidates: int = 2
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return for every unit of `own` the (units [K, k], r [K, k]) of the k units of `other` most correlated with
    it, as `most_correlated` ranks them one unit at a time (rows padded with -1 units and NaN r where fewer
    exist; a constant unit's row is all padding). `same_layer` leaves each unit itself out."""
    name = "own" if same_layer else "other"
    return most_correlated_tables(own, {name: other}, k, own_name="own", candidates=candidates)[name]


def most_correlated_tables(
    own: CorrelationSketch, layers: dict[str, CorrelationSketch], k: int, own_name: str, candidates: int = 2
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Return `most_correlated_all`'s table of `own` against each of `layers` (the one named `own_name` is `own`'s
    own layer: each unit itself is left out), centring each block of `own`'s units once for all of them."""
    n_own = own.layer.n_units
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
            if other.layer.n_units == 0:
                continue
            scores = (own.z[rows] @ other.z.T).clamp_(-1.0, 1.0)  # [c, K other]
            scores.masked_fill_(other.layer.constant.unsqueeze(0), -math.inf)
            available = torch.full((rows.numel(),), other.layer.n_units - int(other.layer.constant.sum()))
            if name == own_name:
                scores[torch.arange(rows.numel()), rows] = -math.inf
                available -= (~other.layer.constant[rows]).long()
            if centred is None and not other.exact:
                centred = unit_norm_rows(own.layer.rows[rows])
            units, r = tables[name]
            _rank_block(own, other, rows, scores, available, k, candidates, None if other.exact else centred, units, r)
    return tables


def _rank_block(
    own: CorrelationSketch,
    other: CorrelationSketch,
    rows: torch.Tensor,
    scores: torch.Tensor,
    available: torch.Tensor,
    k: int,
    candidates: int,
    centred: torch.Tensor | None,
    units: torch.Tensor,
    r: torch.Tensor,
) -> None:
    """Fill `units`/`r` for a block of units from their sketch `scores` [b, K other]: their shortlists, ranked by
    exact r over every image (with `centred`, the block's centred unit-norm activations; without, the sketch
    covers every image)."""
    n_short = min(candidates * k, int(available.max()))
    if n_short <= 0:
        return
    if centred is None:
        values, shortlist = stable_topk(scores, min(k, n_short))
    else:
        shortlist = stable_topk_positions(scores, n_short)  # [b, n_short]
        # Correlated units share candidates: one product with the block's distinct candidates reads each of their
        # rows once, instead of gathering [b, n_short, N] (12 GB of traffic over a 2,048-unit, 50,000-image layer).
        distinct, position = torch.unique(shortlist, return_inverse=True)
        dots = (centred @ other.layer.rows[distinct].float().T).gather(1, position)
        values = (dots / other.layer.centred_norms()[shortlist]).clamp(-1.0, 1.0)
    # Rank every row at once: past a row's own number of available units the shortlist holds no real candidate.
    usable = torch.arange(values.shape[1]).unsqueeze(0) < available.clamp(max=values.shape[1]).unsqueeze(1)
    values = values.masked_fill(~usable, -math.inf)
    order = stable_topk_positions(values, min(k, values.shape[1]), indices=shortlist)
    best_r, best_units = values.gather(1, order), shortlist.gather(1, order)
    keep = torch.isfinite(best_r) & ~own.layer.constant[rows].unsqueeze(1)
    width = order.shape[1]
    units[rows, :width] = torch.where(keep, best_units, -1)
    r[rows, :width] = torch.where(keep, best_r, math.nan)
