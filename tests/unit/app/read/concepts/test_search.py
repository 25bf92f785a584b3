"""Typed-concept scoring helpers: a vocabulary concept's own term is taken out of the stored normaliser once."""

from __future__ import annotations

import torch

from app.read.concepts.search import normalisers_without_own_term


def test_taking_a_term_out_leaves_the_logsumexp_of_the_others() -> None:
    logits = torch.tensor([[1.0, 2.0, 0.5], [-3.0, 4.0, 4.0]], dtype=torch.float64)  # [N images, C concepts]
    stored = torch.logsumexp(logits, dim=1)
    without_last = normalisers_without_own_term(stored, logits[:, 2])
    torch.testing.assert_close(without_last, torch.logsumexp(logits[:, :2], dim=1))
    torch.testing.assert_close(torch.logaddexp(without_last, logits[:, 2]), stored)


def test_a_term_that_is_the_whole_sum_stays_finite() -> None:
    stored = torch.tensor([2.0], dtype=torch.float64)
    assert torch.isfinite(normalisers_without_own_term(stored, torch.tensor([2.0]))).all()
