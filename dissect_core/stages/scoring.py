"""Scoring as a stage over blocks of a layer's neurons.

Soft-WPMI and WPMI score a neuron from its own top images (`WeightedLogKernel.log_p_given_neuron`: the same
formula and slot order whichever neurons share its block), minus lam * log p(m), where p(m) is the mean over all
the layer's neurons. A block therefore returns its totals and its `ConceptPartials`; once every block has, the
layer's log p(m) (`log_p_concept`) turns each block's totals into scores. The cosine-type functions normalise
each neuron's own column, so a block's scores are the layer's rows. Rank-reorder draws its baselines from one
random stream across the layer's neurons, so it runs as one block, and only up to `RANK_REORDER_MAX_CELLS`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import Tensor

from dissect_core.errors import DissectError
from dissect_core.labels import label_neurons
from dissect_core.results import NeuronLabel
from dissect_core.similarity.cosine import CosineSource, DenseCosine, FactoredCosine
from dissect_core.similarity.functions import (
    DEFAULT_MEMORY_BUDGET_BYTES,
    get_similarity,
    top_image_indices,
    weighted_log_kernel,
)
from dissect_core.similarity.kernel import ConceptPartials, concept_partials, log_p_concept, pmi_scores
from dissect_core.stages.device_totals import log_p_given_neuron_on

#: Rank-reorder sorts every neuron's top 5 % of images by each concept's cosine: at 1.28 M images x 20k concepts
#: x 2,048 units that is 2.6e12 cosines. Under a distributed executor it runs in one task, up to this many
#: (images x neurons) activations (the paper's 50,000 images x 2,048 units).
RANK_REORDER_MAX_CELLS = 50_000 * 2_048


@dataclass(frozen=True)
class BlockTotals:
    """A block of neurons' float64 totals log p(m | B_k) [K_b, C] and their share of log p(m)."""

    totals: np.ndarray
    partials: ConceptPartials


def dense_cosines_fit(n_images: int, n_concepts: int) -> bool:
    """Return whether the dense image x concept cosine matrix fits the memory budget (`layer_cosines` builds it)."""
    return n_images * n_concepts * 4 <= DEFAULT_MEMORY_BUDGET_BYTES


def layer_cosines(image_embeddings: Tensor, text_embeddings: Tensor, unit_images: Tensor | None = None) -> CosineSource:
    """Return the image x concept cosines: dense when the matrix fits the memory budget, else factored.

    `unit_images`: the image embeddings already normalised (`unit_rows`, e.g. into a mapped file), used as the
    factored matrix's image factor instead of a normalised copy of `image_embeddings` (the same bits).
    """
    if unit_images is None:
        factored = FactoredCosine(image_embeddings, text_embeddings)
    else:
        factored = FactoredCosine(unit_images, text_embeddings, images_normalised=True)
    return DenseCosine(factored.dense()) if dense_cosines_fit(len(image_embeddings), len(text_embeddings)) else factored


def unit_rows(embeddings: Tensor, rows_per_part: int) -> Iterator[tuple[int, Tensor]]:
    """Yield (first row, rows normalised to unit length) for `rows_per_part` rows of `embeddings` at a time: row by
    row what `FactoredCosine` normalises whole, bit for bit."""
    for start in range(0, len(embeddings), rows_per_part):
        yield start, torch.nn.functional.normalize(embeddings[start : start + rows_per_part].float(), dim=1)


def needs_layer_normaliser(similarity: str) -> bool:
    """Return whether `similarity`'s scores need every neuron's totals (a PMI over the layer)."""
    return weighted_log_kernel(similarity, {}) is not None


def check_blocks(similarity: str, n_images: int, n_neurons: int) -> None:
    """Raise when a distributed run cannot score `similarity` on a layer of `n_neurons` over `n_images` images."""
    if similarity == "rank_reorder" and n_images * n_neurons > RANK_REORDER_MAX_CELLS:
        raise DissectError(
            f"rank_reorder is not a streaming sum: it ranks each neuron's top images by every concept, in one task "
            f"over the whole layer, and {n_images:,} images x {n_neurons:,} neurons is past its limit of "
            f"{RANK_REORDER_MAX_CELLS:,} under the ray executor; use --executor local, fewer probe images, or a "
            "similarity that streams (soft_wpmi, wpmi, cos_similarity, cos_similarity_cubed)"
        )


def block_totals(
    similarity: str,
    params: Mapping[str, Any],
    cosine: CosineSource,
    activations: Tensor,
    device: torch.device | None = None,
) -> BlockTotals:
    """Return the totals and log p(m) partials of the neurons (columns) of `activations` under soft-WPMI or WPMI:
    by the compiled CPU kernel, or in torch on `device` when it is a GPU (`dissect_core.stages.device_totals`)."""
    kernel = weighted_log_kernel(similarity, params)
    if kernel is None:
        raise DissectError(f"{similarity} has no log p(m | B_k) totals; score its blocks with `block_scores`")
    if device is not None and device.type != "cpu":
        totals = log_p_given_neuron_on(kernel, cosine, activations, device)
    else:
        totals = kernel.log_p_given_neuron(cosine, activations)
    return BlockTotals(totals, concept_partials(totals))


def similarity_on(
    similarity: str, params: Mapping[str, Any], device: torch.device | None = None
) -> Callable[[CosineSource, Tensor], Tensor]:
    """Return `similarity`'s scores (cosines, activations) -> [K, C] with `params`, soft-WPMI's and WPMI's totals on
    `device` when it is a GPU (their PMI over the neurons given, as `get_similarity` gives it, on the CPU)."""
    kernel = weighted_log_kernel(similarity, params)
    function = get_similarity(similarity)
    if kernel is None or device is None or device.type == "cpu":
        return lambda cosine, activations: function(cosine, activations, **params)

    def scores(cosine: CosineSource, activations: Tensor) -> Tensor:
        totals = block_totals(similarity, params, cosine, activations, device).totals
        return torch.from_numpy(pmi_scores(totals, log_p_concept([concept_partials(totals)]), kernel.lam))

    return scores


def layer_log_p_concept(parts: Sequence[ConceptPartials]) -> np.ndarray:
    """Return the layer's float64 log p(m) [C] from every block's partials."""
    return log_p_concept(parts)


def block_scores(
    similarity: str,
    params: Mapping[str, Any],
    cosine: CosineSource,
    activations: Tensor,
    totals: BlockTotals | None = None,
    log_p: np.ndarray | None = None,
) -> Tensor:
    """Return float32 scores [K_b, C] of a block of neurons: from its `totals` and the layer's `log_p` for soft-WPMI
    and WPMI, else the similarity function on the block's columns."""
    kernel = weighted_log_kernel(similarity, params)
    if kernel is None:
        return get_similarity(similarity)(cosine, activations, **params)
    if totals is None or log_p is None:
        raise DissectError(f"{similarity} scores a block from its totals and the layer's log p(m); pass both")
    return torch.from_numpy(pmi_scores(totals.totals, log_p, kernel.lam))


@dataclass(frozen=True)
class BlockLabels:
    """A block's labels (units numbered within the layer) and each neuron's top images for concept search."""

    neurons: list[NeuronLabel]
    top_indices: Tensor  # [K_b, search top_k]


def label_block(
    scores: Tensor, concepts: Sequence[str], first_unit: int, activations: Tensor, search_top_k: int
) -> BlockLabels:
    """Return the labels of a block of neurons starting at unit `first_unit`, from its scores [K_b, C]."""
    neurons = [replace(neuron, unit=first_unit + neuron.unit) for neuron in label_neurons(scores, concepts)]
    return BlockLabels(neurons, top_image_indices(activations, search_top_k))
