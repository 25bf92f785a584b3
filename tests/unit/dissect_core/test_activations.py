"""The hooked activation pass: pooling, CLS tokens, linear outputs, running top maps and peak boxes."""

from __future__ import annotations

import torch
from torch import nn

from dissect_core.activations import ActivationRecorder, box_around_peak


class Toy(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 1, bias=False)
        self.tokens = nn.Identity()
        self.fc = nn.Linear(2, 3)
        with torch.no_grad():
            self.conv.weight.copy_(torch.tensor([[[[1.0]]], [[[-1.0]]]]))

    def forward(self, x):
        maps = self.conv(x)
        self.tokens(maps.flatten(2).transpose(1, 2))  # [B, HW, C]: "CLS" is position 0
        return self.fc(maps.mean((2, 3)))


def test_pooling_cls_tokens_and_running_top_maps():
    model = Toy()
    images = torch.zeros(3, 1, 2, 2)
    images[0, 0, 0, 0] = 4.0  # mean 1, max 4, peak at (0, 0)
    images[1, 0, 1, 1] = 2.0  # mean 0.5, max 2, peak at (1, 1)
    images[2, 0] = 0.8  # mean 0.8, max 0.8
    for pool, expected in (("avg", [1.0, 0.5, 0.8]), ("max", [4.0, 2.0, 0.8])):
        recorder = ActivationRecorder(model, ["conv", "tokens", "fc"], n_images=3, n_top=2, pool=pool)
        with recorder:
            recorder.run_batch(images[:2], [0, 1])
            recorder.run_batch(images[2:], [2])
        layers = recorder.results()
        assert layers["conv"].kind == "conv" and layers["tokens"].kind == "vit" and layers["fc"].kind == "linear"
        assert torch.allclose(layers["conv"].activations[:, 0], torch.tensor(expected))
        assert torch.allclose(layers["tokens"].activations[:, 0], images[:, 0, 0, 0])
    conv = layers["conv"]
    assert conv.top_indices[0].tolist() == [0, 1]
    assert conv.top_maps.shape == (2, 2, 2, 2)
    assert torch.equal(conv.top_maps[0, 1], images[1, 0])


def test_box_around_peak_stays_inside_the_image():
    assert box_around_peak((0, 0), (7, 7)) == (0.0, 0.0, round(3 / 7, 4), round(3 / 7, 4))
    x0, y0, x1, y1 = box_around_peak((55, 20), (56, 56))
    assert 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1 and round(x1 - x0, 3) == 0.25


def test_running_top_images_equal_the_whole_set_top_k_in_any_batching():
    # Random conv maps over 23 images in uneven batches: the running top-k (values, images and maps) must equal
    # the top-k taken once over every image, whichever batch each winner arrived in.
    torch.manual_seed(0)
    n_images, units, n_top = 23, 5, 4
    outputs = torch.randn(n_images, units, 3, 3)

    class Maps(nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = nn.Identity()

        def forward(self, index):
            return self.layer(outputs[index])

    for batch_sizes in ((23,), (1,) * 23, (2, 7, 1, 9, 4), (3, 3, 3, 3, 3, 3, 5)):
        recorder = ActivationRecorder(Maps(), ["layer"], n_images=n_images, n_top=n_top, pool="avg")
        start = 0
        with recorder:
            for size in batch_sizes:
                batch = list(range(start, start + size))
                recorder.run_batch(torch.tensor(batch), batch)
                start += size
        layer = recorder.results()["layer"]
        pooled = outputs.mean(dim=(2, 3))
        expected_values, expected_indices = torch.topk(pooled.T, k=n_top, dim=1)
        assert torch.equal(layer.top_indices, expected_indices), batch_sizes
        assert torch.allclose(layer.top_values, expected_values)
        expected_maps = outputs[expected_indices, torch.arange(units).unsqueeze(1)]
        assert torch.equal(layer.top_maps, expected_maps)
        assert torch.allclose(layer.activations, pooled)
