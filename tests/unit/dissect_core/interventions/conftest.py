"""A network with a known answer for the intervention tests: 1x1 conv -> ReLU -> global average pool -> linear.

Image i is a 2x2 map of non-negative values, so after the ReLU unit 0 is the image and unit 1 twice the image;
pooled, f0 = mean(image) and f1 = 2 mean(image). The classifier's weights [[2, 0], [0, 3], [0, -1]] make unit 0
feed class 0 alone (through +2), so zeroing it lowers logit 0 by exactly 2 f0 and leaves the others.
With the biases [1, 0, 0.5], class 0 wins on images with 0 <= f0 < 0.25 and class 1 above, so zeroing unit 0
changes the prediction of the images with 1/6 < f0 < 0.25.
"""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

WEIGHTS = torch.tensor([[2.0, 0.0], [0.0, 3.0], [0.0, -1.0]])
BIAS = torch.tensor([1.0, 0.0, 0.5])


class KnownNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 1, bias=False)
        self.relu = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(2, 3)
        with torch.no_grad():
            self.conv.weight.copy_(torch.tensor([1.0, 2.0]).view(2, 1, 1, 1))
            self.fc.weight.copy_(WEIGHTS)
            self.fc.bias.copy_(BIAS)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.flatten(self.pool(self.relu(self.conv(x)))))


def known_images(n_images: int = 6) -> Tensor:
    """Return [n, 1, 2, 2] non-negative images with distinct means (f0 of image i is known by hand)."""
    values = torch.arange(n_images * 4, dtype=torch.float32).view(n_images, 1, 2, 2) % 7 / 4
    values[0] = 0.2  # class 0 wins (1.4 > 1.2) until unit 0 is zeroed (1.0 < 1.2): one prediction changes
    return values


def batches(images: Tensor, batch_size: int = 4) -> list[tuple[list[int], Tensor]]:
    """Return the images as (probe positions, pixels) batches."""
    return [
        (list(range(start, min(start + batch_size, len(images)))), images[start : start + batch_size])
        for start in range(0, len(images), batch_size)
    ]


@pytest.fixture
def net() -> KnownNet:
    return KnownNet().eval()


@pytest.fixture
def images() -> Tensor:
    return known_images()
