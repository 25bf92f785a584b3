"""The layer evaluation: NeuronEval's sanity tests, planted neurons, noise at the stated rate, and no leakage."""

import pytest
import torch

from dissect_core.evaluation.candidates import top_correlated_concepts
from dissect_core.evaluation.correlation import pearson_columns
from dissect_core.evaluation.evaluate import EvaluationSettings, cross_fit, evaluate_layer, ground_truth_correlations
from dissect_core.evaluation.folds import fold_of_images
from tests.unit.dissect_core.evaluation.conftest import make_probe, score_fn


def _evaluate(probe, activations):
    labels = score_fn(probe.cosine, activations).argmax(dim=1)
    return evaluate_layer(score_fn, probe.cosine, probe.signals, activations, labels, probe.folds, probe.concepts)


def test_simulation_score_passes_neuroneval_sanity_tests(probe):
    """An explanation missing true positives, or adding false ones, must score lower than the true one."""
    columns = probe.columns
    present = (columns > columns.quantile(0.8, dim=0)).float()  # binary concept presence per image
    neuron = present[:, 1] + present[:, 2]  # fires on images with concept 1 or 2
    truth = pearson_columns((present[:, 1] + present[:, 2]).unsqueeze(1), neuron.unsqueeze(1))
    missing = pearson_columns(present[:, 1].unsqueeze(1), neuron.unsqueeze(1))
    extra = pearson_columns((present[:, 1] + present[:, 2] + present[:, 3]).unsqueeze(1), neuron.unsqueeze(1))
    assert float(truth) > float(missing) + 0.2
    assert float(truth) > float(extra) + 0.1


@pytest.mark.slow
def test_planted_neuron_gets_its_explanation_and_a_reliable_label(probe):
    planted = 2.0 * probe.columns[:, 5] + 1.0 * probe.columns[:, 17] + 0.5 * probe.columns[:, 99]
    generator = torch.Generator().manual_seed(1)
    noise = torch.randn(len(planted), 30, generator=generator)
    activations = torch.cat([planted.unsqueeze(1), noise], dim=1)
    neurons, summary = _evaluate(probe, activations)
    first = neurons[0]
    weights = {term.concept: term.weight for term in first.explanation}
    assert weights.keys() == {"c5", "c17", "c99"}
    assert all(abs(weights[c] - w) < 1e-3 for c, w in {"c5": 2.0, "c17": 1.0, "c99": 0.5}.items())
    assert first.explanation_r > 0.99 and first.explanation_r > first.explained_r > 0.5
    assert first.significant and first.p_value < 1e-10 and first.stability == 1.0
    assert summary.reliable_min_r is not None and summary.reliable_min_r <= first.explained_r
    assert summary.n_folds == 5 and summary.simulation == "cosine" and summary.n_images == len(planted)


@pytest.mark.slow
def test_noise_neurons_are_unreliable_at_the_stated_rate():
    """With no signal, any discovery is false: BH at 5% keeps the chance of one in a layer near 5%."""
    layers_with_a_discovery, p_below_5_percent, n_neurons = 0, 0, 0
    for seed in range(8):
        probe = make_probe(n_images=300, n_concepts=200, dim=128, seed=seed)
        generator = torch.Generator().manual_seed(100 + seed)
        activations = torch.relu(torch.randn(300, 60, generator=generator))  # sparse and skewed, like ReLU units
        neurons, summary = _evaluate(probe, activations)
        layers_with_a_discovery += any(n.significant for n in neurons)
        p_below_5_percent += sum(n.p_value < 0.05 for n in neurons)
        n_neurons += len(neurons)
        assert summary.share_reliable == sum(n.significant for n in neurons) / len(neurons)
    assert layers_with_a_discovery <= 2  # expected at most 8 * 5% = 0.4
    assert 0.02 < p_below_5_percent / n_neurons < 0.085  # p-values about uniform under the null


@pytest.mark.slow
def test_false_discovery_rate_holds_among_real_signals():
    false_discoveries, discoveries = 0, 0
    for seed in range(4):
        probe = make_probe(n_images=400, n_concepts=200, dim=128, seed=seed)
        generator = torch.Generator().manual_seed(seed)
        signal = probe.columns[:, :40] / probe.columns[:, :40].std(dim=0) * torch.linspace(0.3, 1.5, 40)
        activations = torch.randn(400, 120, generator=generator)
        activations[:, :40] += signal  # real signals from r about 0.3 to 0.8, then 80 noise neurons
        neurons, _ = _evaluate(probe, activations)
        reliable = torch.tensor([n.significant for n in neurons])
        discoveries += int(reliable.sum())
        false_discoveries += int(reliable[40:].sum())
    assert discoveries > 80
    assert false_discoveries / discoveries < 0.1


@pytest.mark.slow
def test_out_of_fold_scores_do_not_reward_overfitting():
    """The best of 2,000 concepts correlates with noise in sample; out of fold that vanishes."""
    probe = make_probe(n_images=300, n_concepts=2000, dim=128, seed=5)
    generator = torch.Generator().manual_seed(5)
    activations = torch.randn(300, 80, generator=generator)
    in_sample_best = top_correlated_concepts(probe.signals, activations, probe.folds, 5, 1)[5][:, 0]
    in_sample_r = pearson_columns(probe.columns[:, in_sample_best], activations)
    neurons, _ = _evaluate(probe, activations)
    explained = torch.tensor([n.explained_r for n in neurons])
    explanation = torch.tensor([n.explanation_r for n in neurons])
    assert float(in_sample_r.mean()) > 0.15  # about sqrt(2 ln 2000 / 300)
    assert abs(float(explained.mean())) < 0.03 and abs(float(explanation.mean())) < 0.03


@pytest.mark.slow
def test_a_fold_chooses_without_looking_at_its_own_images(probe):
    """Changing fold 0's activations changes nothing that fold 0's predictions were chosen from."""
    generator = torch.Generator().manual_seed(2)
    activations = probe.columns[:, :20] + 0.3 * torch.randn(probe.columns.shape[0], 20, generator=generator)
    changed = activations.clone()
    in_fold_0 = probe.folds == 0
    changed[in_fold_0] = torch.randn(int(in_fold_0.sum()), 20, generator=generator) * 5
    settings = EvaluationSettings()

    def choices(acts):
        candidates = top_correlated_concepts(probe.signals, acts, probe.folds, 5, settings.n_candidates)
        return candidates, cross_fit(score_fn, probe.cosine, probe.signals, acts, probe.folds, candidates, settings)

    before_candidates, before = choices(activations)
    after_candidates, after = choices(changed)
    assert torch.equal(before_candidates[0], after_candidates[0])
    assert torch.equal(before.labels[0], after.labels[0])
    assert torch.equal(before.explanation_fits[0].concepts, after.explanation_fits[0].concepts)
    assert torch.allclose(before.explanation_fits[0].weights, after.explanation_fits[0].weights)
    fold_0 = in_fold_0.nonzero().squeeze(1)
    assert torch.allclose(before.label_predictions[fold_0], after.label_predictions[fold_0])
    assert not torch.equal(before.labels[1:], after.labels[1:]) or not torch.allclose(
        before.label_predictions[~in_fold_0], after.label_predictions[~in_fold_0]
    )


@pytest.mark.slow
def test_stability_counts_the_folds_that_agree(probe):
    strong = probe.columns[:, 7]
    generator = torch.Generator().manual_seed(4)
    activations = torch.stack([strong, torch.randn(len(strong), generator=generator)], dim=1)
    neurons, _ = _evaluate(probe, activations)
    assert neurons[0].stability == 1.0
    assert neurons[1].stability in {0.0, 0.2, 0.4, 0.6, 0.8, 1.0}


def test_ground_truth_correlates_with_the_class_column():
    image_labels = ["cat", "dog", "cat", None, "Tabby_Cat", "dog"]
    activations = torch.tensor([[1.0, 0.0], [0.0, 0.0], [1.0, 0.0], [0.0, 0.0], [0.0, 0.9], [0.0, 0.0]])
    result = ground_truth_correlations(activations, ["cat", "tabby cat"], image_labels)
    presence = torch.tensor([1.0, 0, 1, 0, 0, 0])
    expected = torch.corrcoef(torch.stack([presence, activations[:, 0]]))[0, 1]
    assert abs(result[0] - float(expected)) < 1e-6
    assert result[1] is not None and result[1] > 0.99  # "Tabby_Cat" is the class "tabby cat"
    assert ground_truth_correlations(activations, ["bird", "cat"], image_labels)[0] is None
    assert ground_truth_correlations(activations, ["cat", "dog"], None) == [None, None]


def test_folds_from_ids_and_settings_defaults():
    assert EvaluationSettings().n_folds == 5 and EvaluationSettings().false_discovery_rate == 0.05
    assert fold_of_images([str(i) for i in range(10)], 5).bincount().tolist() == [2, 2, 2, 2, 2]
