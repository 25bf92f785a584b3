"""One image through the target: its prediction, every dissected layer's pooled activations, and where each
unit's activation falls among the probe set's."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from PIL import Image
from torch import Tensor

from dissect_core.errors import DissectError
from dissect_core.interventions.batches import model_device
from dissect_core.interventions.readouts import PooledRecorder
from dissect_core.models.targets import Target
from dissect_core.wiring.output_recorder import logits_of


@dataclass(frozen=True)
class ImageReading:
    """The target's logits [C] on one image (None when its output is no [1, C] tensor) and each named layer's
    pooled activations [units], pooled as the probe pass pools them (float32, on the CPU)."""

    logits: Tensor | None
    activations: dict[str, Tensor]


def read_image(
    target: Target, image: Image.Image, layers: Sequence[str], pool: str, device: torch.device | str | None = None
) -> ImageReading:
    """Return the target's reading of one decoded image, preprocessed as the probe images were."""
    here = model_device(target.model, device)
    pixels = target.preprocessing.transform()(image if image.mode == "RGB" else image.convert("RGB"))
    with torch.inference_mode(), PooledRecorder(target.model, layers, pool) as recorder:
        output = target.model(pixels.unsqueeze(0).to(here))
        pooled = recorder.take()
    logits = logits_of(output)
    return ImageReading(
        logits=logits[0].cpu() if logits is not None else None,
        activations={layer: pooled[layer][0] for layer in layers},
    )


def unit_percentiles(activation: Tensor, probe_activations: Tensor) -> Tensor:
    """Return each unit's percentile [units] (0..100) of `activation` [units] among the probe images'
    [n_images, units]: the share of probe images at or below it, ties counted half."""
    if probe_activations.dim() != 2 or activation.shape != probe_activations.shape[1:]:
        raise DissectError(
            f"activation {tuple(activation.shape)} and probe activations {tuple(probe_activations.shape)} do not "
            "match; pass one layer's [units] and its probe activations [n_images, units]"
        )
    if probe_activations.shape[0] == 0:
        raise DissectError("there are no probe activations to compare with; pass the run's stored activations")
    probe = probe_activations.float()
    value = activation.float().unsqueeze(0)
    below = (probe < value).sum(dim=0).double()
    equal = (probe == value).sum(dim=0).double()
    return (100.0 * (below + 0.5 * equal) / probe.shape[0]).float()
