"""Attribution between dissected layers not joined by one module's weights, by forward-mode differentiation.

For upstream map u (channels j) and downstream unit k's pooled activation v_k, the attribution is the mean over
sampled images of Σ_space u_j · ∂v_k/∂u_j: the derivative of v_k along u's own channel j. One forward pass carrying
a tangent per upstream channel (the batch repeated once per channel of a block) gives it for every downstream unit
of every downstream layer at once, so the cost grows with the upstream channels, not the downstream units.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.autograd.forward_ad as forward_ad
from torch import Tensor, nn

from dissect_core.activations import pooled_activations

#: Rows (images × channels) one forward pass carries.
ROWS_PER_PASS = 256
#: Channels the cost of an attribution is timed on: a pass's cost grows with its rows, so a small block
#: extrapolates, and timing a full block would cost more than a one-image attribution of a narrow layer.
TIMED_CHANNELS = 8


class _Reached(Exception):
    """Stops a forward pass once the last layer it serves has run."""


@dataclass(frozen=True)
class AttributionPlan:
    """What one upstream layer's attribution needs: its layer, the downstream layers it feeds and its channels."""

    upstream: str
    downstream: tuple[str, ...]
    channels: int


def _forward_block(
    model: nn.Module,
    pixels: Tensor,
    plan: AttributionPlan,
    channels: range,
    pool: str,
) -> dict[str, Tensor]:
    """Return, per downstream layer that depends on the upstream one, [units, len(channels)]: each unit's mean
    derivative along each channel. `plan.downstream` must be in the order the forward pass reaches them."""
    n_images = pixels.shape[0]
    tangents: dict[str, Tensor] = {}

    def seed(_module: nn.Module, _inputs: object, output: object) -> Tensor | None:
        if not isinstance(output, Tensor):
            return None  # a layer returning a tuple is left as it is: nothing downstream gets a tangent
        primal = output.detach()
        axis = 1 if primal.dim() == 4 else primal.dim() - 1  # channels of a map, features of a token or vector
        repeated = primal.repeat(len(channels), *([1] * (primal.dim() - 1)))
        tangent = torch.zeros_like(repeated)
        for block_row, channel in enumerate(channels):
            rows = slice(block_row * n_images, (block_row + 1) * n_images)
            tangent[rows].select(axis, channel).copy_(primal.select(axis, channel))
        return forward_ad.make_dual(repeated, tangent)

    def read(name: str) -> Callable[[nn.Module, object, Tensor], None]:
        def hook(_module: nn.Module, _inputs: object, output: Tensor) -> None:
            tangent = forward_ad.unpack_dual(pooled_activations(output, pool)).tangent
            if tangent is not None:
                tangents[name] = tangent.reshape(len(channels), n_images, -1).mean(dim=1).T.float()
            if name == plan.downstream[-1]:
                raise _Reached

        return hook

    handles = [model.get_submodule(plan.upstream).register_forward_hook(seed)]
    handles += [model.get_submodule(name).register_forward_hook(read(name)) for name in plan.downstream]
    try:
        with forward_ad.dual_level(), torch.no_grad():
            model(pixels)
    except _Reached:
        pass
    finally:
        for handle in handles:
            handle.remove()
    return tangents


def attribute(model: nn.Module, pixels: Tensor, plan: AttributionPlan, pool: str) -> dict[str, Tensor]:
    """Return, per downstream layer the upstream one reaches, the attribution [K_to, K_from] over `pixels`."""
    block = max(1, ROWS_PER_PASS // max(1, pixels.shape[0]))
    parts: dict[str, list[Tensor]] = {}
    for start in range(0, plan.channels, block):
        found = _forward_block(model, pixels, plan, range(start, min(start + block, plan.channels)), pool)
        for name, part in found.items():
            parts.setdefault(name, []).append(part)
    return {name: torch.cat(blocks, dim=1) for name, blocks in parts.items()}


def seconds_per_image(model: nn.Module, pixels: Tensor, plan: AttributionPlan, pool: str) -> float:
    """Return the measured seconds one image's attribution for `plan` takes (TIMED_CHANNELS timed on `pixels`)."""
    block = min(plan.channels, TIMED_CHANNELS, max(1, ROWS_PER_PASS // max(1, pixels.shape[0])))
    start = time.perf_counter()
    _forward_block(model, pixels, plan, range(block), pool)
    return (time.perf_counter() - start) / pixels.shape[0] * plan.channels / block
