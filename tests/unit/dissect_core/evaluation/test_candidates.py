"""Each neuron's candidate concepts: the same whatever the concept block size, ties to the lower concept index."""

import torch

from dissect_core.evaluation.candidates import top_correlated_concepts
from tests.unit.dissect_core.evaluation.conftest import make_probe


def test_candidates_do_not_depend_on_the_block_size_and_ties_go_to_the_lower_concept() -> None:
    probe = make_probe(n_concepts=700)
    planted = 2.0 * probe.columns[:, 650] + probe.columns[:, 3]
    noise = torch.randn(len(planted), generator=torch.Generator().manual_seed(0))
    activations = torch.stack([planted, torch.zeros_like(planted), noise], dim=1)
    at_once = top_correlated_concepts(probe.signals, activations, probe.folds, 5, 8)
    by_blocks = top_correlated_concepts(probe.signals, activations, probe.folds, 5, 8, memory_budget_bytes=1)
    assert torch.equal(at_once, by_blocks)  # 700 concepts at once, then in blocks of 256
    assert set(at_once[5, 0, :2].tolist()) == {3, 650}
    # A dead neuron has r = 0 with every concept: the lowest concept indices, in every fold.
    assert (at_once[:, 1] == torch.arange(8)).all()


def test_ranking_candidates_leaves_the_runs_cosine_matrix_as_it_was() -> None:
    """Regression: the signals' centring ran in place on a view of the dense cosine matrix, so every stage after the
    evaluation (the null's and the folds' labels, coverage, grading) read column-centred cosines."""
    probe = make_probe(n_images=60, n_concepts=20)
    before = probe.cosine.matrix.clone()
    activations = torch.randn(60, 3, generator=torch.Generator().manual_seed(1))
    top_correlated_concepts(probe.signals, activations, probe.folds, 5, 4)
    assert torch.equal(probe.cosine.matrix, before)
