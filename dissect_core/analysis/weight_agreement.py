"""The CLIP-Dissect paper's weight finding (Section 4.1, Fig. 5), replayed on one run's weights.

For a weight matrix W [C, D] joining labelled units (D) to named classes (C), and S [C, D] the cosine between each
class name and each unit's label in the run's own text encoder: the Pearson r between all weights and S (the paper:
0.120), the r between each unit's label score and its largest outgoing weight (0.386), the mean S of the top-k
weighted pairs against all pairs (Fig. 5b), and a permutation null (W's rows shuffled, so classes meet other
classes' weights) whose one-sided p-value tells a trained network from chance.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from dissect_core.errors import DissectError
from dissect_core.topk import stable_topk_positions

#: Permutations of the null, and the seed that draws them.
N_PERMUTATIONS = 200
PERMUTATION_SEED = 0


@dataclass(frozen=True)
class WeightConceptAgreement:
    """How well the weights from `from_layer` to the classes of `to_layer` follow their units' labels.

    `pearson_r`: r between every weight and its pair's label–class-name cosine; `p_value`: the one-sided share of
    row-shuffled weight matrices reaching that r (add-one); `top_unit_r`: r between each upstream unit's label score
    and its largest outgoing weight; `all_pairs_mean`: the mean cosine over all pairs; `curve`: (k, mean cosine of
    the k largest weights) for k = 4, 8, 16, ...
    """

    from_layer: str
    to_layer: str
    pearson_r: float
    p_value: float
    top_unit_r: float
    all_pairs_mean: float
    curve: list[tuple[int, float]]


def pearson_r(x: Tensor, y: Tensor) -> float:
    """Return the Pearson correlation of two equally long vectors (0.0 when either is constant)."""
    x = x.double().flatten() - x.double().mean()
    y = y.double().flatten() - y.double().mean()
    denominator = float(x.norm() * y.norm())
    return float(x @ y) / denominator if denominator > 0 else 0.0


def label_class_cosines(class_embeddings: Tensor, label_embeddings: Tensor) -> Tensor:
    """Return S [C, D]: the cosine between each class name's embedding [C, E] and each unit label's [D, E]."""
    classes = torch.nn.functional.normalize(class_embeddings.double(), dim=1)
    labels = torch.nn.functional.normalize(label_embeddings.double(), dim=1)
    return (classes @ labels.T).float()


def top_weight_mean_similarity(weights: Tensor, similarity: Tensor, k: int) -> float:
    """Return the mean similarity of the k pairs with the largest weights (the paper's top-k cosine)."""
    positions = stable_topk_positions(weights.flatten().float().unsqueeze(0), min(k, weights.numel()))[0]
    return float(similarity.flatten()[positions].double().mean())


def _curve_ks(n_pairs: int) -> list[int]:
    """Return k = 4, 8, 16, ... below the number of pairs."""
    ks, k = [], 4
    while k < n_pairs:
        ks.append(k)
        k *= 2
    return ks


def permutation_p_value(weights: Tensor, similarity: Tensor, observed: float, n_permutations: int, seed: int) -> float:
    """Return the one-sided p of `observed` r among rows-shuffled weights: (1 + #{r_null >= observed}) / (1 + n).

    With W and S centred, a permutation π of W's rows gives the numerator Σ_c G[π(c), c] where G = W Sᵀ [C, C], and
    the norms do not change: one matrix product serves every permutation.
    """
    centred_weights = weights.double() - weights.double().mean()
    centred_similarity = similarity.double() - similarity.double().mean()
    denominator = float(centred_weights.norm() * centred_similarity.norm())
    if denominator == 0:
        return 1.0
    gram = centred_weights @ centred_similarity.T
    generator = torch.Generator().manual_seed(seed)
    n_classes = weights.shape[0]
    permutations = torch.stack([torch.randperm(n_classes, generator=generator) for _ in range(n_permutations)])
    null_r = gram[permutations, torch.arange(n_classes)].sum(dim=1) / denominator  # [n_permutations]
    reached = int((null_r >= observed - 1e-12).sum())
    return (1 + reached) / (1 + n_permutations)


def weight_concept_agreement(
    from_layer: str,
    to_layer: str,
    weights: Tensor,
    similarity: Tensor,
    label_scores: Tensor,
    *,
    n_permutations: int = N_PERMUTATIONS,
    seed: int = PERMUTATION_SEED,
) -> WeightConceptAgreement:
    """Return the paper's statistics for weights [C, D] against label–class cosines `similarity` [C, D], with the
    upstream units' label scores [D]."""
    if weights.shape != similarity.shape or weights.dim() != 2 or label_scores.shape != (weights.shape[1],):
        raise DissectError(
            f"weights {tuple(weights.shape)}, similarities {tuple(similarity.shape)} and label scores "
            f"{tuple(label_scores.shape)} do not match; pass [C, D], [C, D] and [D]"
        )
    if weights.shape[0] < 2:
        raise DissectError("a permutation null needs at least 2 classes; pass a classifier with more outputs")
    r = pearson_r(weights, similarity)
    return WeightConceptAgreement(
        from_layer=from_layer,
        to_layer=to_layer,
        pearson_r=r,
        p_value=permutation_p_value(weights, similarity, r, n_permutations, seed),
        top_unit_r=pearson_r(label_scores, weights.max(dim=0).values),
        all_pairs_mean=float(similarity.double().mean()),
        curve=[(k, top_weight_mean_similarity(weights, similarity, k)) for k in _curve_ks(weights.numel())],
    )
