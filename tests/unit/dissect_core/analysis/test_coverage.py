"""Coverage: from the probe labels when a concept names a class, else the encoder count, blaming the right thing."""

from __future__ import annotations

import torch

from dissect_core.analysis.coverage import (
    MIN_CARRYING,
    MIN_LABELLED,
    class_synonyms,
    concept_coverage,
    is_encoder_blind,
    label_counts,
    labelled_images,
    spread_of,
    vocabulary_spreads,
)
from dissect_core.similarity.cosine import DenseCosine
from dissect_core.similarity.row_summaries import image_row_summaries

LABELS = ["frog"] * 20 + ["tabby, tabby cat"] * 3 + ["tree frog"] * 2 + [None] * 175


def test_coverage_comes_from_the_labels_when_the_concept_names_a_class() -> None:
    coverage = concept_coverage(
        "Frogs", n_carrying=3, n_images=200, spread=0.0, reference_spreads=torch.ones(10), image_labels=LABELS
    )
    assert (coverage.source, coverage.n_carrying, coverage.judgeable, coverage.encoder_blind) == (
        "labels",
        20,
        True,
        False,
    )
    assert coverage.note == "the probe set has 20 images labelled 'Frogs'"


def test_a_class_synonym_matches_and_few_labelled_images_are_too_few() -> None:
    assert class_synonyms("tabby, tabby cat") == {"tabby", "tabby cat"}
    assert label_counts("tabby_cats", LABELS) == 3 and label_counts("tabby", LABELS) == 3
    tree_frogs = labelled_images("tree frog", LABELS)
    assert tree_frogs is not None and tree_frogs.nonzero().squeeze(1).tolist() == [23, 24]
    assert labelled_images("purple", LABELS) is None
    coverage = concept_coverage(
        "tree frog", n_carrying=50, n_images=200, spread=1.0, reference_spreads=None, image_labels=LABELS
    )
    assert coverage.source == "labels" and coverage.n_carrying == 2 < MIN_LABELLED and not coverage.judgeable
    assert coverage.note == "the probe set has 2 images labelled 'tree frog': too few to judge a neuron on it"


def test_labels_count_a_class_exactly_so_fewer_labelled_images_judge_than_encoder_counted() -> None:
    assert MIN_LABELLED == 3 < MIN_CARRYING
    labelled = concept_coverage(
        "tabby cat", n_carrying=0, n_images=200, spread=1.0, reference_spreads=None, image_labels=LABELS
    )
    assert labelled.source == "labels" and labelled.n_carrying == 3 and labelled.judgeable
    counted = concept_coverage("purple", n_carrying=3, n_images=200, spread=1.0, reference_spreads=None)
    assert counted.source == "encoder" and not counted.judgeable and "add images of it" in counted.note


def test_a_concept_naming_no_class_is_counted_by_the_encoder() -> None:
    assert label_counts("purple", LABELS) is None and label_counts("frog", None) is None
    coverage = concept_coverage(
        "purple", n_carrying=7, n_images=200, spread=0.3, reference_spreads=None, image_labels=LABELS
    )
    assert coverage.source == "encoder" and coverage.judgeable and not coverage.encoder_blind


def _encoder(blind_column: bool) -> tuple[DenseCosine, torch.Tensor]:
    """A probe set of 200 images over 40 concepts, each image showing 6 of concepts 2-39 clearly; concept 0 the probe
    set lacks (related images stand out a little, none carries it), concept 1 seen or rated alike everywhere (blind)."""
    generator = torch.Generator().manual_seed(0)
    cos = 0.2 + 0.02 * torch.randn(200, 40, generator=generator)
    for image in range(200):
        for shown in range(6):
            cos[image, 2 + (image + shown) % 38] += 0.3
    cos[:10, 0] += 0.12  # related images (horses for `zebra`): they stand out, but carry no image's top 5
    cos[:12, 1] += 0.3
    if blind_column:
        cos[:, 1] = 0.2 + 0.001 * torch.randn(200, generator=generator)
    return DenseCosine(cos), cos


def test_the_encoder_is_blamed_only_when_it_rates_every_image_the_same() -> None:
    for blind in (False, True):
        source, cos = _encoder(blind)
        _, bars = image_row_summaries(source, a=10.0)
        reference = vocabulary_spreads(source, bars)
        lacked = concept_coverage(
            "zebra", n_carrying=int((cos[:, 0] >= bars).sum()), n_images=200,
            spread=float(spread_of(cos[:, 0])), reference_spreads=reference,
        )  # fmt: skip
        assert lacked.n_carrying < MIN_CARRYING and not lacked.encoder_blind and not lacked.judgeable
        assert lacked.note.startswith("the probe set has 0 images of 'zebra'") and "add images" in lacked.note
        unseen = concept_coverage(
            "purple", n_carrying=int((cos[:, 1] >= bars).sum()), n_images=200,
            spread=float(spread_of(cos[:, 1])), reference_spreads=reference,
        )  # fmt: skip
        assert unseen.encoder_blind is blind and unseen.judgeable is not blind
        if blind:
            assert unseen.note.startswith("the encoder does not recognise 'purple'")
            assert "probe set has" not in unseen.note


def test_the_reference_is_the_carried_concepts_and_blindness_needs_one() -> None:
    source, _ = _encoder(True)
    _, bars = image_row_summaries(source, a=10.0)
    reference = vocabulary_spreads(source, bars)
    assert len(reference) == 38 and bool((reference[1:] >= reference[:-1]).all())  # concepts 2-39
    assert not is_encoder_blind(-1.0, torch.empty(0))


def test_an_encoders_own_answer_decides_blindness_over_the_spread() -> None:
    reference = torch.tensor([0.2, 0.3, 0.4])  # median 0.3: a spread under 0.075 is blind by the spread rule
    wide, narrow = 0.5, 0.01
    unplaced = concept_coverage(
        "qwxzv", n_carrying=9, n_images=200, spread=wide, reference_spreads=reference, recognised=False
    )
    assert unplaced.encoder_blind and not unplaced.judgeable and unplaced.n_carrying == 9
    assert unplaced.note.startswith("the encoder does not recognise 'qwxzv': none of the classes it sees images")
    placed = concept_coverage(
        "pretzel", n_carrying=0, n_images=200, spread=narrow, reference_spreads=reference, recognised=True
    )
    assert not placed.encoder_blind and placed.note.startswith("the probe set has 0 images of 'pretzel'")
    by_spread = concept_coverage("pretzel", n_carrying=0, n_images=200, spread=narrow, reference_spreads=reference)
    assert by_spread.encoder_blind  # no answer from the encoder: the spread rule
    labelled = concept_coverage(
        "goldfish", n_carrying=0, n_images=200, spread=narrow, reference_spreads=reference,
        image_labels=["goldfish"] * 4, recognised=False,
    )  # fmt: skip
    assert labelled.source == "labels" and labelled.judgeable  # labels count a class whatever the encoder says
