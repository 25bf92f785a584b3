"""The units one probe image drives most in a layer: by raw activation, and by how unusual it is for each unit.

`UnitStandardiser` holds a layer's pooled activations and each unit's mean and spread over the probe set, computed
once; ranking one image is then a column read, a z-score, two top-k's over the units and 2k percentiles.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

#: A unit whose activations vary less than this over the probe set is called constant: its z-scores are 0.
MIN_SPREAD = 1e-6


@dataclass(frozen=True)
class RankedUnits:
    """Units of a layer in rank order, with this image's activation, percentile (0–100) and z-score on each."""

    units: torch.Tensor
    activations: torch.Tensor
    percentiles: torch.Tensor
    z_scores: torch.Tensor


class UnitStandardiser:
    """A layer's activations with per-unit mean and spread, for ranking the units of one image at a time.

    They are kept units-major ([units, images], half precision as stored): a unit's activations over the probe set
    are then one contiguous row, which makes percentiles cheap; a 4,000-unit layer over 10,000 images takes 80 MB.
    """

    def __init__(self, activations: torch.Tensor) -> None:
        if activations.ndim != 2 or activations.shape[0] < 1 or activations.shape[1] < 1:
            raise ValueError(f"activations must be [images, units] with both at least 1, got {list(activations.shape)}")
        self._set_rows(activations.to(torch.float16).T.contiguous())

    @classmethod
    def from_rows(cls, by_unit: torch.Tensor) -> UnitStandardiser:
        """Return a standardiser over activations already kept as rows [units, images] (used as they are)."""
        if by_unit.ndim != 2 or by_unit.shape[0] < 1 or by_unit.shape[1] < 1:
            raise ValueError(f"rows must be [units, images] with both at least 1, got {list(by_unit.shape)}")
        standardiser = cls.__new__(cls)
        standardiser._set_rows(by_unit)
        return standardiser

    def _set_rows(self, by_unit: torch.Tensor) -> None:
        mean = torch.zeros(by_unit.shape[0])
        spread = torch.zeros(by_unit.shape[0])
        for first in range(0, by_unit.shape[0], 256):  # a few units at a time: no float32 copy of the whole layer
            rows = by_unit[first : first + 256].float()
            mean[first : first + 256] = rows.mean(dim=1)
            spread[first : first + 256] = rows.std(dim=1, unbiased=False)
        self.mean = mean
        self.constant = spread < MIN_SPREAD
        self.spread = torch.where(self.constant, torch.ones_like(spread), spread)
        self.by_unit = by_unit

    @property
    def n_images(self) -> int:
        """The number of probe images the activations cover."""
        return int(self.by_unit.shape[1])

    @property
    def n_units(self) -> int:
        """The number of units of the layer."""
        return int(self.by_unit.shape[0])

    def nbytes(self) -> int:
        """Return roughly how many bytes the standardiser holds."""
        return self.by_unit.numel() * self.by_unit.element_size() + 3 * 4 * self.n_units

    def activations(self, image: int) -> torch.Tensor:
        """Return the image's activation of every unit (float32)."""
        return self.by_unit[:, image].float()

    def z_scores(self, activations: torch.Tensor) -> torch.Tensor:
        """Return the z-score of an image's activations on every unit (0 on constant units)."""
        return torch.where(self.constant, torch.zeros_like(activations), (activations - self.mean) / self.spread)

    def percentiles(self, image: int, units: torch.Tensor) -> torch.Tensor:
        """Return the share (0–100) of probe images each unit fires on less than on this image (ties count half)."""
        rows = self.by_unit.index_select(0, units).float()
        values = rows[:, image : image + 1]
        below = (rows < values).sum(dim=1).float()
        ties = (rows == values).sum(dim=1).float()
        return 100.0 * (below + 0.5 * ties) / self.n_images

    def rank(self, image: int, k: int) -> tuple[RankedUnits, RankedUnits]:
        """Return the k units this image activates most, and the k it is most unusual for (highest z-score)."""
        activations = self.activations(image)
        z_scores = self.z_scores(activations)
        k = min(k, self.n_units)
        loudest = torch.topk(activations, k, sorted=True).indices
        most_unusual = torch.topk(z_scores, k, sorted=True).indices
        return (
            self._ranked(image, loudest, activations, z_scores),
            self._ranked(image, most_unusual, activations, z_scores),
        )

    def _ranked(
        self, image: int, units: torch.Tensor, activations: torch.Tensor, z_scores: torch.Tensor
    ) -> RankedUnits:
        return RankedUnits(
            units=units,
            activations=activations.index_select(0, units),
            percentiles=self.percentiles(image, units),
            z_scores=z_scores.index_select(0, units),
        )
