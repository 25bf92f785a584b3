"""One image's reading (logits and pooled activations, as the probe pass pools them) and unit percentiles."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from dissect_core.errors import DissectError
from dissect_core.interventions.single_image import read_image, unit_percentiles
from dissect_core.models.targets import Target
from dissect_core.preprocessing import Preprocessing
from tests.unit.dissect_core.interventions.conftest import KnownNet


def test_read_image_gives_the_logits_and_each_layers_pooled_activations():
    net = KnownNet().eval()
    # One-channel network: a preprocessing whose single channel is the image's red channel, unnormalised.
    preprocessing = Preprocessing(resize=2, crop=2, interpolation="nearest", mean=(0.0,), std=(1.0,))
    net.conv = torch.nn.Sequential(torch.nn.Conv2d(3, 1, 1, bias=False), net.conv)
    with torch.no_grad():
        net.conv[0].weight.copy_(torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1))
    target = Target(name="known", model=net, preprocessing=preprocessing, identity="known")
    image = Image.new("RGB", (2, 2), (51, 200, 10))  # red 51/255 = 0.2 everywhere: f0 = 0.2
    reading = read_image(target, image, ["relu", "fc"], pool="max")
    assert torch.allclose(reading.activations["relu"], torch.tensor([0.2, 0.4]))
    assert torch.allclose(reading.logits, torch.tensor([1.4, 1.2, 0.1]))
    assert torch.equal(reading.activations["fc"], reading.logits)


def test_unit_percentiles_count_ties_half():
    probe = torch.tensor([[1.0, 5.0], [2.0, 5.0], [3.0, 5.0], [4.0, 6.0]])
    percentiles = unit_percentiles(torch.tensor([2.0, 5.0]), probe)
    # unit 0: one image below, one equal -> (1 + 0.5) / 4; unit 1: none below, three equal -> 1.5 / 4
    assert percentiles.tolist() == [37.5, 37.5]
    assert unit_percentiles(torch.tensor([9.0, -1.0]), probe).tolist() == [100.0, 0.0]
    with pytest.raises(DissectError, match="do not match"):
        unit_percentiles(torch.zeros(3), probe)
