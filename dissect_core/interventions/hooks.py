"""The forward hook that applies an intervention at a dissected module's output, and the mean maps `mean` needs.

A unit is what `dissect_core.activations` dissects: a channel (dim 1) of a conv map [B, C, H, W] or a linear
output [B, C], a feature (the last dim) of a transformer block's [B, T, C]. Its "map" is the rest of one image's
output: [H, W] for a conv, nothing for a linear layer, [T] for a block (the intervention acts on every token,
not only the CLS token the activations are read from, so the unit is changed wherever it feeds the next block).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from dissect_core.errors import DissectError
from dissect_core.interventions.batches import ImageBatch, model_device, stop_checker
from dissect_core.interventions.modes import InterventionSpec, checked_factor
from dissect_core.models.targets import get_layer


def unit_dim(output: Tensor) -> int:
    """Return the dimension of a layer output that holds its units (1 for conv and linear, 2 for [B, T, C])."""
    if output.dim() in (2, 4):
        return 1
    if output.dim() == 3:
        return 2
    raise DissectError(
        f"cannot intervene on a layer whose output has shape {tuple(output.shape)}; pick a conv, linear or "
        "transformer-block layer"
    )


def first_tensor(output: object, layer: str) -> Tensor:
    """Return a module's output tensor (the first of a tuple), or raise naming the layer."""
    value = output[0] if isinstance(output, tuple | list) and output else output
    if not isinstance(value, Tensor):
        raise DissectError(f"layer {layer} returns {type(value).__name__}, not a tensor; pick another layer")
    return value


def _unit_mask(output: Tensor, units: tuple[int, ...], layer: str) -> tuple[Tensor, int]:
    """Return a bool mask broadcastable to `output` that is True on the units' entries, and the unit dim."""
    dim = unit_dim(output)
    n_units = output.shape[dim]
    outside = [unit for unit in units if not 0 <= unit < n_units]
    if outside:
        raise DissectError(
            f"unit {outside[0]} is out of range for layer {layer} ({n_units} units); use units 0..{n_units - 1}"
        )
    mask = torch.zeros(n_units, dtype=torch.bool, device=output.device)
    mask[list(units)] = True
    shape = [1] * output.dim()
    shape[dim] = n_units
    return mask.view(shape), dim


def _mean_values(output: Tensor, dim: int, units: tuple[int, ...], unit_means: Tensor, layer: str) -> Tensor:
    """Return a tensor broadcastable to `output` holding each unit's mean map at its entries (zero elsewhere)."""
    map_shape = tuple(output.shape[2:]) if dim == 1 else (output.shape[1],)
    means = unit_means.to(device=output.device, dtype=output.dtype)
    if means.shape[:1] != (len(units),) or (means.dim() > 1 and tuple(means.shape[1:]) != map_shape):
        raise DissectError(
            f"mean maps of shape {tuple(unit_means.shape)} do not fit layer {layer}: it needs [{len(units)}] or "
            f"[{len(units)}, {', '.join(map(str, map_shape))}]; compute them with unit_mean_maps for these units"
        )
    if means.dim() == 1:  # one value per unit, spread over its whole map
        means = means.view(len(units), *([1] * len(map_shape)))
    means = means.expand(len(units), *map_shape)
    index = list(units)
    if dim == 1:
        values = output.new_zeros(1, output.shape[1], *map_shape)
        values[0, index] = means
    else:
        values = output.new_zeros(1, output.shape[1], output.shape[2])
        values[0, :, index] = means.T
    return values


def intervention_hook(spec: InterventionSpec, unit_means: Tensor | None = None) -> Callable:
    """Return a forward hook that returns the module's output with `spec` applied to its units (a new tensor:
    the original output, which autograd or other hooks may hold, is never written to)."""
    factor = checked_factor(spec.mode, spec.factor)  # the spec may not have been through check_spec
    if not spec.units:
        raise DissectError(f"the intervention on layer {spec.layer} names no unit; give at least one")
    if spec.mode == "mean" and unit_means is None:
        raise DissectError("mode 'mean' needs each unit's mean map; compute them with unit_mean_maps and pass them")

    def hook(_module: nn.Module, _inputs: object, output: object) -> object:
        value = first_tensor(output, spec.layer)
        mask, dim = _unit_mask(value, spec.units, spec.layer)
        if spec.mode == "zero":
            changed = torch.where(mask, torch.zeros((), dtype=value.dtype, device=value.device), value)
        elif factor is not None:  # scale
            changed = torch.where(mask, value * factor, value)
        else:
            assert unit_means is not None  # refused above
            changed = torch.where(mask, _mean_values(value, dim, spec.units, unit_means, spec.layer), value)
        if isinstance(output, tuple | list):
            return type(output)([changed, *output[1:]])
        return changed

    return hook


@contextmanager
def intervened(
    model: nn.Module, module: nn.Module, spec: InterventionSpec, unit_means: Tensor | None = None
) -> Iterator[None]:
    """Within the block, every forward of `model` has `spec` applied at `module`'s output; the hook is removed on
    leaving, on an exception too. `unit_means` [U] or [U, *map] (spec.units order) are needed for mode `mean`."""
    if not any(candidate is module for candidate in model.modules()):
        raise DissectError(
            f"the module given for layer {spec.layer} is not part of the model; pass get_layer(model, spec.layer)"
        )
    # Prepended, so hooks that read the module's output (recorders of downstream layers) see the changed output.
    handle = module.register_forward_hook(intervention_hook(spec, unit_means), prepend=True)
    try:
        yield
    finally:
        handle.remove()


class _StopForward(Exception):
    """Ends a forward pass once the hooked layer has been read: nothing after it is needed."""


@torch.inference_mode()
def unit_mean_maps(
    model: nn.Module,
    module_name: str,
    images: Iterable[ImageBatch],
    units: Iterable[int] | None = None,
    *,
    device: torch.device | str | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Tensor:
    """Return each unit's mean map over the images, float32 [U, *map] (`units` order; every unit when None).

    One batched pass that stops each forward at the layer. Feed it the probe set's batches (`probe_batches`), so
    `mean` sets a unit to what it does on average over the probe set.
    """
    module = get_layer(model, module_name)
    here = model_device(model, device)
    chosen = None if units is None else list(units)
    total: list[Tensor] = []  # the running sum, set by the first batch
    count = 0
    check_stop = stop_checker(should_stop)

    def hook(_module: nn.Module, _inputs: object, output: object) -> None:
        value = first_tensor(output, module_name).float()
        dim = unit_dim(value)
        index = list(range(value.shape[dim])) if chosen is None else chosen
        if index and max(index) >= value.shape[dim]:
            raise DissectError(f"layer {module_name} has {value.shape[dim]} units; ask for units below that")
        summed = value.index_select(dim, torch.as_tensor(index, device=value.device)).sum(0)
        summed = summed if dim == 1 else summed.T  # [U, *map]
        if total:
            total[0] += summed
        else:
            total.append(summed)
        raise _StopForward

    handle = module.register_forward_hook(hook)
    try:
        for positions, pixels in images:
            check_stop()
            try:
                model(pixels.to(here))
            except _StopForward:
                count += len(positions)
    finally:
        handle.remove()
    if not total:
        raise DissectError(f"no image reached layer {module_name}; give at least one readable probe image")
    return (total[0] / count).cpu()
