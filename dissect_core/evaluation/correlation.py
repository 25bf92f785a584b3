"""Column-wise Pearson correlation, with 0 where a column does not vary."""

from __future__ import annotations

import torch
from torch import Tensor


def pearson_columns(x: Tensor, y: Tensor) -> Tensor:
    """Return float32 [K]: the Pearson r between column k of `x` and column k of `y` ([N, K] each); 0 if constant."""
    return _r_of_centred(x.double() - x.double().mean(dim=0), y.double() - y.double().mean(dim=0))


def pooled_within_fold_r(predictions: Tensor, activations: Tensor, folds: Tensor, n_folds: int) -> Tensor:
    """Return float32 [K]: Pearson r of out-of-fold predictions with activations, each centred within its fold.

    Centring within folds keeps only how well each fold's ranking of its own images matches: the folds'
    different intercepts (each fitted on the other folds) would otherwise add a between-fold term that is
    negative in expectation and inflates the spread of r under the null.
    """
    x = predictions.double().clone()
    y = activations.double().clone()
    for fold in range(n_folds):
        members = folds == fold
        x[members] -= x[members].mean(dim=0)
        y[members] -= y[members].mean(dim=0)
    return _r_of_centred(x, y)


def _r_of_centred(x: Tensor, y: Tensor) -> Tensor:
    """Return float32 [K]: the cosine of already-centred columns, i.e. their r (0 where one does not vary)."""
    denominator = torch.linalg.vector_norm(x, dim=0) * torch.linalg.vector_norm(y, dim=0)
    r = (x * y).sum(dim=0) / denominator
    return torch.where(denominator > 1e-12, r, torch.zeros_like(r)).clamp(-1, 1).float()
