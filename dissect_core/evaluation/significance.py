"""Significance of out-of-fold correlations, and the Benjamini–Hochberg decision across a layer."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from dissect_core.names import DEFAULT_FALSE_DISCOVERY_RATE


def correlation_null_sd(n_images: int) -> float:
    """Return the sd of an out-of-fold r under the null, on Fisher's z scale (1/sqrt(n - 3))."""
    return 1.0 / math.sqrt(max(n_images - 3, 1))


def one_sided_p_values(r: Tensor, n_images: int | None = None, null_sd: float | None = None) -> Tensor:
    """Return one-sided p-values P(Z >= z) of correlations `r`, z = atanh(r) / sd, against no association.

    The sd is `null_sd` (on Fisher's z scale, e.g. calibrated by permutations) or else the theoretical
    1/sqrt(n_images - 3) for a prediction fixed independently of the activations it is compared with.
    """
    if null_sd is None:
        if n_images is None:
            raise ValueError("give n_images or null_sd")
        null_sd = correlation_null_sd(n_images)
    clipped = r.double().clamp(-1 + 1e-12, 1 - 1e-12)
    z = torch.atanh(clipped) / null_sd
    return 0.5 * torch.special.erfc(z / math.sqrt(2.0))


def benjamini_hochberg(p_values: Tensor, false_discovery_rate: float = DEFAULT_FALSE_DISCOVERY_RATE) -> Tensor:
    """Return a bool mask of the p-values the Benjamini–Hochberg procedure rejects at the given rate."""
    m = p_values.numel()
    if m == 0:
        return torch.zeros(0, dtype=torch.bool)
    ordered, order = torch.sort(p_values.double())
    thresholds = false_discovery_rate * torch.arange(1, m + 1, dtype=torch.float64) / m
    passing = (ordered <= thresholds).nonzero()
    rejected = torch.zeros(m, dtype=torch.bool)
    if len(passing):
        rejected[order[: int(passing[-1]) + 1]] = True
    return rejected
