"""Each neuron's best-correlated concepts on the training images of every fold, in one pass over the concepts."""

from __future__ import annotations

import torch
from torch import Tensor

from dissect_core.evaluation.signals import ConceptSignals
from dissect_core.similarity.functions import DEFAULT_MEMORY_BUDGET_BYTES
from dissect_core.topk import merge_topk


def top_correlated_concepts(
    signals: ConceptSignals,
    activations: Tensor,
    folds: Tensor,
    n_folds: int,
    n_candidates: int,
    memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET_BYTES,
    allowed: Tensor | None = None,
) -> Tensor:
    """Return [n_folds + 1, K, n_candidates] concept indices with the highest Pearson r to each neuron, the
    higher r first and, on equal r, the lower concept index (NaN r counts as -inf), whatever the block size.

    Entry f < n_folds ranks by r on the images outside fold f (the training images of fold f); entry
    n_folds on all images. Each fold's cross products (its activations centred on its own mean, times the
    signals) are computed once, and fold f's training covariance is assembled from the other folds' products
    plus a rank-F correction for their means, so nothing fold f holds enters its ranking, not even through
    rounding. A row's ranking needs neither the neuron's own sd nor 1/n, so neither is applied. Concepts outside
    `allowed` (bool [C]; None allows all) rank last, as -inf.
    """
    n_images, n_neurons = activations.shape
    n_candidates = min(n_candidates, signals.n_concepts)
    members = [(folds == fold).nonzero().squeeze(1) for fold in range(n_folds)]
    sizes = torch.tensor([float(len(m)) for m in members], dtype=torch.float64)
    acts = activations.double()
    fold_means = torch.stack([acts[m].mean(dim=0) for m in members])  # [F, K]
    centred = [(acts[m] - fold_means[fold]).float().T.contiguous() for fold, m in enumerate(members)]
    # Each entry's running (r, concept index) top list, merged with every block's scores by global concept index.
    nothing = (torch.empty(n_neurons, 0), torch.empty(n_neurons, 0, dtype=torch.long))
    best = [nothing] * (n_folds + 1)
    # a block's signals [N, B], the folds' products [F, K, B] and one score [K, B] within the memory budget
    step = max(256, memory_budget_bytes // (4 * (n_images + n_neurons * (n_folds + 1))))
    for start in range(0, signals.n_concepts, step):
        stop = min(start + step, signals.n_concepts)
        block = signals.block(start, stop)
        concepts = torch.arange(start, stop).expand(n_neurons, -1)
        # The signals' own centring (it uses no activations), into a new tensor: under the cosine simulation a dense
        # cosine's block is a view of the run's matrix, which centring in place would change for every later reader.
        block = block - block.mean(dim=0)
        fold_blocks = [block[m] for m in members]
        products = [centred[fold] @ fold_blocks[fold] for fold in range(n_folds)]  # [K, B] each
        sums = torch.stack([b.sum(dim=0) for b in fold_blocks]).double()  # [F, B]; centred, so float32 sums suffice
        squares = torch.stack([torch.linalg.vector_norm(b, dim=0) ** 2 for b in fold_blocks]).double()
        score = torch.empty_like(products[0])  # one buffer: fresh [K, B] tensors cost more in page faults
        for entry in range(n_folds + 1):
            training = [g for g in range(n_folds) if g != entry]
            _training_covariance(products, fold_means, sizes, sums, training, out=score)
            n = float(sizes[training].sum())
            signal_sum, signal_squares = sums[training].sum(dim=0), squares[training].sum(dim=0)
            signal_sd = (signal_squares / n - (signal_sum / n) ** 2).clamp(min=0).sqrt().clamp(min=1e-12)
            score.div_(signal_sd.float())
            torch.nan_to_num_(score, nan=-torch.inf)
            if allowed is not None:
                score.masked_fill_(~allowed[start:stop], -torch.inf)
            best[entry] = merge_topk([best[entry], (score, concepts)], n_candidates)
    return torch.stack([index for _, index in best])


def _training_covariance(
    products: list[Tensor], fold_means: Tensor, sizes: Tensor, sums: Tensor, training: list[int], *, out: Tensor
) -> None:
    """Write into `out` the [K, B] covariance sums over the training folds from each fold's centred products.

    sum_i (a_i - mean_T)(b_i - nu_T) over T = sum_g P_g + sum_g (mean_g - mean_T)(S_g - n_g nu_T), with
    P_g = sum over fold g of (a_i - mean_g) b_i and S_g the fold's signal sums.
    """
    out.copy_(products[training[0]])
    for fold in training[1:]:
        out += products[fold]
    n = sizes[training].sum()
    mean = (fold_means[training] * sizes[training].unsqueeze(1)).sum(dim=0) / n
    signal_mean = sums[training].sum(dim=0) / n
    for fold in training:
        out.addr_((fold_means[fold] - mean).float(), (sums[fold] - sizes[fold] * signal_mean).float())
