"""The intervention hook on a network with a known answer: zero, mean and scale change exactly the logit the unit
feeds, by the amount worked out by hand; the hook never outlives its block; mean maps and token layers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dissect_core.errors import DissectError
from dissect_core.interventions.hooks import intervened, unit_mean_maps
from dissect_core.interventions.modes import InterventionSpec
from tests.unit.dissect_core.interventions.conftest import BIAS, batches


def _f0(images):
    return images.mean(dim=(1, 2, 3))  # unit 0's pooled activation on each image


def test_zero_lowers_only_the_fed_logit_by_two_f0(net, images):
    baseline = net(images)
    with intervened(net, net.relu, InterventionSpec("relu", (0,), "zero")):
        after = net(images)
    assert torch.allclose(after[:, 0], baseline[:, 0] - 2 * _f0(images))
    assert torch.allclose(after[:, 0], BIAS[0].expand(len(images)))  # nothing is left of unit 0
    assert torch.equal(after[:, 1:], baseline[:, 1:])


def test_scale_multiplies_the_units_contribution(net, images):
    baseline = net(images)
    with intervened(net, net.relu, InterventionSpec("relu", (0,), "scale", 3.0)):
        after = net(images)
    assert torch.allclose(after[:, 0], baseline[:, 0] + (3.0 - 1.0) * 2 * _f0(images))
    assert torch.equal(after[:, 1:], baseline[:, 1:])
    with intervened(net, net.relu, InterventionSpec("relu", (0, 1), "scale", 1.0)):
        assert torch.equal(net(images), baseline)  # a no-op is bit for bit


def test_mean_sets_the_unit_to_its_mean_map_over_the_probe_set(net, images):
    means = unit_mean_maps(net, "relu", batches(images), units=[0])
    assert means.shape == (1, 2, 2)
    assert torch.allclose(means[0], images[:, 0].mean(dim=0))  # unit 0 is the image itself after the ReLU
    baseline = net(images)
    with intervened(net, net.relu, InterventionSpec("relu", (0,), "mean"), unit_means=means):
        after = net(images)
    assert torch.allclose(after[:, 0], BIAS[0] + 2 * _f0(images).mean())  # every image gets the mean's logit
    assert torch.equal(after[:, 1:], baseline[:, 1:])
    with intervened(net, net.relu, InterventionSpec("relu", (0,), "mean"), unit_means=means.mean(dim=(1, 2))):
        assert torch.allclose(net(images)[:, 0], after[:, 0])  # one value per unit spreads over its map


def test_mean_maps_of_all_units_and_of_a_linear_layer(net, images):
    assert torch.allclose(unit_mean_maps(net, "relu", batches(images))[1], 2 * images[:, 0].mean(dim=0))
    pooled = unit_mean_maps(net, "flatten", batches(images, batch_size=5))
    assert pooled.shape == (2,) and torch.allclose(pooled, torch.stack([_f0(images), 2 * _f0(images)]).mean(1))


def test_the_hook_is_removed_after_every_block_also_on_an_exception(net, images):
    baseline = net(images)
    with intervened(net, net.relu, InterventionSpec("relu", (0,), "zero")):
        pass
    with pytest.raises(RuntimeError, match="boom"), intervened(net, net.relu, InterventionSpec("relu", (1,), "zero")):
        raise RuntimeError("boom")
    out_of_range = InterventionSpec("relu", (5,), "zero")
    with pytest.raises(DissectError, match="unit 5 is out of range"), intervened(net, net.relu, out_of_range):
        net(images)  # the hook raises mid-forward
    with pytest.raises(DissectError, match="unit_mean_maps"):
        intervened(net, net.relu, InterventionSpec("relu", (0,), "mean")).__enter__()
    assert not net.relu._forward_hooks
    assert torch.equal(net(images), baseline)


def test_the_output_is_never_written_in_place(net, images):
    seen = []
    with intervened(net, net.relu, InterventionSpec("relu", (0,), "zero")):
        # Runs before the intervention's hook and keeps the module's own output tensor.
        net.relu.register_forward_hook(lambda _m, _i, output: seen.append(output), prepend=True)
        net(images)
    assert torch.equal(seen[0], net.relu(net.conv(images)))  # the intervention made a new tensor


def test_mean_maps_of_the_wrong_shape_and_a_foreign_module_are_refused(net, images):
    wrong = torch.zeros(1, 3, 3)
    mean = InterventionSpec("relu", (0,), "mean")
    with pytest.raises(DissectError, match=r"needs \[1\] or \[1, 2, 2\]"), intervened(net, net.relu, mean, wrong):
        net(images)
    with pytest.raises(DissectError, match="needs a factor"):  # a spec that skipped check_spec is checked too
        intervened(net, net.relu, InterventionSpec("relu", (0,), "scale")).__enter__()
    negative = InterventionSpec("relu", (-1,), "zero")
    with pytest.raises(DissectError, match="unit -1 is out of range"), intervened(net, net.relu, negative):
        net(images)
    with pytest.raises(DissectError, match="not part of the model"):
        intervened(net, nn.ReLU(), InterventionSpec("relu", (0,), "zero")).__enter__()


class Tokens(nn.Module):
    """[B, T, C] tokens whose block output is read at the CLS token, as a transformer block's."""

    def __init__(self) -> None:
        super().__init__()
        self.block = nn.Identity()
        self.head = nn.Linear(3, 2, bias=False)
        with torch.no_grad():
            self.head.weight.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]]))

    def forward(self, x):
        return self.head(self.block(x).mean(dim=1))


def test_token_layers_change_the_last_dim_on_every_token():
    model = Tokens().eval()
    tokens = torch.arange(2 * 4 * 3, dtype=torch.float32).view(2, 4, 3)
    with intervened(model, model.block, InterventionSpec("block", (2,), "zero")):
        after = model(tokens)
    assert torch.allclose(after[:, 1], tokens[:, :, 1].mean(dim=1))
    means = unit_mean_maps(model, "block", [([0, 1], tokens)], units=[2])
    assert means.shape == (1, 4) and torch.allclose(means[0], tokens[:, :, 2].mean(dim=0))
    with intervened(model, model.block, InterventionSpec("block", (2,), "mean"), unit_means=means):
        assert torch.allclose(model(tokens)[:, 1], tokens[:, :, 1].mean(1) + tokens[:, :, 2].mean())
