"""Exact merges: chunks' top images against one pass, blocks' log p(m) partials against the whole layer."""

import numpy as np
import pytest
import torch

from dissect_core.activations import RecordedLayer
from dissect_core.errors import DissectError
from dissect_core.similarity.cosine import DenseCosine, FactoredCosine
from dissect_core.similarity.functions import cos_similarity, soft_wpmi, wpmi
from dissect_core.stages.partition import neuron_blocks
from dissect_core.stages.probe import merge_top_images
from dissect_core.stages.scoring import block_scores, block_totals, check_blocks, label_block, layer_log_p_concept
from dissect_core.topk import stable_topk


def test_merged_chunk_tops_are_one_pass_tops_with_their_maps_even_on_ties():
    generator = torch.Generator().manual_seed(0)
    values = torch.randint(0, 3, (6, 50), generator=generator).float()  # many ties
    values[0] = 0.0  # a dead unit
    maps = torch.randn(50, 6, 2, 2, generator=generator)
    parts = []
    for start, stop in ((0, 20), (20, 35), (35, 50)):
        top_values, top_indices = stable_topk(values[:, start:stop], 5, torch.arange(start, stop))
        part_maps = maps[top_indices, torch.arange(6).unsqueeze(1)]
        parts.append(RecordedLayer("conv", torch.empty(0, 6), top_values, top_indices, part_maps))
    merged_values, merged_indices, merged_maps = merge_top_images(parts, 5)
    expected_values, expected_indices = stable_topk(values, 5)
    assert torch.equal(merged_values, expected_values) and torch.equal(merged_indices, expected_indices)
    assert merged_indices[0].tolist() == [0, 1, 2, 3, 4]
    assert merged_maps is not None
    assert torch.equal(merged_maps, maps[expected_indices, torch.arange(6).unsqueeze(1)])


def _probe(seed: int = 0) -> tuple[DenseCosine, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    cosine = DenseCosine(
        FactoredCosine(torch.randn(120, 16, generator=generator), torch.randn(40, 16, generator=generator)).dense()
    )
    return cosine, torch.randn(120, 9, generator=generator).relu()


@pytest.mark.parametrize(
    ("name", "function", "params"), [("soft_wpmi", soft_wpmi, {"top_k": 7}), ("wpmi", wpmi, {"top_k": 5})]
)
def test_one_block_is_the_layer_bit_for_bit_and_three_blocks_agree_to_float_noise(name, function, params):
    cosine, activations = _probe()
    whole = function(cosine, activations, **params)
    one = block_totals(name, params, cosine, activations)
    assert torch.equal(block_scores(name, params, cosine, activations, one, layer_log_p_concept([one.partials])), whole)
    blocks = neuron_blocks(activations.shape[1], 3)
    totals = [block_totals(name, params, cosine, activations[:, b.start : b.stop]) for b in blocks]
    log_p = layer_log_p_concept([t.partials for t in totals])
    parts = [
        block_scores(name, params, cosine, activations[:, block.start : block.stop], block_total, log_p)
        for block, block_total in zip(blocks, totals, strict=True)
    ]
    assert torch.allclose(torch.cat(parts), whole, atol=1e-6, rtol=0)
    assert torch.equal(torch.cat(parts).argmax(dim=1), whole.argmax(dim=1))
    assert np.all(np.isfinite(log_p))


def test_cosine_blocks_are_the_layers_rows_and_labels_number_units_across_blocks():
    cosine, activations = _probe(1)
    whole = cos_similarity(cosine, activations)
    block = block_scores("cos_similarity", {}, cosine, activations[:, 4:9])
    assert torch.allclose(block, whole[4:9], atol=1e-6, rtol=0)
    labelled = label_block(block, [f"c{i}" for i in range(40)], 4, activations[:, 4:9], 3)
    assert [neuron.unit for neuron in labelled.neurons] == [4, 5, 6, 7, 8]
    assert labelled.top_indices.shape == (5, 3)


def test_rank_reorder_past_its_size_is_refused_under_a_distributed_executor():
    check_blocks("rank_reorder", 1_000, 512)
    with pytest.raises(DissectError, match=r"rank_reorder is not a streaming sum.*--executor local"):
        check_blocks("rank_reorder", 1_280_000, 2_048)
