"""Connections between two dissected layers, and each unit's strongest links through them.

A connection matrix is [K_to, K_from], signed: row i holds what each upstream unit contributes to downstream unit
i. `kind` says how it was found: "weight" (read from the one linear or convolutional module joining the layers) or
"attribution" (upstream map × gradient of the downstream unit's pooled activation, averaged over sampled images).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from torch import Tensor

from dissect_core.errors import DissectError
from dissect_core.topk import stable_topk_positions

ConnectionKind = Literal["weight", "attribution"]
#: How many inputs and outputs each unit keeps (both signs, by magnitude).
STRONGEST_LINKS = 20


@dataclass
class LayerConnections:
    """How the units of `from_layer` feed those of `to_layer`.

    `weights` [K_to, K_from] float32, signed. `n_images`: the probe images an attribution averaged over (None for
    weights). `folded_affine`: a per-channel affine map (BatchNorm) between was folded into the weights. `note`: one
    line saying how the matrix was computed.
    """

    from_layer: str
    to_layer: str
    kind: ConnectionKind
    weights: Tensor
    n_images: int | None
    folded_affine: bool
    note: str


@dataclass(frozen=True)
class Links:
    """Each row unit's strongest links: `units` [rows, k] the linked units, `weights` [rows, k] their signed weights,
    largest magnitude first (the lower unit index on ties)."""

    units: Tensor
    weights: Tensor

    def of(self, row: int) -> list[tuple[int, float]]:
        """Return one row unit's links as (linked unit, signed weight), strongest first."""
        return list(zip(self.units[row].tolist(), self.weights[row].tolist(), strict=True))


def _strongest(weights: Tensor, k: int) -> Links:
    """Return each row's k largest-magnitude entries of `weights` [rows, columns]."""
    k = min(k, weights.shape[1])
    positions = stable_topk_positions(weights.abs().float(), k)
    return Links(units=positions, weights=weights.float().gather(1, positions))


def strongest_links(weights: Tensor, k: int = STRONGEST_LINKS) -> tuple[Links, Links]:
    """Return (inputs, outputs) of a connection matrix [K_to, K_from]: each downstream unit's k strongest upstream
    units, and each upstream unit's k strongest downstream units, by |weight|, ties to the lower unit index."""
    if weights.dim() != 2:
        raise DissectError(
            f"connection weights must be [K_to, K_from], got shape {tuple(weights.shape)}; pass one layer pair's"
        )
    if k < 1:
        raise DissectError(f"k={k} links per unit is too few; ask for at least 1")
    return _strongest(weights, k), _strongest(weights.T, k)
