"""The layer sweep equals one zero intervention per unit, whether the units share a forward (copies of the
layer's output) or a model with a skip connection makes it fall back to one unit per forward."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dissect_core.errors import DissectError
from dissect_core.interventions.effects import label_effect_agreement, run_intervention
from dissect_core.interventions.modes import InterventionSpec
from dissect_core.interventions.sweep import sweep_layer
from tests.unit.dissect_core.interventions.conftest import batches

N_UNITS, N_CLASSES, DIM = 6, 9, 4


class Wide(nn.Module):
    """Conv -> ReLU -> pool -> linear with random weights; `skip` adds the input back after the ReLU, so the
    ReLU's output cannot be copied per unit (the added input keeps the batch size)."""

    def __init__(self, skip: bool) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, N_UNITS, 3, padding=1)
        self.relu = nn.ReLU()
        self.fc = nn.Linear(N_UNITS, N_CLASSES)
        self.skip = skip

    def forward(self, x):
        hidden = self.relu(self.conv(x))
        if self.skip:
            hidden = hidden + x.repeat(1, N_UNITS // 3, 1, 1)
        return self.fc(hidden.mean(dim=(2, 3)))


def _inputs():
    generator = torch.Generator().manual_seed(1)
    images = torch.randn(10, 3, 5, 5, generator=generator)
    return images, torch.randn(N_UNITS, DIM, generator=generator), torch.randn(N_CLASSES, DIM, generator=generator)


@pytest.mark.parametrize(("skip", "chunk_bytes"), [(False, 1 << 27), (False, 5000), (True, 1 << 27)])
def test_the_sweep_equals_one_zero_intervention_per_unit(skip, chunk_bytes):
    model = Wide(skip).eval()
    images, labels, class_names = _inputs()
    units = [4, 0, 2, 5]
    results = sweep_layer(
        model, "relu", units, batches(images), baseline_logits=None, label_embeddings=labels[units],
        class_name_embeddings=class_names, n_top=3, n_random=200, chunk_bytes=chunk_bytes,
    )  # fmt: skip
    assert [result.unit for result in results] == units
    for result in results:
        single = run_intervention(model, "relu", InterventionSpec("relu", (result.unit,), "zero"), batches(images))
        expected = label_effect_agreement(labels[result.unit], class_names, single.classes, n_top=3, n_random=200)
        assert result.agreement.top_classes == expected.top_classes
        assert result.agreement.cosine == pytest.approx(expected.cosine, abs=1e-9)
        assert result.agreement.z == pytest.approx(expected.z, abs=1e-6)
        assert result.agreement.p_value == expected.p_value
        assert result.predictions_changed == single.predictions_changed
        assert result.seconds > 0
    assert not model.relu._forward_hooks


def test_a_stored_baseline_serves_the_sweep_and_bad_inputs_are_refused():
    model = Wide(False).eval()
    images, labels, class_names = _inputs()
    stored = model(images).detach().half()
    swept = sweep_layer(
        model, "relu", [1], batches(images), baseline_logits=stored, label_embeddings=labels[:1],
        class_name_embeddings=class_names,
    )  # fmt: skip
    assert 0.0 <= swept[0].predictions_changed <= 1.0 and swept[0].agreement.n_random == 1000
    with pytest.raises(DissectError, match="one row per unit"):
        sweep_layer(
            model, "relu", [1, 2], batches(images), baseline_logits=None, label_embeddings=labels[:1],
            class_name_embeddings=class_names,
        )  # fmt: skip
    with pytest.raises(DissectError, match="has 6 units"):
        sweep_layer(
            model, "relu", [6], batches(images), baseline_logits=None, label_embeddings=labels[:1],
            class_name_embeddings=class_names,
        )  # fmt: skip
