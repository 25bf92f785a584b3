"""The architecture catalogue: layers and fit-check shapes from models built on the meta device, never with
weights, each architecture under a lock of its own."""

from __future__ import annotations

import threading

import pytest
import torch
from torch import nn

from app.core.errors import AtlasError
from app.jobs.uploads.architectures import ArchitectureCatalog, architecture_facts
from dissect_core.models.state_dicts import tensor_shapes
from dissect_core.models.targets import build_skeleton, load_target
from tests.support.memory import measure_in_child

#: vit_h_14's weights are 2.5 GB; its meta skeleton, traced, takes a few megabytes.
MAX_GROWTH = 300 * 2**20


@pytest.mark.slow
def test_a_big_architecture_is_listed_without_allocating_its_weights() -> None:
    measured = measure_in_child(
        "from app.jobs.uploads.architectures import ArchitectureCatalog",
        """
        catalog = ArchitectureCatalog()
        layers = {option.name: option.n_units for option in catalog.layers("vit_h_14")}
        assert layers["encoder.layers.encoder_layer_31"] == 1280 and layers["heads.head"] == 1000, layers
        assert catalog.facts("vit_h_14").parameter_bytes > 2.5e9
        """,
    )
    assert measured.error is None, measured.error
    assert measured.growth_bytes < MAX_GROWTH and measured.seconds < 30, measured


@pytest.mark.parametrize("name", ["resnet18", "regnet_x_400mf", "efficientnet_lite0"])
@pytest.mark.slow
def test_meta_facts_match_a_model_built_with_weights(name: str) -> None:
    skeleton = build_skeleton(name)  # regnet_x_400mf computes its widths with tensors: the fallback path
    assert all(tensor.is_meta for tensor in skeleton.state_dict().values())
    real = load_target(name, weights="none").model
    meta_facts, real_facts = architecture_facts(name, skeleton), architecture_facts(name, real)
    assert meta_facts == real_facts
    assert meta_facts.shapes == tensor_shapes(real.state_dict())
    assert meta_facts.parameter_bytes == sum(t.numel() * t.element_size() for t in real.state_dict().values())


def test_two_architectures_are_listed_without_waiting_on_each_other() -> None:
    release, building = threading.Event(), threading.Event()

    def build(name: str) -> nn.Module:
        if name == "slow":
            building.set()
            assert release.wait(10), "never released"
        return nn.Sequential(nn.Conv2d(3, 2, 3), nn.Flatten(), nn.LazyLinear(5))

    catalog = ArchitectureCatalog(names=["slow", "fast"], build=build)
    slow = threading.Thread(target=catalog.layers, args=("slow",))
    slow.start()
    try:
        assert building.wait(10)
        listed = threading.Thread(target=catalog.layers, args=("fast",))
        listed.start()
        listed.join(5)
        assert not listed.is_alive(), "listing 'fast' waited for 'slow' to be built"
        assert slow.is_alive()
    finally:
        release.set()
        slow.join(10)
    assert [option.n_units for option in catalog.layers("slow")] == [2, 2 * 222 * 222, 5]


def test_a_checkpoint_far_bigger_than_the_architecture_is_refused() -> None:
    catalog = ArchitectureCatalog(names=["resnet18"])
    own = catalog.facts("resnet18").parameter_bytes
    catalog.check_size("resnet18", 3 * own)  # weights and Adam's two moments
    with pytest.raises(AtlasError, match=r"more than 4x the 44\.\d MB of resnet18's parameters"):
        catalog.check_size("resnet18", 5 * own)


class NeedsValues(nn.Module):
    """A model whose forward pass reads tensor values, which the meta device does not have."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        """Return logits only for bright images (a data-dependent branch)."""
        if pixels.mean().item() > 2:
            return pixels
        return self.fc(pixels.mean((2, 3)).repeat(1, 2)[:, :4])


def test_an_architecture_that_cannot_be_traced_on_meta_is_told_clearly() -> None:
    def build(_name: str) -> nn.Module:
        with torch.device("meta"):
            return NeedsValues()

    catalog = ArchitectureCatalog(names=["needs_values"], build=build)
    with pytest.raises(AtlasError, match="cannot be traced without weights") as refused:
        catalog.layers("needs_values")
    assert "neuron-atlas layers --model needs_values" in str(refused.value)
