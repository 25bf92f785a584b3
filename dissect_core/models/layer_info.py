"""One layer of a model as its listing gives it (torch-free, so a kept layer table is read without torch)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LayerInfo:
    """One layer of a model: dotted name, module type and output shape (without the batch dimension)."""

    name: str
    type_name: str
    output_shape: tuple[int, ...] | None

    @property
    def n_units(self) -> int | None:
        """Number of neurons the layer would be dissected into (channels, features or ViT width)."""
        if not self.output_shape:
            return None
        return self.output_shape[-1] if len(self.output_shape) == 2 else self.output_shape[0]
