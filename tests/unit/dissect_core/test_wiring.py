"""Connections between dissected layers: weights read back as the module's own (BatchNorm folded, checked by hand),
attribution equal to its closed form on a linear chain, and the classifier's outputs recorded in one pass."""

from __future__ import annotations

import torch
from torch import nn

from dissect_core.models.wiring import path_weights, trace_layers, weight_path
from dissect_core.wiring.attribution import AttributionPlan, attribute
from dissect_core.wiring.connect import connect_layers, feeding_layer
from dissect_core.wiring.output_recorder import OutputRecorder


class _Net(nn.Module):
    """conv → bn → relu → conv_head → bn2 → relu → pool → flatten → classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.conv_head = nn.Conv2d(4, 6, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(6)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(6, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn(self.conv(x)))
        x = torch.relu(self.bn2(self.conv_head(x)))
        return self.classifier(torch.flatten(self.pool(x), 1))


def _net() -> nn.Module:
    torch.manual_seed(0)
    net = _Net()
    for bn in (net.bn, net.bn2):
        assert bn.running_mean is not None and bn.running_var is not None
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
        bn.weight.data.uniform_(-2, 2)
    return net.eval()


def test_a_linear_classifier_reads_back_its_weight_with_the_batchnorm_before_it_folded():
    net = _net()
    path = weight_path(net, trace_layers(net, ["conv_head", "classifier"]), "conv_head", "classifier")
    assert path is not None and (path.module, path.before, path.after) == ("classifier", ("bn2",), ())
    scale = net.bn2.weight / torch.sqrt(net.bn2.running_var + net.bn2.eps)
    assert torch.allclose(path_weights(net, path), (net.classifier.weight * scale[None, :]).detach(), atol=1e-6)


def test_a_convolution_reads_as_the_signed_kernel_norm_with_the_batchnorm_after_it_folded():
    net = _net()
    path = weight_path(net, trace_layers(net, ["conv", "bn2"]), "conv", "bn2")
    assert path is not None and (path.module, path.before, path.after) == ("conv_head", ("bn",), ("bn2",))
    kernel = net.conv_head.weight.detach()
    by_hand = kernel.flatten(2).norm(dim=2) * kernel.flatten(2).sum(dim=2).sign()
    before = net.bn.weight / torch.sqrt(net.bn.running_var + net.bn.eps)
    after = net.bn2.weight / torch.sqrt(net.bn2.running_var + net.bn2.eps)
    assert torch.allclose(path_weights(net, path), (after[:, None] * by_hand * before[None, :]).detach(), atol=1e-5)


def test_layers_two_modules_apart_have_no_weight_path():
    net = _net()
    assert weight_path(net, trace_layers(net, ["conv", "classifier"]), "conv", "classifier") is None


def test_attribution_on_a_linear_chain_equals_its_closed_form():
    torch.manual_seed(1)
    chain = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 5), nn.Linear(5, 2)).eval()
    pixels = torch.randn(6, 3)
    found = attribute(chain, pixels, AttributionPlan("0", ("2",), 4), "mean")
    upstream = chain[0](pixels).detach()  # [6, 4]
    jacobian = (chain[2].weight @ chain[1].weight).detach()  # d out / d upstream, [2, 4]
    assert torch.allclose(found["2"], jacobian * upstream.mean(dim=0)[None, :], atol=1e-5)


def test_connect_layers_joins_every_ordered_pair_and_names_the_feeding_layer():
    net = _net()
    units = {"conv": 4, "conv_head": 6, "classifier": 5}

    def sample(n_images: int) -> torch.Tensor:
        return torch.randn(n_images, 3, 8, 8, generator=torch.Generator().manual_seed(0))

    connections = connect_layers(net, ["classifier", "conv", "conv_head"], units, sample, 16, "mean")
    kinds = {(c.from_layer, c.to_layer): c.kind for c in connections}
    assert kinds == {
        ("conv", "conv_head"): "weight",
        ("conv", "classifier"): "attribution",
        ("conv_head", "classifier"): "weight",
    }
    attribution = next(c for c in connections if c.kind == "attribution")
    assert attribution.weights.shape == (5, 4) and attribution.n_images is not None and attribution.n_images >= 1
    assert "folded" in next(c for c in connections if c.to_layer == "conv_head").note
    assert feeding_layer(net, ["conv", "conv_head"], "classifier", 6, units) == "conv_head"


def test_the_output_recorder_keeps_logits_and_what_the_classifier_receives():
    net = _net()
    pixels = torch.randn(4, 3, 8, 8)
    recorder = OutputRecorder(net, 4)
    with recorder, torch.no_grad():
        recorder.add(net(pixels[:3]), [0, 1, 2])
        recorder.add(net(pixels[3:]), [3])
    outputs = recorder.outputs()
    assert outputs is not None and outputs.classifier_layer == "classifier"
    with torch.no_grad():
        features = torch.flatten(net.pool(torch.relu(net.bn2(net.conv_head(torch.relu(net.bn(net.conv(pixels))))))), 1)
        assert torch.allclose(outputs.logits, net(pixels), atol=1e-6)
    assert outputs.classifier_inputs is not None and torch.allclose(outputs.classifier_inputs, features, atol=1e-6)
    assert outputs.classifier_weight is not None
    assert torch.equal(outputs.classifier_weight, net.classifier.weight.detach())
    assert outputs.predicted.tolist() == net(pixels).argmax(dim=1).tolist()
