"""Soft-WPMI's and WPMI's totals log p(m | B_k) in torch, on the device a block task was given (a GPU).

The same sum as the compiled CPU kernel (`WeightedLogKernel.log_p_given_neuron`): for neuron k with top images
i_j, log p(m | B_k) = sum_j log(P[i_j, m] + c_j / w_j) + sum_j log w_j, P the softmax rows of a * cosines.
Here each factor's logarithm is taken in float64 and summed, where the CPU kernel multiplies groups of factors
before one logarithm: the two agree to float64 rounding (labels equal but for exact near-ties), not bit for bit.
Neurons go in groups whose gathered factors [group, top_k, C] fit the memory budget; each group's softmax rows
are built on the device from its own top images' cosines (computed there from the factors when the matrix is
factored, as it is at scale: on the CPU those rows would cost more than the sum itself).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from dissect_core.similarity.cosine import CosineSource, FactoredCosine
from dissect_core.similarity.functions import DEFAULT_MEMORY_BUDGET_BYTES, WeightedLogKernel, top_image_indices


def cosine_rows_on(cosine: CosineSource, images: Tensor, device: torch.device, texts: Tensor | None = None) -> Tensor:
    """Return the cosines of `images` [len(images), C] on `device`: a factored matrix's computed there from its
    factors (`texts`: its text factor, already on `device`), any other source's rows moved there."""
    if isinstance(cosine, FactoredCosine):
        unit_texts = cosine.text_embeddings.to(device) if texts is None else texts
        return cosine.image_embeddings.index_select(0, images).to(device) @ unit_texts.T
    return cosine.rows(images).to(device)


def softmax_rows_on(
    cosine: CosineSource, images: Tensor, a: float, device: torch.device, texts: Tensor | None = None
) -> Tensor:
    """Return float32 softmax rows [len(images), C] of a * cosines on `device`, each row's sum in float64."""
    logits = cosine_rows_on(cosine, images, device, texts) * a
    exponentials = (logits - logits.amax(dim=1, keepdim=True)).exp()
    return (exponentials.double() / exponentials.double().sum(dim=1, keepdim=True)).float()


def log_p_given_neuron_on(
    kernel: WeightedLogKernel,
    cosine: CosineSource,
    activations: Tensor,
    device: torch.device,
    memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET_BYTES,
) -> np.ndarray:
    """Return float64 [K, C] log p(m | B_k) of each neuron (column of `activations`), computed on `device`."""
    top_indices = top_image_indices(activations, kernel.top_k)
    n_neurons, top_k = top_indices.shape
    shifts = (kernel.offsets / kernel.weights).to(device=device, dtype=torch.float64).view(1, top_k, 1)
    log_weight_sum = float(torch.log(kernel.weights).sum())
    group = max(1, memory_budget_bytes // (top_k * cosine.n_concepts * 8 * 2))  # factors and their logarithms
    totals = np.empty((n_neurons, cosine.n_concepts), dtype=np.float64)
    texts = cosine.text_embeddings.to(device) if isinstance(cosine, FactoredCosine) else None
    for start in range(0, n_neurons, group):
        images, slots = torch.unique(top_indices[start : start + group], return_inverse=True)
        probabilities = softmax_rows_on(cosine, images, kernel.a, device, texts)
        factors = probabilities[slots.to(device)].double() + shifts  # [group, top_k, C]
        sums = factors.log_().sum(dim=1) + log_weight_sum
        totals[start : start + len(sums)] = sums.cpu().numpy()
    return totals
