"""One copy of a layer's stored activations, shared by the neuron page's panels and the image view."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from app.persistence.store.artifacts import ACTIVATIONS_FOLDER
from app.read.artifacts.activations import ActivationsUnavailable, LayerActivationRows
from dissect_core.analysis.distributions import standardise, standardise_rows
from dissect_core.analysis.unit_ranking import UnitStandardiser


def test_rows_are_read_once_and_used_as_they_are(tmp_path: Path) -> None:
    activations = torch.rand(12, 5)
    (tmp_path / ACTIVATIONS_FOLDER).mkdir()
    torch.save(activations.half(), tmp_path / ACTIVATIONS_FOLDER / "conv1.pt")
    rows = LayerActivationRows()
    first = rows.get(tmp_path, "conv1")
    assert first.shape == (5, 12) and first.dtype == torch.float16 and first.is_contiguous()
    assert torch.equal(first, activations.half().T)
    assert rows.get(tmp_path, "conv1", n_images=12) is first  # cached: the same tensor, not a second copy
    assert standardise_rows(first).values is first
    assert UnitStandardiser.from_rows(first).by_unit is first
    # The shared path gives what each reader computed from its own copy before.
    assert torch.allclose(standardise_rows(first).z, standardise(activations.half().float()).z)
    assert torch.allclose(UnitStandardiser.from_rows(first).mean, UnitStandardiser(activations.half().float()).mean)
    with pytest.raises(ActivationsUnavailable, match="12 rows for 13 stored images"):
        rows.get(tmp_path, "conv1", n_images=13)
