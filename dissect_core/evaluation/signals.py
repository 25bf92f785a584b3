"""What an explanation predicts for an image: a monotone function of the image–concept cosine."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from dissect_core.errors import DissectError
from dissect_core.names import DEFAULT_SIMULATION, SIMULATIONS
from dissect_core.similarity.cosine import CosineSource, DenseCosine, FactoredCosine

_RESTRICTED_CACHE = 2


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
    #: A dense matrix transposed once, so a few concepts' values over a fold are one contiguous gather.
    _concept_major: Tensor | None = field(default=None, init=False, repr=False, compare=False)
    #: The concept-major matrix restricted to the last few image subsets asked for (a fold's training and
    #: held-out images), so the fits and predictions of one fold gather their columns once.
    _restricted: list[tuple[Tensor, Tensor]] = field(default_factory=list, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.simulation not in SIMULATIONS:
            raise DissectError(f"unknown simulation {self.simulation!r}; use one of {', '.join(SIMULATIONS)}")
        if self.simulation == "softmax" and self.log_normalisers is None:
            raise DissectError("the softmax simulation needs each image's log normaliser over the concept set")
        if isinstance(self.cosine, DenseCosine):
            object.__setattr__(self, "_concept_major", self.cosine.matrix.T.contiguous())

    @property
    def n_images(self) -> int:
        """Number of probe images."""
        return self.cosine.n_images

    @property
    def n_concepts(self) -> int:
        """Number of concepts."""
        return self.cosine.n_concepts

    def concept_rows(self, concepts: Tensor, images: Tensor) -> Tensor:
        """Return float32 s(images, concepts) concept-major: [len(concepts), len(images)]."""
        if self._concept_major is not None and 2 * len(concepts) > self.n_concepts:
            cos = self._restricted_to(images).index_select(0, concepts)  # most concepts: restrict the matrix once
        elif self._concept_major is not None:
            cos = self._concept_major.index_select(0, concepts).index_select(1, images)
        elif isinstance(self.cosine, FactoredCosine):
            cos = self.cosine.text_embeddings.index_select(0, concepts) @ self.cosine.image_embeddings[images].T
        else:
            cos = self.cosine.rows(images).index_select(1, concepts).float().T.contiguous()
        if self.simulation == "cosine":
            return cos
        assert self.log_normalisers is not None
        logits = self.a * cos.double() - self.log_normalisers[images].double().unsqueeze(0)
        return torch.exp(logits).float()

    def _restricted_to(self, images: Tensor) -> Tensor:
        """Return the concept-major dense matrix's columns for `images` [C, len(images)], cached for reuse."""
        assert self._concept_major is not None
        for cached_images, matrix in self._restricted:
            if cached_images.shape == images.shape and torch.equal(cached_images, images):
                return matrix
        matrix = self._concept_major.index_select(1, images)
        self._restricted.insert(0, (images.clone(), matrix))
        del self._restricted[_RESTRICTED_CACHE:]
        return matrix

    def block(self, start: int, stop: int) -> Tensor:
        """Return float32 s(all images, concepts start..stop-1) [N, stop - start]."""
        return self._transform(self.cosine.columns(start, stop).float(), None)

    def _transform(self, cos: Tensor, images: Tensor | None) -> Tensor:
        if self.simulation == "cosine":
            return cos
        assert self.log_normalisers is not None
        normalisers = self.log_normalisers if images is None else self.log_normalisers[images]
        return torch.exp(self.a * cos.double() - normalisers.double().unsqueeze(1)).float()


def restrict_rows(cosine: CosineSource, images: Tensor) -> CosineSource:
    """Return the cosine source of a subset of the images (a copy for dense sources, a view of factors else)."""
    if isinstance(cosine, DenseCosine):
        return DenseCosine(cosine.matrix.index_select(0, images))
    if isinstance(cosine, FactoredCosine):
        return FactoredCosine(cosine.image_embeddings.index_select(0, images), cosine.text_embeddings)
    return DenseCosine(cosine.rows(images))
