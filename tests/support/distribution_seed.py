"""Stored activations for a seeded run, built so that the distribution evidence has known answers.

Over the N_IMAGES probe images (image i): conv1 unit 0 ramps (i), unit 1 is 2i + 1 (r = 1 with unit 0), unit 2 is
dead (always 0); blocks.3 unit 7 is i plus a little noise (the most correlated unit outside conv1); every other
unit is noise."""

from __future__ import annotations

import torch

from app.persistence.store.artifacts import save_layer
from app.persistence.store.layout import ArtifactsLayout
from tests.support.dashboard_seed import N_IMAGES, SeededRun

RAMP_UNIT, DOUBLE_UNIT, DEAD_UNIT = 0, 1, 2
OTHER_LAYER, OTHER_UNIT = "blocks.3", 7


def seeded_activations(n_units: int, layer_position: int) -> torch.Tensor:
    """Return [N_IMAGES, n_units] noise activations in [0, 1) for one layer (seeded by its position)."""
    return torch.rand(N_IMAGES, n_units, generator=torch.Generator().manual_seed(100 + layer_position))


def write_seeded_activations(run: SeededRun) -> None:
    """Store activations for every layer of a seeded run, through the store's writer (float16, as a run keeps)."""
    layout = ArtifactsLayout(run.artifacts_dir)
    ramp = torch.arange(N_IMAGES, dtype=torch.float32)
    for position, layer in enumerate(run.layers):
        activations = seeded_activations(layer.n_units, position)
        if layer.name == "conv1":
            activations[:, RAMP_UNIT] = ramp / 10
            activations[:, DOUBLE_UNIT] = (2 * ramp + 1) / 10
            activations[:, DEAD_UNIT] = 0.0
        if layer.name == OTHER_LAYER:
            activations[:, OTHER_UNIT] = ramp / 10 + activations[:, OTHER_UNIT]
        save_layer(layout, layer.name, activations=activations)
