"""run_intervention and class_effects on the network with a known answer: per-class changes worked out by hand,
their order, changed predictions and accuracy, downstream units, float16 baselines, cancellation."""

from __future__ import annotations

import pytest
import torch

from dissect_core.errors import DissectError
from dissect_core.interventions.batches import InterventionCancelled
from dissect_core.interventions.effects import class_effects, run_intervention
from dissect_core.interventions.hooks import unit_mean_maps
from dissect_core.interventions.modes import InterventionSpec
from tests.unit.dissect_core.interventions.conftest import WEIGHTS, batches

NAMES = ["hare", "car", "tree"]
ZERO_UNIT_0 = InterventionSpec("relu", (0,), "zero")


def test_zeroing_a_unit_lowers_the_class_it_feeds_by_the_computed_amount(net, images):
    effect = run_intervention(net, "relu", ZERO_UNIT_0, batches(images), class_names=NAMES)
    f0 = images.mean(dim=(1, 2, 3))
    hare = effect.classes[0]
    assert (hare.class_index, hare.class_name) == (0, "hare")
    assert hare.mean_delta_logit == pytest.approx(-2 * float(f0.mean()), abs=1e-6)
    assert [(c.class_index, c.mean_delta_logit) for c in effect.classes[1:]] == [(1, 0.0), (2, 0.0)]
    baseline = net(images).detach().double()
    after = baseline.clone()
    after[:, 0] -= 2 * f0
    expected_probability = (after.softmax(1) - baseline.softmax(1)).mean(0)
    assert hare.mean_delta_probability == pytest.approx(float(expected_probability[0]), abs=1e-6)
    assert effect.classes[2].mean_delta_probability == pytest.approx(float(expected_probability[2]), abs=1e-6)
    assert effect.predictions_changed == 1 / 6  # image 0 (f0 = 0.2) turns from class 0 to class 1
    assert effect.n_images == 6 and effect.image_indices == (0, 1, 2, 3, 4, 5)
    assert effect.plain_pass_seconds is not None and effect.seconds >= effect.plain_pass_seconds


def test_scale_and_mean_move_the_fed_logit_by_hand_computed_amounts(net, images):
    f0 = images.mean(dim=(1, 2, 3))
    tripled = run_intervention(net, "relu", InterventionSpec("relu", (0,), "scale", 3.0), batches(images))
    assert tripled.classes[-1].class_index == 0  # the most helped class comes last
    assert tripled.classes[-1].mean_delta_logit == pytest.approx(2 * 2 * float(f0.mean()), abs=1e-6)
    means = unit_mean_maps(net, "relu", batches(images), units=[0])
    averaged = run_intervention(net, "relu", InterventionSpec("relu", (0,), "mean"), batches(images), unit_means=means)
    # Each image's logit 0 becomes the mean image's, so the changes cancel over the probe set.
    assert {c.class_index: c.mean_delta_logit for c in averaged.classes}[0] == pytest.approx(0.0, abs=1e-6)


def test_a_no_op_against_a_stored_float16_baseline_changes_nothing(net, images):
    stored = net(images).detach().half()  # what outputs.safetensors holds
    effect = run_intervention(
        net, "relu", InterventionSpec("relu", (0, 1), "scale", 1.0), batches(images), baseline_logits=stored
    )
    assert all(c.mean_delta_logit == 0.0 and c.mean_delta_probability == 0.0 for c in effect.classes)
    assert effect.predictions_changed == 0.0 and effect.plain_pass_seconds is None


def test_accuracy_before_and_after_over_the_labelled_images(net, images):
    baseline = net(images).detach()
    labels = [int(k) for k in baseline.argmax(1)]
    labels[1] = None  # an image without a label is left out of both accuracies
    effect = run_intervention(net, "relu", ZERO_UNIT_0, batches(images), labels=labels)
    after = baseline.clone()
    after[:, 0] -= 2 * images.mean(dim=(1, 2, 3))
    kept = [i for i in range(6) if labels[i] is not None]
    assert effect.accuracy_before == 1.0
    assert effect.accuracy_after == sum(int(after[i].argmax()) == labels[i] for i in kept) / len(kept) == 0.8
    assert run_intervention(net, "relu", ZERO_UNIT_0, batches(images)).accuracy_before is None


def test_downstream_units_are_ranked_by_their_change(net, images):
    pooled = net.pool(net.relu(net.conv(images))).detach()  # [6, 2, 1, 1]: the pool layer's units
    effect = run_intervention(
        net, "relu", ZERO_UNIT_0, batches(images), downstream_layers=["pool", "fc"], n_downstream=2,
        baseline_downstream={"pool": pooled.flatten(1)},
    )  # fmt: skip
    pool_units = [d for d in effect.downstream if d.layer == "pool"]
    assert [d.unit for d in pool_units] == [0, 1]
    assert pool_units[0].mean_delta_activation == pytest.approx(-float(images.mean()), abs=1e-6)
    assert pool_units[1].mean_delta_activation == 0.0
    fc_units = [d for d in effect.downstream if d.layer == "fc"]
    assert fc_units[0].unit == 0
    assert fc_units[0].mean_delta_activation == pytest.approx(-float(WEIGHTS[0, 0] * images.mean()), abs=1e-6)


def test_class_effects_are_sorted_most_negative_first_ties_to_the_lower_class():
    before = torch.zeros(2, 4)
    after = torch.tensor([[0.0, -1.0, 2.0, -1.0], [0.0, -3.0, 2.0, -3.0]])
    effects = class_effects(before, after, ["a", "b", "c", "d"])
    assert [(e.class_index, e.class_name, e.mean_delta_logit) for e in effects] == [
        (1, "b", -2.0), (3, "d", -2.0), (0, "a", 0.0), (2, "c", 2.0),
    ]  # fmt: skip
    with pytest.raises(DissectError, match="one name per class"):
        class_effects(before, after, ["a"])
    with pytest.raises(DissectError, match="pass the same images"):
        class_effects(before, after[:1])


def test_a_cancelled_intervention_stops_and_a_short_baseline_is_refused(net, images):
    with pytest.raises(InterventionCancelled):
        run_intervention(net, "relu", ZERO_UNIT_0, batches(images), should_stop=lambda: True)
    with pytest.raises(DissectError, match="one row per probe image"):
        run_intervention(net, "relu", ZERO_UNIT_0, batches(images), baseline_logits=torch.zeros(3, 3))
    with pytest.raises(DissectError, match="pass the same layer"):
        run_intervention(net, "fc", ZERO_UNIT_0, batches(images))
    assert not net.relu._forward_hooks and not net.fc._forward_hooks
