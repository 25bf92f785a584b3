"""Class contributions, single-image contributions and top predictions of a toy classifier, by hand."""

from __future__ import annotations

import pytest
import torch

from dissect_core.analysis.classes import class_contributions, image_contributions, positive_shares, top_predictions


def test_class_contributions_are_weight_times_mean_feature_of_the_predicted_images():
    weight = torch.tensor([[1.0, -2.0], [0.5, 3.0], [4.0, 4.0]])  # 3 classes, 2 features
    inputs = torch.tensor([[1.0, 2.0], [3.0, 4.0], [10.0, 0.0]])
    predicted = torch.tensor([0, 0, 1])  # class 2 is predicted for no image
    contributions = class_contributions(weight, inputs, predicted)
    expected = torch.tensor([[1.0 * 2.0, -2.0 * 3.0], [0.5 * 10.0, 3.0 * 0.0], [0.0, 0.0]])
    assert torch.allclose(contributions, expected)


def test_image_contributions_sum_to_the_logits_less_the_bias():
    generator = torch.Generator().manual_seed(0)
    classifier = torch.nn.Linear(5, 3)
    features = torch.rand(5, generator=generator)
    contributions = image_contributions(classifier.weight.detach(), features)
    assert torch.allclose(contributions.sum(dim=1) + classifier.bias.detach(), classifier(features).detach(), atol=1e-6)


def test_shares_are_of_the_summed_positive_contributions():
    shares = positive_shares(torch.tensor([[3.0, 1.0, -2.0], [-1.0, -1.0, 0.0]]))
    assert torch.allclose(shares, torch.tensor([[0.75, 0.25, -0.5], [0.0, 0.0, 0.0]]))


def test_top_predictions_are_softmax_probabilities_best_first_ties_to_the_lower_class():
    logits = torch.tensor([[0.0, 2.0, 2.0, -1.0]])
    classes, probabilities = top_predictions(logits, k=3)
    assert classes.tolist() == [[1, 2, 0]]
    expected = torch.softmax(logits, dim=1)[0, [1, 2, 0]]
    assert probabilities[0].tolist() == pytest.approx(expected.tolist())
    single_classes, _ = top_predictions(logits[0], k=2)
    assert single_classes.tolist() == [1, 2]
