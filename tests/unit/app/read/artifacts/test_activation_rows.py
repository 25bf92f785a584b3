"""One copy of a layer's stored activations, shared by the neuron page's panels and the image view."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from app.persistence.store.artifacts import save_layer
from app.persistence.store.layout import ArtifactsLayout
from app.read.artifacts.activations import ActivationsUnavailable
from app.read.artifacts.reader import ArtifactsReader
from dissect_core.analysis.similar_units import correlation_sketch
from dissect_core.analysis.standardise import LayerStandardiser


def test_rows_are_read_once_and_used_as_they_are(tmp_path: Path) -> None:
    activations = torch.rand(12, 5)
    save_layer(ArtifactsLayout(tmp_path / "run"), "conv1", activations=activations)
    reader = ArtifactsReader(tmp_path)
    first = reader.activation_rows("run", "conv1")  # a folder stored relative to the data folder
    assert first.shape == (5, 12) and first.dtype == torch.float16 and first.is_contiguous()
    assert torch.equal(first, activations.half().T)
    assert reader.activation_rows(tmp_path / "run", "conv1", n_images=12) is first  # cached: the same tensor
    shared = LayerStandardiser.from_rows(first)
    assert shared.rows is first
    # The shared path gives what each reader computed from its own copy before.
    own_copy = LayerStandardiser.from_activations(activations.half().float())
    assert torch.equal(shared.mean, own_copy.mean) and torch.equal(shared.std, own_copy.std)
    assert torch.equal(correlation_sketch(shared).z, correlation_sketch(own_copy).z)
    with pytest.raises(ActivationsUnavailable, match="12 rows for 13 stored images"):
        reader.activation_rows("run", "conv1", n_images=13)
