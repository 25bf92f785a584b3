"""What an intervention reads from each forward pass (the logits, the downstream layers' pooled activations) and
how a reading is compared with a baseline recorded at another precision."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from dissect_core.activations import pooled_activations
from dissect_core.errors import DissectError
from dissect_core.interventions.hooks import first_tensor
from dissect_core.models.targets import get_layer
from dissect_core.names import POOLING
from dissect_core.wiring.output_recorder import logits_of

_LOW_PRECISION = (torch.float16, torch.bfloat16)


def batch_logits(output: object) -> Tensor:
    """Return a forward's logits [B, C] as float32 on the CPU, or raise when the model gives no [B, C] output."""
    logits = logits_of(output)
    if logits is None:
        raise DissectError(
            "the model's output is not [batch, classes] logits, so there is nothing to compare; "
            "intervene on a classifier, or dissect a model whose forward returns one tensor of class scores"
        )
    return logits.cpu()


def comparable(baseline: Tensor, reading: Tensor) -> tuple[Tensor, Tensor]:
    """Return (baseline, reading) as float64 after rounding both to the lower of their precisions.

    Stored baselines are float16: rounding the fresh float32 reading the same way makes a no-op intervention
    give exactly zero change (when its forward equals the recorded one), instead of float16 noise of up to
    |value| / 2048 per entry.
    """
    for dtype in _LOW_PRECISION:
        if dtype in (baseline.dtype, reading.dtype):
            return baseline.to(dtype).double(), reading.to(dtype).double()
    return baseline.double(), reading.double()


def rows_at(values: Tensor, positions: Sequence[int], what: str) -> Tensor:
    """Return the rows of a per-probe-image tensor at `positions`, or raise when it has too few rows."""
    if positions and max(positions) >= values.shape[0]:
        raise DissectError(
            f"{what} has {values.shape[0]} rows but image {max(positions)} was run; pass one row per probe image"
        )
    return values[torch.as_tensor(list(positions), dtype=torch.long)]


class PooledRecorder:
    """Forward hooks keeping the last forward's pooled activations [B, K] of each named layer, pooled exactly as
    the probe pass pools them (`dissect_core.activations.pooled_activations`)."""

    def __init__(self, model: nn.Module, layer_names: Sequence[str], pool: str) -> None:
        if pool not in POOLING:
            raise DissectError(f"unknown pooling {pool!r}; use one of {', '.join(POOLING)} (the run's pooling)")
        self.layers = {name: get_layer(model, name) for name in layer_names}
        self.pool = pool
        self.last: dict[str, Tensor] = {}
        self._handles: list[torch.utils.hooks.RemovableHandle] = []

    def _hook(self, name: str) -> Callable:
        def hook(_module: nn.Module, _inputs: object, output: object) -> None:
            self.last[name] = pooled_activations(first_tensor(output, name).detach().float(), self.pool).cpu()

        return hook

    def take(self) -> dict[str, Tensor]:
        """Return the last forward's pooled activations per layer, and forget them."""
        missing = [name for name in self.layers if name not in self.last]
        if missing:
            raise DissectError(f"layer {missing[0]} did not run in the forward pass; pick layers the model uses")
        taken, self.last = self.last, {}
        return taken

    def __enter__(self) -> PooledRecorder:
        self._handles = [layer.register_forward_hook(self._hook(name)) for name, layer in self.layers.items()]
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
