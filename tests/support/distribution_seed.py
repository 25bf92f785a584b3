"""Stored activations for a seeded run, built so that the distribution evidence has known answers.

Over the N_IMAGES probe images (image i): conv1 unit 0 ramps (i), unit 1 is 2i + 1 (r = 1 with unit 0), unit 2 is
dead (always 0); blocks.3 unit 7 is i plus a little noise (the most correlated unit outside conv1); every other
unit is noise."""

from __future__ import annotations

from pathlib import Path

import torch

from app.persistence.store.artifacts import ACTIVATIONS_FOLDER
from tests.support.dashboard_seed import N_IMAGES, SeededRun

RAMP_UNIT, DOUBLE_UNIT, DEAD_UNIT = 0, 1, 2
OTHER_LAYER, OTHER_UNIT = "blocks.3", 7


def seeded_activations(n_units: int, layer_position: int) -> torch.Tensor:
    """Return [N_IMAGES, n_units] noise activations in [0, 1) for one layer (seeded by its position)."""
    return torch.rand(N_IMAGES, n_units, generator=torch.Generator().manual_seed(100 + layer_position))


def write_seeded_activations(run: SeededRun) -> Path:
    """Write float16 activations for every layer of a seeded run (as the store does); return their folder."""
    folder = run.artifacts_dir / ACTIVATIONS_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    ramp = torch.arange(N_IMAGES, dtype=torch.float32)
    for position, layer in enumerate(run.layers):
        activations = seeded_activations(layer.n_units, position)
        if layer.name == "conv1":
            activations[:, RAMP_UNIT] = ramp / 10
            activations[:, DOUBLE_UNIT] = (2 * ramp + 1) / 10
            activations[:, DEAD_UNIT] = 0.0
        if layer.name == OTHER_LAYER:
            activations[:, OTHER_UNIT] = ramp / 10 + activations[:, OTHER_UNIT]
        torch.save(activations.to(torch.float16), folder / f"{layer.name}.pt")
    return folder
