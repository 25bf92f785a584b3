"""The five similarity functions of CLIP-Dissect (Oikarinen & Weng, ICLR 2023), with the paper's defaults.

Every function has the signature `fn(image_concept_cos, activations, **params) -> Tensor[K, C]`:
`image_concept_cos` is the [N, C] cosine between N probe images and C concepts (a tensor or any
`CosineSource`), `activations` the [N, K] pooled activations of K neurons; higher scores are better.

Soft-WPMI and WPMI share one kernel, log p(m | B_k) = sum_j log(c_j + w_j * P[i_j, m]) over neuron k's
top images i_j, with P = softmax(a * cos) over concepts. It is computed as sum_j log w_j + sum_j
log(P + c_j / w_j), with P built once per top image from a float64 normaliser; a compiled kernel
(`dissect_core.similarity.kernel`) multiplies groups of factors in float64 before each logarithm, slab by
slab of concepts, then takes the PMI. P rows are built for as many top images at once as `memory_budget_bytes`
allows (all of them, below the paper's scale), so memory stays bounded at any probe-set size.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from dissect_core.errors import DissectError
from dissect_core.similarity.cosine import CosineSource, as_cosine_source
from dissect_core.similarity.kernel import (
    WeightedLogAccumulator,
    concept_partials,
    log_p_concept,
    pmi_scores,
    row_sums_float64,
)
from dissect_core.topk import stable_topk, stable_topk_positions

DEFAULT_MEMORY_BUDGET_BYTES = 1 << 30
#: Images per block of P rows when the budget leaves less room: progress over memory-starved settings.
_MIN_BLOCK_IMAGES = 64
#: The paper's probe set (ImageNet validation) size, at which its top_k defaults were chosen.
PAPER_PROBE_SIZE = 50_000


def adaptive_top_k(paper_top_k: int, n_images: int, floor: int = 5) -> int:
    """Return the paper's top_k scaled to the probe set's size, never below `floor` nor above N.

    The paper's soft-WPMI top_k = 100 is 0.2% of its 50,000 probe images; on a 1,300-image probe set the
    same 100 images span dozens of classes and labels blur (see bench/bench_label_quality.py).
    """
    scaled = round(paper_top_k * n_images / PAPER_PROBE_SIZE)
    return max(1, min(n_images, max(floor, scaled)))


def _check_top_k(top_k: int, n_images: int) -> None:
    if top_k < 1:
        raise DissectError(f"top_k must be at least 1, got {top_k}")
    if top_k > n_images:
        raise DissectError(
            f"top_k={top_k} is larger than the probe set ({n_images} images); use a top_k of at most "
            f"{n_images} or a larger probe set"
        )


def _check_shapes(cos: CosineSource, activations: Tensor) -> None:
    if activations.dim() != 2:
        raise DissectError(f"activations must be [images, neurons], got shape {tuple(activations.shape)}")
    if activations.shape[0] != cos.n_images:
        raise DissectError(
            f"activations cover {activations.shape[0]} images but the cosine matrix {cos.n_images}; "
            "record both on the same probe set"
        )


def top_image_indices(activations: Tensor, top_k: int) -> Tensor:
    """Return [K, top_k] indices of each neuron's most activating images, most activating first, lower index on ties."""
    _check_top_k(top_k, activations.shape[0])
    return stable_topk_positions(activations.float().T, top_k)


def image_log_normalisers(
    cosine: Tensor | CosineSource, a: float, image_index: Tensor | None = None, block: int = 512
) -> Tensor:
    """Return float64 logsumexp over concepts of a*cos for each image (all, or those in image_index)."""
    cos = as_cosine_source(cosine)
    index = torch.arange(cos.n_images) if image_index is None else image_index
    out = torch.empty(len(index), dtype=torch.float64)
    for start in range(0, len(index), block):
        rows = cos.rows(index[start : start + block]).double()
        out[start : start + block] = torch.logsumexp(a * rows, dim=1).cpu()
    return out


def _softmax_rows(cos: CosineSource, image_index: Tensor, a: float, block: int = 256) -> Tensor:
    """Return float32 softmax rows P[image_index] over concepts (one read of the rows).

    Each row's sum of exponentials is accumulated in float64 and the shifted logits stay small, so P carries
    about float32's own relative error (~1e-7), not that of a float32 sum of tens of thousands of terms. The
    work happens in place, block by block: fresh multi-hundred-megabyte temporaries cost more in page faults
    than the arithmetic.
    """
    out = torch.empty(len(image_index), cos.n_concepts)
    for start in range(0, len(image_index), block):
        rows = out[start : start + block]
        rows.copy_(cos.rows(image_index[start : start + block]))
        rows.mul_(a)
        rows.sub_(rows.amax(dim=1, keepdim=True)).exp_()
        totals = torch.from_numpy(row_sums_float64(rows.numpy()))
        rows.mul_(totals.reciprocal().float().unsqueeze(1))
    return out


@dataclass(frozen=True)
class WeightedLogKernel:
    """log p(m | B_k) = sum_j log(offsets_j + weights_j * P[i_j, m]) over each neuron k's top_k images, and its PMI
    log p(m | B_k) - lam * log p(m): soft-WPMI's and WPMI's shared kernel with its settings."""

    weights: Tensor  # [top_k] float64, > 0
    offsets: Tensor  # [top_k] float64, > 0
    top_k: int
    a: float
    lam: float
    memory_budget_bytes: int

    def log_p_given_neuron(self, cos: CosineSource, activations: Tensor) -> np.ndarray:
        """Return float64 [K, C] log p(m | B_k) of each neuron's top images, factor_j = w_j (P + c_j / w_j).

        P rows are built for blocks of the top images, as many as fit the memory budget next to the K x C
        float64 totals (usually all of them, in one block); each image's row is built once. A neuron's totals
        depend on its own column only, so any block of neurons gets the rows a whole layer would.
        """
        _check_shapes(cos, activations)
        top_idx = top_image_indices(activations, self.top_k)
        n_neurons, top_k = top_idx.shape
        n_concepts = cos.n_concepts
        unique_images = torch.unique(top_idx)
        free_bytes = self.memory_budget_bytes - n_neurons * n_concepts * 8
        block_images = max(_MIN_BLOCK_IMAGES, free_bytes // (4 * n_concepts))
        accumulator = WeightedLogAccumulator(
            n_neurons, n_concepts, (self.offsets / self.weights).numpy(), float(torch.log(self.weights).sum())
        )
        slot_images = top_idx.reshape(-1)  # slot s is neuron s // top_k at position s % top_k
        for start in range(0, len(unique_images), block_images):
            block = unique_images[start : start + block_images]
            slots = torch.nonzero((slot_images >= block[0]) & (slot_images <= block[-1])).squeeze(1)
            probabilities = _softmax_rows(cos, block, self.a)
            accumulator.add_block(
                probabilities.numpy(),
                slot_neurons=(slots // top_k).numpy(),
                slot_rows=torch.searchsorted(block, slot_images[slots]).numpy(),
                slot_positions=(slots % top_k).numpy(),
            )
            del probabilities
        return accumulator.totals

    def scores(self, cos: CosineSource, activations: Tensor) -> Tensor:
        """Return float32 [K, C] log p(m | B_k) - lam * log p(m), p(m) the mean over the K neurons given."""
        totals = self.log_p_given_neuron(cos, activations)
        return torch.from_numpy(pmi_scores(totals, log_p_concept([concept_partials(totals)]), self.lam))


def _pmi_scores(log_p_given_neuron: Tensor, lam: float) -> Tensor:
    """Return log p(m|B_k) - lam * log p(m), with p(m) the mean over the layer's neurons (float32)."""
    n_neurons = log_p_given_neuron.shape[0]
    log_p_concept = torch.logsumexp(log_p_given_neuron, dim=0, keepdim=True) - math.log(n_neurons)
    return (log_p_given_neuron - lam * log_p_concept).float()


def soft_wpmi_position_weights(top_k: int, p_start: float, p_end: float) -> Tensor:
    """Return the paper's linearly decaying weights p_j = p_start - (j / top_k)(p_start - p_end)."""
    positions = torch.arange(top_k, dtype=torch.float64)
    return p_start - positions / top_k * (p_start - p_end)


def soft_wpmi(
    image_concept_cos: Tensor | CosineSource,
    activations: Tensor,
    top_k: int = 100,
    a: float = 10.0,
    lam: float = 1.0,
    p_start: float = 0.998,
    p_end: float = 0.97,
    min_prob: float = 1e-7,
    memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET_BYTES,
) -> Tensor:
    """Return soft-WPMI scores [K, C]: the paper's default similarity (Eq. 4–6)."""
    kernel = _soft_wpmi_kernel(top_k, a, lam, p_start, p_end, min_prob, memory_budget_bytes)
    return kernel.scores(as_cosine_source(image_concept_cos), activations)


def _soft_wpmi_kernel(
    top_k: int, a: float, lam: float, p_start: float, p_end: float, min_prob: float, memory_budget_bytes: int
) -> WeightedLogKernel:
    """Return soft-WPMI's kernel: linearly decaying weights p_j, offsets 1 - p_j + min_prob."""
    weights = soft_wpmi_position_weights(top_k, p_start, p_end)
    return WeightedLogKernel(weights, 1 - weights + min_prob, top_k, a, lam, memory_budget_bytes)


def wpmi(
    image_concept_cos: Tensor | CosineSource,
    activations: Tensor,
    top_k: int = 28,
    a: float = 2.0,
    lam: float = 0.6,
    min_prob: float = 1e-7,
    memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET_BYTES,
) -> Tensor:
    """Return WPMI scores [K, C]: sum over the top_k images of log(P + min_prob), minus lam * log p(m)."""
    kernel = _wpmi_kernel(top_k, a, lam, min_prob, memory_budget_bytes)
    return kernel.scores(as_cosine_source(image_concept_cos), activations)


def _wpmi_kernel(top_k: int, a: float, lam: float, min_prob: float, memory_budget_bytes: int) -> WeightedLogKernel:
    """Return WPMI's kernel: unit weights, offsets min_prob."""
    weights = torch.ones(top_k, dtype=torch.float64)
    offsets = torch.full((top_k,), min_prob, dtype=torch.float64)
    return WeightedLogKernel(weights, offsets, top_k, a, lam, memory_budget_bytes)


def _concept_blocks(n_concepts: int, n_images: int, budget_bytes: int) -> range:
    step = max(1, min(n_concepts, budget_bytes // (4 * max(1, n_images) * 3)))
    return range(0, n_concepts, step)


def cos_similarity(
    image_concept_cos: Tensor | CosineSource,
    activations: Tensor,
    memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET_BYTES,
) -> Tensor:
    """Return the cosine between each neuron's activation column and each concept's column (no centring)."""
    cos = as_cosine_source(image_concept_cos)
    _check_shapes(cos, activations)
    neurons = torch.nn.functional.normalize(activations.float(), dim=0)
    out = torch.empty(activations.shape[1], cos.n_concepts)
    blocks = _concept_blocks(cos.n_concepts, cos.n_images, memory_budget_bytes)
    for start in blocks:
        stop = min(start + blocks.step, cos.n_concepts)
        columns = torch.nn.functional.normalize(cos.columns(start, stop).float(), dim=0)
        out[:, start:stop] = neurons.T @ columns
    return out


def _cube_and_normalise(matrix: Tensor, min_norm: float) -> Tensor:
    cubed = (matrix - matrix.mean(dim=0, keepdim=True)) ** 3
    return cubed / torch.clamp(torch.linalg.vector_norm(cubed, dim=0, keepdim=True), min=min_norm)


def cos_similarity_cubed(
    image_concept_cos: Tensor | CosineSource,
    activations: Tensor,
    min_norm: float = 1e-3,
    memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET_BYTES,
) -> Tensor:
    """Return the dot product of columns centred over images, cubed and L2-normalised (norm >= min_norm)."""
    cos = as_cosine_source(image_concept_cos)
    _check_shapes(cos, activations)
    neurons = _cube_and_normalise(activations.double(), min_norm)
    out = torch.empty(activations.shape[1], cos.n_concepts)
    blocks = _concept_blocks(cos.n_concepts, cos.n_images, memory_budget_bytes // 2)
    for start in blocks:
        stop = min(start + blocks.step, cos.n_concepts)
        columns = _cube_and_normalise(cos.columns(start, stop).double(), min_norm)
        out[:, start:stop] = (neurons.T @ columns).float()
    return out


def rank_reorder(
    image_concept_cos: Tensor | CosineSource,
    activations: Tensor,
    p: float = 3.0,
    top_fraction: float = 0.05,
    scale_p: float = 0.5,
    baseline_permutations: int = 5,
    seed: int = 0,
    min_mean_cos: float = 1e-3,
) -> Tensor:
    """Return minus the rank-reorder error (paper Table 3): how well a concept's cosines order the top images.

    For neuron k and its top n = top_fraction * N images, the activations re-sorted by concept m's cosine are
    compared with the real ones: mean |a - a_reordered|^p, divided by the same error under random orders
    (a seeded baseline) and by (mean cosine over those images)^scale_p (clamped at `min_mean_cos`, since
    encoders other than CLIP can give negative cosines).
    """
    cos = as_cosine_source(image_concept_cos)
    _check_shapes(cos, activations)
    n_top = int(cos.n_images * top_fraction)
    if n_top < 2:
        raise DissectError(
            f"rank_reorder uses top_fraction={top_fraction} of {cos.n_images} images = {n_top} images; it "
            "needs at least 2: raise top_fraction or use a larger probe set"
        )
    values, indices = stable_topk(activations.float().T, n_top)  # most activating first, lower index on ties
    top_values, top_idx = values.T, indices.T  # [n_top, K]
    generator = torch.Generator().manual_seed(seed)
    out = torch.empty(activations.shape[1], cos.n_concepts)
    for unit in range(activations.shape[1]):
        rows = cos.rows(top_idx[:, unit]).float()  # [n_top, C]
        mean_cos = rows.mean(dim=0).clamp(min=min_mean_cos)
        ranks = rows.argsort(dim=0).argsort(dim=0)  # rank 0 = lowest cosine
        target = top_values[:, unit]  # descending
        ascending = target.flip(0)
        shuffled = torch.stack(
            [ascending[torch.randperm(n_top, generator=generator)] for _ in range(baseline_permutations)], 1
        )
        baseline = ((ascending.unsqueeze(1) - shuffled).abs() ** p).mean().clamp(min=1e-12)
        reordered = ascending[ranks]  # the activation each image would have if ordered by this concept
        errors = ((target.unsqueeze(1) - reordered).abs() ** p).mean(dim=0) / baseline
        out[unit] = -(errors / mean_cos**scale_p)
    return out


def _signature_defaults(function: Callable[..., Any]) -> dict[str, Any]:
    """Return the default value of each of `function`'s parameters that has one."""
    return {
        name: parameter.default
        for name, parameter in inspect.signature(function).parameters.items()
        if parameter.default is not inspect.Parameter.empty
    }


SimilarityFn = Callable[..., Tensor]

SIMILARITY_FUNCTIONS: dict[str, SimilarityFn] = {
    "soft_wpmi": soft_wpmi,
    "wpmi": wpmi,
    "cos_similarity": cos_similarity,
    "cos_similarity_cubed": cos_similarity_cubed,
    "rank_reorder": rank_reorder,
}

#: The paper's top_k of the functions that have one (their signature defaults), which `adaptive_top_k` scales to
#: the probe set unless the user sets top_k.
ADAPTIVE_TOP_K: dict[str, int] = {
    name: _signature_defaults(SIMILARITY_FUNCTIONS[name])["top_k"] for name in ("soft_wpmi", "wpmi")
}


#: The functions whose scores are a PMI over the layer's neurons, and their kernels' builders.
_KERNEL_BUILDERS: dict[str, Callable[..., WeightedLogKernel]] = {"soft_wpmi": _soft_wpmi_kernel, "wpmi": _wpmi_kernel}


def weighted_log_kernel(name: str, params: Mapping[str, Any]) -> WeightedLogKernel | None:
    """Return the kernel that soft-WPMI or WPMI runs with `params` (their defaults filled in); None for the
    similarity functions without one (their scores of a neuron depend on its own column only)."""
    builder = _KERNEL_BUILDERS.get(name)
    if builder is None:
        return None
    return builder(**{**_signature_defaults(SIMILARITY_FUNCTIONS[name]), **params})


def get_similarity(name: str) -> SimilarityFn:
    """Return the similarity function called `name`, or raise naming the valid choices."""
    try:
        return SIMILARITY_FUNCTIONS[name]
    except KeyError:
        raise DissectError(
            f"unknown similarity function {name!r}; choose one of {', '.join(SIMILARITY_FUNCTIONS)}"
        ) from None


def check_similarity_params(name: str, params: Mapping[str, Any]) -> None:
    """Raise DissectError unless `name` is a similarity function that takes every parameter in `params`."""
    function = get_similarity(name)
    accepted = set(inspect.signature(function).parameters) - {"image_concept_cos", "activations"}
    unknown = set(params) - accepted
    if unknown:
        raise DissectError(
            f"{name} has no parameter {', '.join(sorted(unknown))}; its parameters are {', '.join(sorted(accepted))}"
        )


def resolve_similarity_params(name: str, params: dict[str, Any], n_images: int) -> dict[str, Any]:
    """Return the parameters a run will use: the user's, plus top_k adapted to the probe set if unset."""
    check_similarity_params(name, params)
    resolved = dict(params)
    if name in ADAPTIVE_TOP_K and "top_k" not in resolved:
        resolved["top_k"] = adaptive_top_k(ADAPTIVE_TOP_K[name], n_images)
    return resolved


#: The soft-WPMI settings that score concepts typed after a run (top_k is the run's): soft_wpmi's defaults.
CONCEPT_SEARCH_DEFAULTS: dict[str, float] = {
    name: value
    for name, value in _signature_defaults(soft_wpmi).items()
    if name in ("a", "lam", "p_start", "p_end", "min_prob")
}


def score_new_concepts(
    image_embeddings: Tensor,
    concept_embeddings: Tensor,
    log_normalisers: Tensor,
    top_indices: Tensor,
    *,
    a: float = CONCEPT_SEARCH_DEFAULTS["a"],
    lam: float = CONCEPT_SEARCH_DEFAULTS["lam"],
    p_start: float = CONCEPT_SEARCH_DEFAULTS["p_start"],
    p_end: float = CONCEPT_SEARCH_DEFAULTS["p_end"],
    min_prob: float = CONCEPT_SEARCH_DEFAULTS["min_prob"],
) -> Tensor:
    """Return soft-WPMI scores [K, T] of T new concepts for a stored layer, with no pass over the images.

    Each new concept joins the run's vocabulary on its own: its softmax normaliser per image is the stored
    one (`log_normalisers`, logsumexp of a*cos over the run's concepts) plus its own term.
    """
    cos = (
        torch.nn.functional.normalize(image_embeddings.float(), dim=1)
        @ torch.nn.functional.normalize(concept_embeddings.float(), dim=1).T
    )  # [N, T]
    logits = a * cos.double()
    normalisers = torch.logaddexp(log_normalisers.double().unsqueeze(1), logits)
    probabilities = torch.exp(logits - normalisers)  # [N, T]
    top_k = top_indices.shape[1]
    weights = soft_wpmi_position_weights(top_k, p_start, p_end)
    gathered = probabilities[top_indices]  # [K, top_k, T]
    log_p_given_neuron = torch.log(1 - weights.view(1, -1, 1) + min_prob + weights.view(1, -1, 1) * gathered).sum(dim=1)
    return _pmi_scores(log_p_given_neuron, lam)
