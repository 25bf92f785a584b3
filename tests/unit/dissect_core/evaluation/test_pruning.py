"""Explanation terms earn their place: a junk term that adds no out-of-fold r goes, a real one stays."""

from __future__ import annotations

import torch

from dissect_core.data.vocabulary import is_vocabulary_word, term_concepts
from dissect_core.evaluation.linear_fits import LinearFits
from dissect_core.evaluation.pruning import out_of_fold_r, prune_terms
from tests.unit.dissect_core.evaluation.conftest import make_probe


def test_a_junk_term_is_dropped_and_a_real_one_kept() -> None:
    probe = make_probe(n_images=300, n_concepts=50, dim=64, seed=3)
    generator = torch.Generator().manual_seed(0)
    neuron = probe.columns[:, 4] + 0.5 * probe.columns[:, 9] + 0.05 * torch.randn(300, generator=generator)
    activations = neuron.unsqueeze(1)
    # an explanation with a junk third term (concept 30), as a greedy fit on all images might admit
    fits = LinearFits(
        concepts=torch.tensor([[4, 9, 30]]),
        weights=torch.tensor([[1.0, 0.5, 0.3]], dtype=torch.float64),
        signal_means=torch.zeros(1, 3, dtype=torch.float64),
        intercepts=torch.zeros(1, dtype=torch.float64),
    )
    pruned = prune_terms(probe.signals, activations, probe.folds, 5, fits)
    assert sorted(c for c in pruned.concepts[0].tolist() if c >= 0) == [4, 9]
    used = torch.tensor([[True, True, False]])
    assert float(out_of_fold_r(probe.signals, activations, probe.folds, 5, fits.concepts, used)[0]) > 0.9


def test_fragments_are_never_terms_of_an_english_vocabulary() -> None:
    assert not is_vocabulary_word("cho") and not is_vocabulary_word("qwxzv") and not is_vocabulary_word("n01440764")
    assert is_vocabulary_word("hare") and is_vocabulary_word("fire truck") and is_vocabulary_word("t-shirt")
    assert term_concepts(["hare", "cho", "dog"]) == [True, False, True]
    assert term_concepts(["c1", "c2", "dog"]) is None  # not an English vocabulary: nothing is ruled out
