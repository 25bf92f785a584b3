"""A layer's activations standardised per unit: each unit's mean and spread over the probe images, and the one
rule for a constant unit that the image view's z-scores and the neuron page's correlations both follow.

A unit's mean and spread are computed in float32 from the stored values (float16 on disk), the unit-norm rows that
give Pearson r in float64; the constant rule's tolerance is relative, so it absorbs their rounding at any magnitude.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

#: A unit is constant when its standard deviation over the images is at most this share of its root mean square
#: activation, sqrt(mean² + std²): a dead (all-zero) unit always is. Relative, so a unit that fires a little on a
#: few images counts as varying at any scale of activations, and free (no pass over the images beyond the moments).
CONSTANT_TOLERANCE = 1e-6
#: Units standardised at once: bounds the float32 temporaries (256 units x 50,000 images is 51 MB).
_CHUNK_UNITS = 256


def _moments(rows: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Return each row's (mean, population standard deviation, constant) over its columns, in the rows' dtype."""
    std, mean = torch.std_mean(rows, dim=1, correction=0)
    return mean, std, std <= CONSTANT_TOLERANCE * torch.hypot(mean, std)


def unit_norm_rows(rows: Tensor) -> Tensor:
    """Return rows [C, M] centred and scaled to unit norm (float32), so that a row's dot with another is their
    Pearson r over the M columns; a constant row (by `LayerStandardiser`'s rule) becomes zeros."""
    if rows.shape[1] == 0:
        return torch.zeros(rows.shape, dtype=torch.float32)
    rows = rows.double()
    mean, std, constant = _moments(rows)
    norm = torch.where(constant, 1.0, std * math.sqrt(rows.shape[1])).unsqueeze(1)
    centred = (rows - mean.unsqueeze(1)) / norm
    return centred.masked_fill_(constant.unsqueeze(1), 0.0).float()


@dataclass(frozen=True)
class LayerStandardiser:
    """A layer's activations kept as rows [K units, N images] (as stored, shared not copied), with each unit's
    mean and population standard deviation over the N images.

    The one rule for a constant unit: its standard deviation is at most CONSTANT_TOLERANCE of its root mean square
    activation (a dead, all-zero unit always is; every unit of a layer with no images is). A constant unit is
    flagged in `constant`, has z-score 0 on every image, a `std` and centred norm of 0, and no Pearson r with
    anything.
    """

    rows: Tensor  # [K, N] as stored (float16 on disk: exact, and half the bytes of float32)
    mean: Tensor  # [K] float32
    std: Tensor  # [K] float32, 0 on constant units
    constant: Tensor  # [K] bool

    @classmethod
    def from_activations(cls, activations: Tensor, stored_dtype: torch.dtype = torch.float16) -> LayerStandardiser:
        """Return the standardiser of activations [N images, K units], kept as `stored_dtype` rows [K, N]
        (float16 holds stored activations exactly)."""
        if activations.dim() != 2:
            raise ValueError(
                f"activations must be [images, units], got shape {list(activations.shape)}; pass one row per image"
            )
        return cls.from_rows(activations.T.to(stored_dtype).contiguous())

    @classmethod
    def from_rows(cls, rows: Tensor) -> LayerStandardiser:
        """Return the standardiser of activations already kept as rows [K units, N images] (used as they are),
        computed a block of units at a time so that no float32 copy of the whole layer is made."""
        if rows.dim() != 2:
            raise ValueError(f"rows must be [units, images], got shape {list(rows.shape)}; pass one row per unit")
        n_units, n_images = rows.shape
        mean = torch.zeros(n_units)
        std = torch.zeros(n_units)
        constant = torch.ones(n_units, dtype=torch.bool)
        for first in range(0, n_units if n_images else 0, _CHUNK_UNITS):
            block = slice(first, first + _CHUNK_UNITS)
            mean[block], std[block], constant[block] = _moments(rows[block].float())
        return cls(rows=rows, mean=mean, std=std.masked_fill_(constant, 0.0), constant=constant)

    @property
    def n_units(self) -> int:
        """Return the number of units of the layer."""
        return int(self.rows.shape[0])

    @property
    def n_images(self) -> int:
        """Return the number of probe images the activations cover."""
        return int(self.rows.shape[1])

    def unit_activations(self, unit: int) -> Tensor:
        """Return one unit's activations [N] over the images as float32 (exact for float16 stored values)."""
        return self.rows[unit].float()

    def image_activations(self, image: int) -> Tensor:
        """Return one image's activation [K] of every unit as float32."""
        return self.rows[:, image].float()

    def z_scores(self, activations: Tensor) -> Tensor:
        """Return the z-score [K] of one activation [K] per unit: (activation - mean) / std, 0 on constant units."""
        spread = torch.where(self.constant, 1.0, self.std)
        return ((activations.float() - self.mean) / spread).masked_fill_(self.constant, 0.0)

    def centred_norms(self) -> Tensor:
        """Return each unit's centred norm [K] over every image, std x sqrt(N) (float32; 0 on constant units)."""
        return self.std * math.sqrt(self.n_images)

    def nbytes(self) -> int:
        """Return the bytes the rows and per-unit statistics hold."""
        tensors = (self.rows, self.mean, self.std, self.constant)
        return sum(tensor.numel() * tensor.element_size() for tensor in tensors)
