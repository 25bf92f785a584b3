"""Synthetic probe sets for the evaluation tests: random unit embeddings, so concept columns are nearly orthogonal."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
from torch import Tensor

from dissect_core.evaluation.folds import fold_of_images
from dissect_core.evaluation.signals import ConceptSignals
from dissect_core.similarity.cosine import DenseCosine, FactoredCosine
from dissect_core.similarity.functions import soft_wpmi


@dataclass
class Probe:
    cosine: DenseCosine
    signals: ConceptSignals
    columns: Tensor  # [N, C] s(i, c)
    folds: Tensor
    concepts: list[str]


def make_probe(n_images: int = 400, n_concepts: int = 300, dim: int = 256, seed: int = 0) -> Probe:
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(n_images, dim, generator=generator)
    texts = torch.randn(n_concepts, dim, generator=generator)
    cosine = DenseCosine(FactoredCosine(images, texts).dense())
    signals = ConceptSignals(cosine, "cosine")
    folds = fold_of_images([f"image-{seed}-{i}" for i in range(n_images)])
    return Probe(cosine, signals, signals.block(0, n_concepts), folds, [f"c{i}" for i in range(n_concepts)])


def score_fn(cosine: DenseCosine, activations: Tensor) -> Tensor:
    return soft_wpmi(cosine, activations, top_k=10)


@pytest.fixture
def probe() -> Probe:
    return make_probe()
