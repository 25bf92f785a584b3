"""open_clip text encoding at the floor: each batch cut to its longest real tokenisation gives the padded embeddings."""

from __future__ import annotations

import copy
import json

import pytest
import torch

from dissect_core.encoders.open_clip_encoder import OpenClipEncoder, can_cut_padding, token_lengths

pytestmark = pytest.mark.usefixtures("tiny_clip")
#: Like tiny_clip, but with CLIP's full 77-token context and two text blocks.
TEXT77 = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 16, "head_width": 16},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 4, "layers": 2},
}
WORDS = [
    "cat",
    "a striped dog",
    "sky",
    "über-café",
    "hot-air balloon!",
    "the quick brown fox jumps over the lazy dog near the riverbank at dawn",
    "x",
    " ".join(["word"] * 90),  # longer than the context: the tokenizer truncates it to 77, ending in end-of-text
    "",
    "42",
]
TEMPLATE = "a photo of a {}"


@pytest.fixture(scope="module")
def text77(tmp_path_factory: pytest.TempPathFactory) -> OpenClipEncoder:
    """A random open_clip encoder with a 77-token text context."""
    import open_clip

    config = tmp_path_factory.mktemp("configs") / "text77_clip.json"
    config.write_text(json.dumps(TEXT77))
    open_clip.add_model_config(str(config))
    return OpenClipEncoder("text77_clip:none", torch.device("cpu"))


def padded(encoder: OpenClipEncoder, texts: list[str]) -> torch.Tensor:
    """Return open_clip's own embeddings of the texts: `encode_text` over the full padded context, normalised."""
    with torch.inference_mode():
        return torch.nn.functional.normalize(encoder.model.encode_text(encoder.tokenizer(texts)).float(), dim=1)


@pytest.mark.parametrize("batch_size", [512, 3])
@pytest.mark.slow
def test_cut_batches_give_the_padded_embeddings_in_the_original_order(text77: OpenClipEncoder, batch_size: int):
    assert text77.cuts_padding
    cut = text77.encode_texts(WORDS, batch_size=batch_size)
    assert cut.shape == (len(WORDS), 32) and cut.dtype == torch.float32
    assert (cut - padded(text77, WORDS)).abs().max() < 1e-5


def test_templated_concepts_give_the_padded_embeddings(text77: OpenClipEncoder):
    # The pipeline (`_embed_concepts`) and concept search (`RunScoring.prompt`) format the template, then encode.
    prompts = [TEMPLATE.format(word) for word in WORDS]
    assert (text77.encode_texts(prompts, batch_size=4) - padded(text77, prompts)).abs().max() < 1e-5


def test_a_short_context_is_cut_too(tiny_clip: str):
    encoder = OpenClipEncoder(tiny_clip, torch.device("cpu"))  # a 16-token context
    assert encoder.cuts_padding
    assert (encoder.encode_texts(WORDS, batch_size=4) - padded(encoder, WORDS)).abs().max() < 1e-5


def test_the_cut_is_short_for_words():
    tokens = torch.tensor([[49406, 2368, 49407, 0, 0], [49406, 0, 320, 49407, 0], [49406, 1, 2, 3, 49407]])
    assert token_lengths(tokens).tolist() == [3, 4, 5]  # a zero id inside a text ("!") does not end it


@pytest.mark.parametrize("text_change", [{"no_causal_mask": True}, {"pool_type": "last"}])
@pytest.mark.slow
def test_towers_the_cut_would_change_keep_the_padded_path(text77: OpenClipEncoder, text_change: dict[str, object]):
    import open_clip

    text_cfg = {**TEXT77["text_cfg"], **text_change}  # type: ignore[dict-item]
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = open_clip.CLIP(embed_dim=32, vision_cfg=TEXT77["vision_cfg"], text_cfg=text_cfg).eval()
    assert not can_cut_padding(model, text77.tokenizer)
    encoder = copy.copy(text77)
    encoder.model, encoder.cuts_padding = model, can_cut_padding(model, text77.tokenizer)
    assert torch.equal(encoder.encode_texts(WORDS, batch_size=4), padded(encoder, WORDS))


def test_another_tokenizer_keeps_the_padded_path(text77: OpenClipEncoder):
    assert not can_cut_padding(text77.model, object())
