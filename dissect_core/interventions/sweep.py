"""A layer-wide sweep: each unit zeroed in turn over the probe images, and its label–effect agreement.

A sweep of U units costs far less than U interventions: each batch runs up to the layer once, and the layer's
output is copied once per unit of a chunk (each copy with its own unit zeroed), so the rest of the network runs
on [units x batch] rows at once. When a model cannot run so (a skip connection that adds the un-copied batch,
a reshape to the batch size), the sweep falls back to one unit per forward, which is an ordinary intervention.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from dissect_core.errors import DissectError
from dissect_core.interventions.batches import ImageBatch, model_device, stop_checker
from dissect_core.interventions.effects import (
    DEFAULT_AGREEMENT_CLASSES,
    DEFAULT_AGREEMENT_DRAWS,
    DEFAULT_AGREEMENT_SEED,
    LabelEffectAgreement,
    agreement_against,
    label_class_cosines,
    random_class_sets,
)
from dissect_core.interventions.hooks import first_tensor, unit_dim
from dissect_core.interventions.readouts import batch_logits, comparable, rows_at
from dissect_core.models.targets import get_layer
from dissect_core.progress import Progress

#: The most bytes of copied layer output one sweep forward carries (the rest of the network's activations on
#: those rows come on top): 128 MiB keeps a 32-image batch of EfficientNet-Lite0's conv_head at 16 units a forward.
SWEEP_CHUNK_BYTES = 1 << 27


@dataclass(frozen=True)
class UnitSweepResult:
    """One unit's zero ablation in a sweep: its label–effect agreement, the share of images whose top-1 changed,
    and its share of the sweep's seconds (the sweep's wall time over its units)."""

    unit: int
    agreement: LabelEffectAgreement
    predictions_changed: float
    seconds: float


class _StopForward(Exception):
    """Ends the forward that measures the layer's output size."""


def _output_bytes_per_image(model: nn.Module, module: nn.Module, module_name: str, pixels: Tensor) -> int:
    """Return the bytes of the layer's output for one image, by a forward of one image that stops at the layer."""
    sizes: list[int] = []

    def hook(_module: nn.Module, _inputs: object, output: object) -> None:
        value = first_tensor(output, module_name)
        sizes.append(value[0].numel() * value.element_size())
        raise _StopForward

    handle = module.register_forward_hook(hook)
    try:
        model(pixels[:1])
    except _StopForward:
        pass
    finally:
        handle.remove()
    if not sizes:
        raise DissectError(f"layer {module_name} did not run in the forward pass; pick a layer the model uses")
    return sizes[0]


def _copies_hook(units: Sequence[int], module_name: str) -> Callable:
    """Return a forward hook that returns the output copied once per unit [units x B, ...], copy i with units[i]
    set to 0 (unit i's rows are i*B .. (i+1)*B - 1)."""

    def hook(_module: nn.Module, _inputs: object, output: object) -> object:
        value = first_tensor(output, module_name)
        dim = unit_dim(value)
        n_units = value.shape[dim]
        if max(units) >= n_units:
            raise DissectError(f"layer {module_name} has {n_units} units; sweep units below that")
        masks = torch.zeros(len(units), n_units, dtype=torch.bool, device=value.device)
        masks[torch.arange(len(units), device=value.device), torch.as_tensor(list(units), device=value.device)] = True
        shape = [len(units)] + [1] * value.dim()
        shape[dim + 1] = n_units
        zero = torch.zeros((), dtype=value.dtype, device=value.device)
        copies = torch.where(masks.view(shape), zero, value.unsqueeze(0)).flatten(0, 1)
        if isinstance(output, tuple | list):
            return type(output)([copies, *output[1:]])
        return copies

    return hook


def _chunk_logits(
    model: nn.Module, module: nn.Module, module_name: str, units: Sequence[int], pixels: Tensor
) -> Tensor | None:
    """Return the logits [len(units), B, C] with each unit zeroed in its own copy, or None when the model cannot
    run the copies in one forward."""
    handle = module.register_forward_hook(_copies_hook(units, module_name), prepend=True)
    try:
        logits = batch_logits(model(pixels))
    except RuntimeError:
        if len(units) == 1:
            raise
        return None
    finally:
        handle.remove()
    if logits.shape[0] != len(units) * pixels.shape[0]:
        if len(units) == 1:
            raise DissectError(f"the model's output has {logits.shape[0]} rows for {pixels.shape[0]} images")
        return None
    return logits.view(len(units), pixels.shape[0], -1)


def sweep_layer(
    model: nn.Module,
    module_name: str,
    units: Sequence[int],
    images: Iterable[ImageBatch],
    *,
    baseline_logits: Tensor | None,
    label_embeddings: Tensor,
    class_name_embeddings: Tensor,
    n_top: int = DEFAULT_AGREEMENT_CLASSES,
    n_random: int = DEFAULT_AGREEMENT_DRAWS,
    seed: int = DEFAULT_AGREEMENT_SEED,
    should_stop: Callable[[], bool] | None = None,
    progress: Progress | None = None,
    device: torch.device | str | None = None,
    chunk_bytes: int = SWEEP_CHUNK_BYTES,
) -> list[UnitSweepResult]:
    """Return, per unit (`units` order), what zeroing it alone does over the images: its label–effect agreement
    (`label_embeddings` [U, E] are the units' labels, `class_name_embeddings` [C, E] the class names, one text
    encoder) and its share of changed predictions. Equal to `run_intervention` with mode zero on each unit.

    `baseline_logits` [N, C] are indexed by probe position (None runs a plain pass beside).
    """
    start = time.perf_counter()
    unit_list = [int(unit) for unit in units]
    if not unit_list or min(unit_list) < 0:
        raise DissectError("give the sweep at least one unit, each a whole number from 0")
    if label_embeddings.dim() != 2 or label_embeddings.shape[0] != len(unit_list):
        raise DissectError(
            f"{tuple(label_embeddings.shape)} label embeddings for {len(unit_list)} units; pass one row per unit"
        )
    module = get_layer(model, module_name)
    here = model_device(model, device)
    check_stop = stop_checker(should_stop)
    null_sets = random_class_sets(class_name_embeddings.shape[0], n_top, n_random, seed)
    delta_sums = torch.zeros(len(unit_list), class_name_embeddings.shape[0], dtype=torch.float64)
    changed = torch.zeros(len(unit_list), dtype=torch.float64)
    n_images = 0
    per_forward = 0  # units per forward, sized by the first batch
    total_batches = len(images) if isinstance(images, Sequence) else 0
    with torch.inference_mode():
        for batch_number, (positions, pixels) in enumerate(images, start=1):
            check_stop()
            pixels = pixels.to(here)
            plain = rows_at(baseline_logits, positions, "baseline_logits") if baseline_logits is not None else None
            if plain is None:
                plain = batch_logits(model(pixels))
            if per_forward == 0:
                row_bytes = _output_bytes_per_image(model, module, module_name, pixels) * pixels.shape[0]
                per_forward = max(1, min(len(unit_list), chunk_bytes // max(1, row_bytes)))
            offset = 0
            while offset < len(unit_list):
                chunk = unit_list[offset : offset + per_forward]
                logits = _chunk_logits(model, module, module_name, chunk, pixels)
                if logits is None:
                    per_forward = 1  # this model cannot run copies at once: one unit per forward from here on
                    continue
                if logits.shape[2] != delta_sums.shape[1]:
                    raise DissectError(
                        f"the model gives {logits.shape[2]} classes but {delta_sums.shape[1]} class names were "
                        "embedded; embed one name per output class"
                    )
                before, after = comparable(plain, logits)
                delta_sums[offset : offset + len(chunk)] += (after - before).sum(dim=1)
                changed[offset : offset + len(chunk)] += (after.argmax(2) != before.argmax(1)).sum(dim=1)
                offset += len(chunk)
            n_images += len(positions)
            if progress is not None:
                progress("sweep", batch_number, total_batches)
    if n_images == 0:
        raise DissectError("no image was run; pass at least one batch of readable probe images")
    seconds = (time.perf_counter() - start) / len(unit_list)
    return [
        UnitSweepResult(
            unit=unit,
            agreement=agreement_against(
                label_class_cosines(label_embeddings[row], class_name_embeddings), delta_sums[row] / n_images, null_sets
            ),
            predictions_changed=float(changed[row]) / n_images,
            seconds=seconds,
        )
        for row, unit in enumerate(unit_list)
    ]
