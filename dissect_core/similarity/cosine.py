"""The image × concept cosine matrix, dense or factored, read in row and column blocks.

At the paper's scale (50,000 images × 20,000 concepts) the dense matrix alone is 4 GB, so the similarity
functions never ask for all of it at once: they read the rows of the images they need, or blocks of
columns. A plain tensor works everywhere a `CosineSource` is expected.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import Tensor


class CosineSource(Protocol):
    """Read access to an image × concept cosine matrix [N, C]."""

    n_images: int
    n_concepts: int

    def rows(self, image_index: Tensor) -> Tensor:
        """Return float32 rows [len(image_index), C] for the given image indices."""
        ...

    def columns(self, start: int, stop: int) -> Tensor:
        """Return float32 columns [N, stop - start] for concepts start..stop-1."""
        ...


class DenseCosine:
    """A cosine matrix held in memory as one [N, C] tensor."""

    def __init__(self, matrix: Tensor) -> None:
        if matrix.dim() != 2:
            raise ValueError(f"the cosine matrix must be 2-D [images, concepts], got shape {tuple(matrix.shape)}")
        self.matrix = matrix.float()
        self.n_images, self.n_concepts = self.matrix.shape

    def rows(self, image_index: Tensor) -> Tensor:
        """Return the rows of the given images."""
        return torch.index_select(self.matrix, 0, image_index.to(self.matrix.device))

    def columns(self, start: int, stop: int) -> Tensor:
        """Return a block of concept columns."""
        return self.matrix[:, start:stop]


class FactoredCosine:
    """A cosine matrix kept as its factors: unit image embeddings [N, D] and unit text embeddings [C, D].

    `images_normalised`: the image embeddings already have unit rows (normalised in row blocks, which gives the same
    bits, e.g. into a mapped file) and are kept as given instead of copied normalised.
    """

    def __init__(self, image_embeddings: Tensor, text_embeddings: Tensor, *, images_normalised: bool = False) -> None:
        if image_embeddings.shape[1] != text_embeddings.shape[1]:
            raise ValueError(
                f"image embeddings have dimension {image_embeddings.shape[1]} but text embeddings have "
                f"{text_embeddings.shape[1]}; embed both with the same encoder"
            )
        self.image_embeddings = (
            image_embeddings if images_normalised else torch.nn.functional.normalize(image_embeddings.float(), dim=1)
        )
        self.text_embeddings = torch.nn.functional.normalize(text_embeddings.float(), dim=1)
        self.n_images = self.image_embeddings.shape[0]
        self.n_concepts = self.text_embeddings.shape[0]

    def rows(self, image_index: Tensor) -> Tensor:
        """Return the rows of the given images, computed from the factors."""
        images = torch.index_select(self.image_embeddings, 0, image_index.to(self.image_embeddings.device))
        return images @ self.text_embeddings.T

    def columns(self, start: int, stop: int) -> Tensor:
        """Return a block of concept columns, computed from the factors."""
        return self.image_embeddings @ self.text_embeddings[start:stop].T

    def dense(self) -> Tensor:
        """Return the whole [N, C] matrix (only for sizes that fit in memory)."""
        return self.image_embeddings @ self.text_embeddings.T


def as_cosine_source(cosine: Tensor | CosineSource) -> CosineSource:
    """Wrap a plain tensor as a `DenseCosine`; pass a `CosineSource` through."""
    if isinstance(cosine, Tensor):
        return DenseCosine(cosine)
    return cosine
