import torch

from dissect_core.evaluation.candidates import top_correlated_concepts
from dissect_core.evaluation.linear_fits import single_concept_fits, sparse_nonnegative_fits
from tests.unit.dissect_core.evaluation.conftest import make_probe


def test_planted_weighted_sum_is_recovered_with_its_weights(probe):
    planted = 2.0 * probe.columns[:, 5] + 1.0 * probe.columns[:, 17] + 0.5 * probe.columns[:, 99] + 3.0
    activations = torch.stack([planted, -planted], dim=1)
    every = torch.arange(len(planted))
    candidates = top_correlated_concepts(probe.signals, activations, probe.folds, 5, 32)[5]
    fits = sparse_nonnegative_fits(probe.signals, activations, every, candidates)
    recovered = {int(c): float(w) for c, w in zip(fits.concepts[0], fits.weights[0], strict=True) if c >= 0}
    assert recovered.keys() == {5, 17, 99}
    for concept, weight in {5: 2.0, 17: 1.0, 99: 0.5}.items():
        assert abs(recovered[concept] - weight) < 1e-3
    assert fits.concepts[0].tolist()[:3] == [5, 17, 99]  # most important first
    prediction = fits.predict(probe.signals, every)
    assert torch.allclose(prediction[:, 0], planted, atol=1e-4)
    assert (fits.weights >= 0).all()


def test_weights_are_never_negative_and_terms_are_few():
    probe = make_probe(seed=1)
    generator = torch.Generator().manual_seed(0)
    mixed = probe.columns[:, :8] @ torch.tensor([1.0, -1.0, 2.0, -2.0, 0.5, -0.5, 1.5, -1.5])
    activations = torch.stack([mixed, torch.randn(len(mixed), generator=generator)], dim=1)
    every = torch.arange(len(mixed))
    candidates = top_correlated_concepts(probe.signals, activations, probe.folds, 5, 16)[5]
    fits = sparse_nonnegative_fits(probe.signals, activations, every, candidates, max_terms=5)
    assert (fits.weights >= 0).all() and fits.concepts.shape == (2, 5)
    used = set(fits.concepts[0][fits.concepts[0] >= 0].tolist())
    assert used <= {0, 2, 4, 6} | set(range(8, 300)) and {0, 2, 6} <= used
    # noise buys one term and hardly any more: later terms must each explain 1% of the variance
    assert int((fits.concepts[1] >= 0).sum()) <= 2


def test_single_concept_fit_is_a_positive_rescaling(probe):
    activations = torch.stack([-probe.columns[:, 3] * 4 + 1], dim=1)
    every = torch.arange(activations.shape[0])
    fits = single_concept_fits(probe.signals, activations, every, torch.tensor([3]))
    prediction = fits.predict(probe.signals, every)[:, 0]
    assert float(fits.weights[0, 0]) > 0
    assert torch.corrcoef(torch.stack([prediction, activations[:, 0]]))[0, 1] < -0.999
    assert abs(float(prediction.mean() - activations.mean())) < 1e-4
