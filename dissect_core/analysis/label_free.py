"""Label-free scores of a unit from the encoder embeddings of its top images (SemanticLens, Dreyer et al. 2025).

- clarity: the mean pairwise cosine of the unit's top images' embeddings (1: the images look alike to the encoder);
- polysemanticity: 1 - the cosine of the two k-means centres of those embeddings (0: one group; high: two apart);
- redundancy: the highest cosine of the unit's mean top-image embedding to another unit's in the same layer.

They need no concept vocabulary, so they say how coherent a unit is whatever its label. Their random baseline is the
same scores for random image sets of the same size from the same probe images: a unit near it picks images that look
no more alike than chance.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

#: The most top images per unit the scores use (SemanticLens uses a unit's top images; fewer if the run kept fewer).
LABEL_FREE_TOP_IMAGES = 20
#: Lloyd iterations of the two-centre k-means: a few suffice for two clusters of at most LABEL_FREE_TOP_IMAGES points.
KMEANS_ITERATIONS = 25
#: The random baseline's image sets and its seed.
BASELINE_SETS = 256
BASELINE_SEED = 0


@dataclass(frozen=True)
class LabelFreeScores:
    """Each unit's clarity, polysemanticity and redundancy, float32 [K] each (NaN where undefined)."""

    clarity: Tensor
    polysemanticity: Tensor
    redundancy: Tensor


def _unit_rows(embeddings: Tensor) -> Tensor:
    return torch.nn.functional.normalize(embeddings.double(), dim=-1)


def clarity(embeddings: Tensor) -> float:
    """Return the mean cosine over all pairs of the embeddings [n, D] (n >= 2), a float in [-1, 1]."""
    return float(_batched_clarity(embeddings.unsqueeze(0))[0])


def _batched_clarity(embeddings: Tensor) -> Tensor:
    """Return the mean pairwise cosine [B] of each set of embeddings [B, n, D]."""
    n = embeddings.shape[1]
    if n < 2:
        raise ValueError(f"clarity needs at least 2 embeddings, got {n}; give a unit at least 2 top images")
    unit = _unit_rows(embeddings)
    # sum over pairs i != j of u_i . u_j = |sum u|^2 - n, as every u has norm 1
    total = (unit.sum(dim=1) ** 2).sum(dim=1)
    return ((total - n) / (n * (n - 1))).float()


def polysemanticity(embeddings: Tensor) -> float:
    """Return 1 - the cosine of the two k-means centres of the embeddings [n, D] (n >= 2), in [0, 2]."""
    return float(_batched_polysemanticity(embeddings.unsqueeze(0))[0])


def _batched_polysemanticity(embeddings: Tensor) -> Tensor:
    """Return the polysemanticity [B] of each set of embeddings [B, n, D], by a deterministic two-centre k-means.

    The centres start at each set's two least similar embeddings (ties to the lower index), so no seed is needed;
    an empty cluster keeps its centre. The centres are the clusters' means of the unit-normalised embeddings.
    """
    batch, n, _ = embeddings.shape
    if n < 2:
        raise ValueError(f"polysemanticity needs at least 2 embeddings, got {n}; give a unit at least 2 top images")
    unit = _unit_rows(embeddings)
    similarity = unit @ unit.transpose(1, 2)
    flat = similarity.reshape(batch, -1).argmin(dim=1)  # argmin returns the first minimum: the lower indices
    rows = torch.arange(batch)
    centres = torch.stack([unit[rows, flat // n], unit[rows, flat % n]], dim=1)  # [B, 2, D]
    for _ in range(KMEANS_ITERATIONS):
        distances = torch.cdist(unit, centres)  # [B, n, 2]
        second = distances[..., 1] < distances[..., 0]  # ties join the first centre
        members = torch.stack([~second, second], dim=2).double()  # [B, n, 2]
        counts = members.sum(dim=1)  # [B, 2]
        sums = members.transpose(1, 2) @ unit  # [B, 2, D]
        updated = torch.where(counts.unsqueeze(2) > 0, sums / counts.clamp(min=1).unsqueeze(2), centres)
        if torch.equal(updated, centres):
            break
        centres = updated
    cosine = torch.nn.functional.cosine_similarity(centres[:, 0], centres[:, 1], dim=1)
    return (1 - cosine).float()


def redundancy(mean_embeddings: Tensor) -> Tensor:
    """Return float32 [K]: each unit's highest cosine of its mean embedding [K, D] to another unit's (NaN if K = 1)."""
    unit = _unit_rows(mean_embeddings)
    similarity = unit @ unit.T
    similarity.fill_diagonal_(-torch.inf)
    highest = similarity.max(dim=1).values if len(unit) > 1 else torch.full((len(unit),), torch.nan)
    return highest.float()


def layer_label_free_scores(
    image_embeddings: Tensor, top_indices: Tensor, n_top: int = LABEL_FREE_TOP_IMAGES
) -> LabelFreeScores:
    """Return every unit's scores from the embeddings [N, D] of its top images (`top_indices` [K, >= 2], best first)."""
    n_top = min(n_top, top_indices.shape[1])
    tops = image_embeddings[top_indices[:, :n_top]]  # [K, n_top, D]
    return _scores(tops)


def random_baseline(
    image_embeddings: Tensor, n_top: int, n_sets: int = BASELINE_SETS, seed: int = BASELINE_SEED
) -> LabelFreeScores:
    """Return the scores [n_sets] of random sets of `n_top` distinct probe images (seeded): what chance gives."""
    n_images = image_embeddings.shape[0]
    n_top = min(n_top, n_images)
    return _scores(image_embeddings[random_image_sets(n_images, n_top, n_sets, seed)])


def random_image_sets(n_images: int, n_top: int, n_sets: int, seed: int = BASELINE_SEED) -> Tensor:
    """Return [n_sets, n_top] indices of images, distinct within each set, drawn uniformly (seeded).

    Drawing with replacement and drawing again the few sets that repeat an image costs O(n_sets * n_top), not the
    O(n_sets * n_images) of a permutation per set (seconds on 50,000 images); where repeats are likely (fewer than
    4 n_top² images) the permutations are cheap and used instead.
    """
    generator = torch.Generator().manual_seed(seed)
    if n_images < 4 * n_top * n_top:
        return torch.stack([torch.randperm(n_images, generator=generator)[:n_top] for _ in range(n_sets)])
    sets = torch.randint(n_images, (n_sets, n_top), generator=generator)
    while True:
        ordered = sets.sort(dim=1).values
        repeating = (ordered[:, 1:] == ordered[:, :-1]).any(dim=1).nonzero()[:, 0]
        if len(repeating) == 0:
            return sets
        sets[repeating] = torch.randint(n_images, (len(repeating), n_top), generator=generator)


def _scores(tops: Tensor) -> LabelFreeScores:
    """Return the scores of sets of top-image embeddings [K, n, D]."""
    return LabelFreeScores(
        clarity=_batched_clarity(tops),
        polysemanticity=_batched_polysemanticity(tops),
        redundancy=redundancy(_unit_rows(tops).mean(dim=1)),
    )
