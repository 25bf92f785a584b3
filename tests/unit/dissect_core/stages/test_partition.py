"""Image chunks aligned to the batch size, and blocks of neurons."""

import pytest

from dissect_core.errors import DissectError
from dissect_core.stages.partition import Span, image_chunks, neuron_blocks


def test_chunks_are_whole_batches_and_cover_every_image_once():
    chunks = image_chunks(300, 32, 160)
    assert chunks == [Span(0, 0, 160), Span(1, 160, 300)]
    assert all(chunk.start % 32 == 0 for chunk in chunks)


def test_a_chunk_that_is_no_multiple_of_the_batch_is_refused_with_the_fix():
    with pytest.raises(DissectError, match="multiple of the batch size 32"):
        image_chunks(300, 32, 100)


def test_blocks_split_the_neurons_evenly_and_never_outnumber_them():
    assert [len(block) for block in neuron_blocks(10, 3)] == [3, 4, 3]
    assert neuron_blocks(2, 5) == [Span(0, 0, 1), Span(1, 1, 2)]
    with pytest.raises(DissectError, match="at least one block"):
        neuron_blocks(10, 0)
