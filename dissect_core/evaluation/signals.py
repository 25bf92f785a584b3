"""What an explanation predicts for an image: a monotone function of the image–concept cosine."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from dissect_core.errors import DissectError
from dissect_core.names import DEFAULT_SIMULATION, SIMULATIONS
from dissect_core.similarity.cosine import CosineSource, DenseCosine, FactoredCosine


@dataclass(frozen=True)
class ConceptSignals:
    """Reads s(i, c), the simulated presence of concept c in image i, for any images and concepts.

    `cosine` is the raw image–concept cosine; `softmax` the probability soft-WPMI uses, exp(a * cos) over its
    sum across the run's concepts (per image).

    `log_normalisers` [N] (logsumexp over the run's concepts of a * cos per image) is needed for `softmax`;
    it depends on each image's own cosines only, never on activations.
    """

    cosine: CosineSource
    simulation: str = DEFAULT_SIMULATION
    a: float = 10.0
    log_normalisers: Tensor | None = None

    def __post_init__(self) -> None:
        if self.simulation not in SIMULATIONS:
            raise DissectError(f"unknown simulation {self.simulation!r}; use one of {', '.join(SIMULATIONS)}")
        if self.simulation == "softmax" and self.log_normalisers is None:
            raise DissectError("the softmax simulation needs each image's log normaliser over the concept set")

    @property
    def n_images(self) -> int:
        """Number of probe images."""
        return self.cosine.n_images

    @property
    def n_concepts(self) -> int:
        """Number of concepts."""
        return self.cosine.n_concepts

    def columns(self, images: Tensor | None, concepts: Tensor) -> Tensor:
        """Return float32 s(images, concepts) [len(images) or N, len(concepts)]."""
        cos = _gather(self.cosine, images, concepts)
        return self._transform(cos, images)

    def block(self, start: int, stop: int) -> Tensor:
        """Return float32 s(all images, concepts start..stop-1) [N, stop - start]."""
        return self._transform(self.cosine.columns(start, stop).float(), None)

    def _transform(self, cos: Tensor, images: Tensor | None) -> Tensor:
        if self.simulation == "cosine":
            return cos
        assert self.log_normalisers is not None
        normalisers = self.log_normalisers if images is None else self.log_normalisers[images]
        return torch.exp(self.a * cos.double() - normalisers.double().unsqueeze(1)).float()


def _gather(cosine: CosineSource, images: Tensor | None, concepts: Tensor) -> Tensor:
    """Return cos(images, concepts) without building the whole matrix where the source allows it."""
    if isinstance(cosine, DenseCosine):
        matrix = cosine.matrix if images is None else cosine.matrix.index_select(0, images)
        return matrix.index_select(1, concepts)
    if isinstance(cosine, FactoredCosine):
        image_part = cosine.image_embeddings if images is None else cosine.image_embeddings.index_select(0, images)
        return image_part @ cosine.text_embeddings.index_select(0, concepts).T
    rows = torch.arange(cosine.n_images) if images is None else images
    return cosine.rows(rows).index_select(1, concepts).float()


def restrict_rows(cosine: CosineSource, images: Tensor) -> CosineSource:
    """Return the cosine source of a subset of the images (a copy for dense sources, a view of factors else)."""
    if isinstance(cosine, DenseCosine):
        return DenseCosine(cosine.matrix.index_select(0, images))
    if isinstance(cosine, FactoredCosine):
        return FactoredCosine(cosine.image_embeddings.index_select(0, images), cosine.text_embeddings)
    return DenseCosine(cosine.rows(images))
