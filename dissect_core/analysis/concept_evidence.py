"""Concept evidence on one neuron: the probe images an encoder rates highest for a concept, hit or miss.

Pure tensor rules, no I/O: which images rate highest for a concept, whether a neuron fires on them (a HIT is
an activation at or above the neuron's 95th percentile over the probe set), and which images carry the concept
at all (its cosine reaches the image's CARRY_RANK-th highest cosine over the run's concept vocabulary).
"""

from __future__ import annotations

import torch
from torch import Tensor

#: A neuron fires on an image when its activation reaches this quantile of its activations over the probe set.
HIT_QUANTILE = 0.95
#: Cosines are stored as float32 and recomputed at request time: a concept of the vocabulary that is exactly an
#: image's CARRY_RANK-th may differ from the stored bar by rounding, and still counts.
CARRY_TOLERANCE = 1e-5


def concept_cosines(image_embeddings: Tensor, text_embedding: Tensor) -> Tensor:
    """Return the cosine [N] of each image embedding [N, D] with one text embedding [D]."""
    images = torch.nn.functional.normalize(image_embeddings.float(), dim=1)
    return images @ torch.nn.functional.normalize(text_embedding.float().flatten(), dim=0)


def top_images_for_concept(cosines: Tensor, n: int) -> Tensor:
    """Return the indices of the `n` (at most N) images with the highest cosines, highest first, ties by index."""
    order = torch.argsort(cosines, descending=True, stable=True)
    return order[: max(0, n)]


def hit_threshold(activations: Tensor, quantile: float = HIT_QUANTILE) -> float:
    """Return the neuron's activation quantile [N] -> float (linear interpolation) that a HIT must reach."""
    if activations.numel() == 0:
        raise ValueError("a neuron with no activations has no hit threshold")
    return float(torch.quantile(activations.double().flatten(), quantile))


def hits(activations: Tensor, threshold: float) -> Tensor:
    """Return whether each activation reaches the hit threshold (bool, same shape)."""
    return activations.double() >= threshold


def carrying(cosines: Tensor, carry_cosines: Tensor, tolerance: float = CARRY_TOLERANCE) -> Tensor:
    """Return whether each image [N] carries the concept: its cosine reaches the image's stored bar [N]."""
    if cosines.shape != carry_cosines.shape:
        raise ValueError(f"{tuple(cosines.shape)} cosines for {tuple(carry_cosines.shape)} stored bars")
    return cosines.float() >= carry_cosines.float() - tolerance
