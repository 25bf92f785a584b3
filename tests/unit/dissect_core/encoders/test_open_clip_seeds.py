"""`ARCH:none` open_clip encoders: random weights drawn from a seed, so their embeddings and cache keys are stable."""

from __future__ import annotations

import pytest
import torch

from dissect_core.encoders.open_clip_encoder import OpenClipEncoder
from dissect_core.errors import DissectError

pytestmark = pytest.mark.usefixtures("tiny_clip")
PIXELS = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
TEXTS = ["a cat", "a striped dog"]


def embeddings(spec: str) -> tuple[str, torch.Tensor, torch.Tensor]:
    """Return the encoder's identity and its image and text embeddings of PIXELS and TEXTS."""
    encoder = OpenClipEncoder(spec, torch.device("cpu"))
    return encoder.identity, encoder.encode_images(PIXELS), encoder.encode_texts(TEXTS)


@pytest.mark.slow
def test_none_is_seed_zero_every_time_and_leaves_the_callers_rng_alone():
    before = torch.get_rng_state()
    first, again, explicit = embeddings("tiny_clip:none"), embeddings("tiny_clip:none"), embeddings("tiny_clip:none@0")
    assert torch.equal(torch.get_rng_state(), before)
    assert first[0] == again[0] == explicit[0] and ":none@0:" in first[0]
    for one, other in ((first, again), (first, explicit)):
        assert torch.equal(one[1], other[1]) and torch.equal(one[2], other[2])


@pytest.mark.slow
def test_another_seed_gives_other_weights_and_another_identity():
    zero, three = embeddings("tiny_clip:none"), embeddings("tiny_clip:none@3")
    assert ":none@3:" in three[0] and three[0] != zero[0]
    assert not torch.allclose(zero[1], three[1]) and not torch.allclose(zero[2], three[2])


def test_a_malformed_seed_is_refused():
    with pytest.raises(DissectError, match="whole-number seed"):
        OpenClipEncoder("tiny_clip:none@-1", torch.device("cpu"))
