"""Constructed per-layer activations for a seeded run, so the image view's answer for one image is known."""

from __future__ import annotations

import torch

from app.persistence.store.artifacts import save_layer
from app.persistence.store.layout import ArtifactsLayout
from tests.support.dashboard_seed import N_IMAGES, SeededRun

IMAGE = 17
#: In every layer: the units IMAGE activates most, in this order.
LOUD = (5, 3, 9, 0, 7, 2, 8, 1)


def rare_units(n_units: int) -> tuple[int, ...]:
    """Return the units IMAGE is the lone outlier of: up to 8 units outside LOUD (2 in a 10-unit layer)."""
    return tuple(unit for unit in range(n_units) if unit not in LOUD)[:8]


def constructed_activations(n_units: int, seed: int) -> torch.Tensor:
    """Return [N_IMAGES, n_units] activations: noise, LOUD units high on every image (20, 19, ... on all, so IMAGE
    is ordinary for them), and the rare units quiet except on IMAGE (a small, lone peak of 1.0)."""
    acts = 0.01 * torch.randn(N_IMAGES, n_units, generator=torch.Generator().manual_seed(seed))
    for rank, unit in enumerate(u for u in LOUD if u < n_units):
        acts[:, unit] += 20.0 - rank
    for unit in rare_units(n_units):
        acts[IMAGE, unit] = 1.0
    return acts


def write_activations(run: SeededRun) -> None:
    """Store the constructed activations of every layer of a seeded run, through the store's writer."""
    layout = ArtifactsLayout(run.artifacts_dir)
    for seed, layer in enumerate(run.layers):
        save_layer(layout, layer.name, activations=constructed_activations(layer.n_units, seed))
