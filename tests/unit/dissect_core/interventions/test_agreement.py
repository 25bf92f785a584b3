"""Label–effect agreement on hand-built embeddings: a label naming exactly the hurt classes stands far above
random class sets; one naming none of them does not; the null is seeded."""

from __future__ import annotations

import math

import pytest
import torch

from dissect_core.errors import DissectError
from dissect_core.interventions.effects import ClassEffect, label_effect_agreement

N_CLASSES = 20
HURT = (3, 7, 11, 12, 15)  # the five classes whose logits fall, most first
CLASS_NAMES = torch.eye(N_CLASSES)  # each class name its own direction: cosine = the label's share of it


def _delta_logits():
    delta = torch.zeros(N_CLASSES)
    delta[list(HURT)] = torch.tensor([-5.0, -4.0, -3.0, -2.0, -1.0])
    delta[0] = 0.5  # a helped class
    return delta


def test_a_label_equal_to_the_hurt_classes_names_gets_a_high_z_and_the_lowest_p():
    label = CLASS_NAMES[list(HURT)].sum(dim=0)
    agreement = label_effect_agreement(label, CLASS_NAMES, _delta_logits())
    assert agreement.top_classes == HURT
    assert agreement.cosine == pytest.approx(1 / math.sqrt(5))
    # By hand: a random 5-set of 20 holds a hypergeometric number of the 5 (mean 1.25, sd 0.86), so the null's
    # mean cosine is 0.112 and its sd 0.077: z is about 4.4; no random set beats the exact one (p = 1/1001).
    assert 3.8 < agreement.z < 5.0
    assert agreement.p_value == 1 / 1001 and agreement.n_random == 1000


def test_a_label_naming_none_of_the_hurt_classes_gets_no_support():
    agreement = label_effect_agreement(CLASS_NAMES[0], CLASS_NAMES, _delta_logits())
    assert agreement.cosine == 0.0
    assert agreement.z < 0 and agreement.p_value == 1.0  # every random set does at least as well


def test_the_null_is_seeded_and_class_effects_give_the_same_answer():
    label = CLASS_NAMES[list(HURT[:2])].sum(dim=0) + 0.3 * CLASS_NAMES[1]
    first = label_effect_agreement(label, CLASS_NAMES, _delta_logits(), seed=4)
    assert label_effect_agreement(label, CLASS_NAMES, _delta_logits(), seed=4) == first
    assert label_effect_agreement(label, CLASS_NAMES, _delta_logits(), seed=5).z != first.z
    effects = [ClassEffect(k, None, float(v), 0.0) for k, v in enumerate(_delta_logits())][::-1]
    assert label_effect_agreement(label, CLASS_NAMES, effects, seed=4) == first


def test_mismatched_inputs_are_refused():
    with pytest.raises(DissectError, match="one change per class"):
        label_effect_agreement(CLASS_NAMES[0], CLASS_NAMES, torch.zeros(3))
    with pytest.raises(DissectError, match="run's text encoder"):
        label_effect_agreement(torch.ones(4), CLASS_NAMES, _delta_logits())
    with pytest.raises(DissectError, match="n_top"):
        label_effect_agreement(CLASS_NAMES[0], CLASS_NAMES, _delta_logits(), n_top=21)
