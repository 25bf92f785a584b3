"""Per-image summaries of the image × concept cosine matrix, taken in one read of its rows.

The log normalisers (logsumexp over concepts of a*cos, what typed concepts are scored against) and each image's
`carry_rank`-th highest cosine (the bar a concept typed later must reach to count among the image's top
concepts, see `dissect_core.analysis.concept_evidence`) come from the same blocks of rows, so storing both costs no
second pass over the matrix.
"""

from __future__ import annotations

import torch
from torch import Tensor

from dissect_core.similarity.cosine import CosineSource, as_cosine_source

#: An image carries a concept when the concept would be among its CARRY_RANK highest-cosine concepts.
CARRY_RANK = 5


def image_row_summaries(
    cosine: Tensor | CosineSource, a: float, carry_rank: int = CARRY_RANK, block: int = 512
) -> tuple[Tensor, Tensor]:
    """Return float64 log normalisers [N] (logsumexp of a*cos) and float32 `carry_rank`-th highest cosines [N].

    A concept set smaller than `carry_rank` gives each image's lowest cosine instead (every concept counts).
    """
    if carry_rank < 1:
        raise ValueError(f"carry_rank must be at least 1, got {carry_rank}")
    cos = as_cosine_source(cosine)
    rank = min(carry_rank, cos.n_concepts)
    normalisers = torch.empty(cos.n_images, dtype=torch.float64)
    carry = torch.empty(cos.n_images, dtype=torch.float32)
    index = torch.arange(cos.n_images)
    for start in range(0, cos.n_images, block):
        rows = cos.rows(index[start : start + block])
        # The same float64 arithmetic as `image_log_normalisers`, so the stored values do not change.
        normalisers[start : start + block] = torch.logsumexp(a * rows.double(), dim=1).cpu()
        if rank:
            carry[start : start + block] = torch.topk(rows.float(), rank, dim=1).values[:, -1].cpu()
    return normalisers, carry
