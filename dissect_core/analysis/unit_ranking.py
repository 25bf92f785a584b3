"""The units one probe image drives most in a layer: by raw activation, and by how unusual it is for each unit.

The layer's `LayerStandardiser` holds each unit's mean and spread over the probe set, computed once; ranking one
image is then a column read, a z-score, two top-k's over the units and 2k percentiles. Ranks are stable: the
higher value first and, on equal values, the lower unit index (so a layer's many constant units, all at z = 0,
come in unit order).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dissect_core.analysis.standardise import LayerStandardiser
from dissect_core.topk import stable_topk_positions


@dataclass(frozen=True)
class RankedUnits:
    """Units of a layer in rank order, with this image's activation, percentile (0–100) and z-score on each."""

    units: torch.Tensor
    activations: torch.Tensor
    percentiles: torch.Tensor
    z_scores: torch.Tensor


def percentiles(layer: LayerStandardiser, image: int, units: torch.Tensor) -> torch.Tensor:
    """Return the share (0–100) of probe images each of `units` fires on less than on this image (ties count half)."""
    rows = layer.rows.index_select(0, units).float()
    return _percentiles(rows, rows[:, image : image + 1], layer.n_images)


def _percentiles(rows: torch.Tensor, values: torch.Tensor, n_images: int) -> torch.Tensor:
    """Return the share (0–100) of each row's [K, N] values below its value [K, 1] (ties count half)."""
    below = (rows < values).sum(dim=1).float()
    ties = (rows == values).sum(dim=1).float()
    return 100.0 * (below + 0.5 * ties) / n_images


def rank_units(layer: LayerStandardiser, image: int, k: int) -> tuple[RankedUnits, RankedUnits]:
    """Return the k units (all, in a smaller layer) this image activates most, and the k it is most unusual for
    (highest z-score)."""
    activations = layer.image_activations(image)
    z_scores = layer.z_scores(activations)
    k = min(k, layer.n_units)
    loudest, most_unusual = stable_topk_positions(torch.stack([activations, z_scores]), k)
    return (
        _ranked(layer, image, loudest, activations, z_scores),
        _ranked(layer, image, most_unusual, activations, z_scores),
    )


def rank_activations(layer: LayerStandardiser, activations: torch.Tensor, k: int) -> tuple[RankedUnits, RankedUnits]:
    """Return, for an image outside the probe set (its activations [K]), the k units it activates most and the k it
    is most unusual for, with percentiles and z-scores against the probe images as `rank_units` gives them."""
    activations = activations.float()
    z_scores = layer.z_scores(activations)
    k = min(k, layer.n_units)
    loudest, most_unusual = stable_topk_positions(torch.stack([activations, z_scores]), k)

    def ranked(units: torch.Tensor) -> RankedUnits:
        values = activations.index_select(0, units).unsqueeze(1)
        return RankedUnits(
            units=units,
            activations=values.squeeze(1),
            percentiles=_percentiles(layer.rows.index_select(0, units).float(), values, layer.n_images),
            z_scores=z_scores.index_select(0, units),
        )

    return ranked(loudest), ranked(most_unusual)


def _ranked(
    layer: LayerStandardiser, image: int, units: torch.Tensor, activations: torch.Tensor, z_scores: torch.Tensor
) -> RankedUnits:
    return RankedUnits(
        units=units,
        activations=activations.index_select(0, units),
        percentiles=percentiles(layer, image, units),
        z_scores=z_scores.index_select(0, units),
    )
