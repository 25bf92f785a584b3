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
