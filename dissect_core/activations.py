"""One hooked pass over the probe set: pooled activations per neuron, and running top images with maps."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from dissect_core.allocator import release_free_memory
from dissect_core.errors import DissectError
from dissect_core.models.targets import get_layer
from dissect_core.names import POOLING
from dissect_core.topk import stable_topk_positions


@dataclass
class RecordedLayer:
    """A layer's pooled activations [N, K] (probe order) and each neuron's running top images.

    `top_maps` [K, n_top, h, w] hold the neuron's spatial map on each top image (conv layers only).
    """

    kind: str
    activations: Tensor
    top_values: Tensor
    top_indices: Tensor
    top_maps: Tensor | None


def _pool(output: Tensor, pool: str) -> tuple[str, Tensor, Tensor | None]:
    """Return (kind, pooled [B, K], maps [B, K, h, w] or None) for one hooked output."""
    if output.dim() == 4:
        pooled = output.amax(dim=(2, 3)) if pool == "max" else output.mean(dim=(2, 3))
        return "conv", pooled, output
    if output.dim() == 3:  # a transformer block, batch first: the CLS token stands for the image
        return "vit", output[:, 0, :], None
    if output.dim() == 2:
        return "linear", output, None
    raise DissectError(
        f"cannot dissect a layer whose output has shape {tuple(output.shape)}; pick a conv, linear or "
        "transformer-block layer"
    )


def pooled_activations(output: Tensor, pool: str) -> Tensor:
    """Return a layer output's pooled activations [B, K], pooled as the probe pass records them."""
    return _pool(output, pool)[1]


class _LayerState:
    """Accumulates one layer's activations and its neurons' running top images."""

    def __init__(self, n_images: int, n_top: int) -> None:
        self.n_images = n_images
        self.n_top = n_top
        self.kind = ""
        self.activations: Tensor | None = None  # None until the first batch
        # [units, running top]: sized by the first batch, which also tells the number of units.
        self.top_values = torch.empty(0, 0)
        self.top_indices = torch.empty(0, 0, dtype=torch.long)
        self.top_maps: Tensor | None = None

    def update(self, output: Tensor, image_indices: Tensor, pool: str) -> None:
        """Add one batch's activations and keep each neuron's `n_top` most activating images so far."""
        kind, pooled, maps = _pool(output.detach().float(), pool)  # pooled on the output's device
        n_units = pooled.shape[1]
        if self.activations is None:
            self.kind = kind
            self.activations = torch.zeros(self.n_images, n_units, device=pooled.device)
            self.top_values = torch.empty(n_units, 0, device=pooled.device)
            self.top_indices = torch.empty(n_units, 0, dtype=torch.long, device=pooled.device)
            if maps is not None:
                self.top_maps = torch.empty(n_units, 0, *maps.shape[2:], device=maps.device)
        batch_indices = image_indices.to(pooled.device)
        self.activations[batch_indices] = pooled  # kept on the device: no sync per batch
        n_kept = self.top_values.shape[1]
        values = torch.cat([self.top_values, pooled.T], dim=1)
        images = torch.cat([self.top_indices, batch_indices.expand(n_units, -1)], dim=1)
        # The stable order (ties to the lower image index) makes the running top equal one top-k over all images.
        keep = stable_topk_positions(values, min(self.n_top, values.shape[1]), images)
        self.top_values = values.gather(1, keep)
        self.top_indices = images.gather(1, keep)
        from_batch = keep >= n_kept  # [units, top]: which winners are new in this batch
        batch_position = (keep - n_kept).clamp(min=0)
        kept_position = keep.clamp(max=max(n_kept - 1, 0))
        if maps is not None and self.top_maps is not None:
            # Gather only the winners' maps: concatenating every stored map with the batch's cost ~100 MB a batch.
            units = torch.arange(n_units, device=maps.device).unsqueeze(1)
            new_maps = maps[batch_position, units]  # [units, top, h, w]
            if n_kept:
                old_maps = self.top_maps[units, kept_position]
                new_maps = torch.where(from_batch[:, :, None, None], new_maps, old_maps)
            self.top_maps = new_maps

    def finish(self) -> RecordedLayer:
        """Return the layer's recorded activations and top images (on the CPU), or raise when no batch reached it."""
        if self.activations is None:
            raise DissectError("no probe image reached this layer; check that the probe set has readable images")
        top_maps = self.top_maps.cpu() if self.top_maps is not None else None
        return RecordedLayer(self.kind, self.activations.cpu(), self.top_values.cpu(), self.top_indices.cpu(), top_maps)


class ActivationRecorder:
    """Forward hooks on the named layers that record every batch passed through `model`."""

    def __init__(self, model: nn.Module, layer_names: Sequence[str], n_images: int, n_top: int, pool: str) -> None:
        if pool not in POOLING:
            raise DissectError(f"unknown pooling {pool!r}; use one of {', '.join(POOLING)}")
        self.model = model
        self.pool = pool
        self.layers = {name: get_layer(model, name) for name in layer_names}
        self.states = {name: _LayerState(n_images, n_top) for name in layer_names}
        self._batch_indices: Tensor | None = None
        self._handles: list = []

    def _hook(self, name: str) -> Callable:
        def hook(_module: nn.Module, _inputs: object, output: object) -> None:
            value = output[0] if isinstance(output, tuple | list) else output
            if not isinstance(value, Tensor):
                raise DissectError(f"layer {name} returns {type(value).__name__}, not a tensor; pick another layer")
            assert self._batch_indices is not None
            self.states[name].update(value, self._batch_indices, self.pool)

        return hook

    def __enter__(self) -> ActivationRecorder:
        self._handles = [layer.register_forward_hook(self._hook(name)) for name, layer in self.layers.items()]
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []

    @torch.inference_mode()
    def run_batch(self, pixels: Tensor, image_indices: Sequence[int]) -> object:
        """Pass one preprocessed batch through the model, recording every hooked layer; return the model's output."""
        self._batch_indices = torch.as_tensor(list(image_indices), dtype=torch.long)
        device = next((p.device for p in self.model.parameters()), torch.device("cpu"))
        # The encoder's forward before this one, and this one, free gigabytes of temporaries at batch 200 that the
        # tuned heap would keep resident and fragment further with each batch (see dissect_core.allocator).
        release_free_memory()
        output = self.model(pixels.to(device))
        release_free_memory()
        return output

    def results(self) -> dict[str, RecordedLayer]:
        """Return each layer's recorded activations and top images."""
        return {name: state.finish() for name, state in self.states.items()}


def box_around_peak(
    peak: tuple[int, int], map_size: tuple[int, int], min_side: float = 0.25, cells: int = 3
) -> tuple[float, float, float, float]:
    """Return a square box (x0, y0, x1, y1) in [0, 1] centred on a map cell, `cells` cells or `min_side` wide."""
    rows, cols = map_size
    side_y = min(1.0, max(min_side, cells / rows))
    side_x = min(1.0, max(min_side, cells / cols))
    centre_y = (peak[0] + 0.5) / rows
    centre_x = (peak[1] + 0.5) / cols
    y0 = min(max(0.0, centre_y - side_y / 2), 1.0 - side_y)
    x0 = min(max(0.0, centre_x - side_x / 2), 1.0 - side_x)
    return (round(x0, 4), round(y0, 4), round(x0 + side_x, 4), round(y0 + side_y, 4))


def peak_location(activation_map: Tensor) -> tuple[int, int]:
    """Return (row, col) of the largest value of a 2-D map."""
    flat = int(torch.argmax(activation_map))
    return divmod(flat, activation_map.shape[1])
