"""The evaluation in blocks of neurons, fold labels from block totals and the layer's log p(m) per fold, the null from
the columns it samples: the same as `evaluate_layer` in one piece."""

import torch

from dissect_core.evaluation.evaluate import (
    EvaluationSettings,
    evaluate_layer,
    evaluate_units,
    joined_units,
    layer_evaluations,
)
from dissect_core.stages.evaluation import block_fold_labels, fold_totals, null_columns, null_sd_of_columns
from dissect_core.stages.partition import neuron_blocks
from dissect_core.stages.scoring import layer_log_p_concept
from tests.unit.dissect_core.evaluation.conftest import make_probe, score_fn

PARAMS = {"top_k": 10}


def test_two_blocks_evaluate_as_the_whole_layer():
    probe = make_probe(n_images=200, n_concepts=60, seed=4)
    generator = torch.Generator().manual_seed(1)
    activations = (probe.columns[:, :6] @ torch.rand(6, 10, generator=generator)) + 0.3 * torch.randn(
        200, 10, generator=generator
    )
    labels = score_fn(probe.cosine, activations).argmax(dim=1)
    settings = EvaluationSettings()
    expected, expected_summary = evaluate_layer(
        score_fn, probe.cosine, probe.signals, activations, labels, probe.folds, probe.concepts, settings
    )
    blocks = neuron_blocks(10, 2)
    totals = [
        fold_totals("soft_wpmi", PARAMS, probe.cosine, activations[:, b.start : b.stop], probe.folds, 5) for b in blocks
    ]
    fold_log_p = [layer_log_p_concept([block[fold].partials for block in totals]) for fold in range(5)]
    units = []
    for block, block_totals in zip(blocks, totals, strict=True):
        columns = activations[:, block.start : block.stop]
        fold_labels = block_fold_labels("soft_wpmi", PARAMS, probe.cosine, columns, block_totals, fold_log_p)
        units.append(
            evaluate_units(
                fold_labels,
                probe.signals,
                columns,
                labels[block.start : block.stop],
                probe.folds,
                probe.concepts,
                settings,
            )
        )
    wanted = null_columns(200, 10)
    null_sd = null_sd_of_columns(
        "soft_wpmi", PARAMS, probe.cosine, probe.signals, activations[:, wanted], wanted, 10, probe.folds, 5
    )
    neurons, summary = layer_evaluations(joined_units(units), null_sd, settings, "cosine", 200)
    assert summary == expected_summary
    for got, want in zip(neurons, expected, strict=True):
        assert abs(got.explained_r - want.explained_r) <= 1e-6 and abs(got.p_value - want.p_value) <= 1e-6
        assert (got.explanation, got.stability, got.significant) == (want.explanation, want.stability, want.significant)
