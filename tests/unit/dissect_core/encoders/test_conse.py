"""ConSE: image embeddings from classifier probabilities over ImageNet class-name text embeddings."""

from __future__ import annotations

import csv

import pytest
import torch
from PIL import Image

from dissect_core.encoders.base import recognised_concepts
from dissect_core.encoders.conse import ConSEEncoder, parse_conse_spec
from dissect_core.encoders.text import load_text_encoder
from dissect_core.errors import DissectError
from tests.conftest import SHARED_DATA

SHARED_VAL = SHARED_DATA / "imagenet-val-1300"
WORDS = ["cat", "car", "tree", "pizza", "guitar", "ship", "house", "bird", "shoe", "mountain"]


@pytest.fixture(scope="module")
def encoder() -> ConSEEncoder:
    return ConSEEncoder("efficientnet_lite0", load_text_encoder("minilm"), top_t=10)


def _cat_photo() -> Image.Image:
    try:
        import skimage.data

        return Image.fromarray(skimage.data.chelsea())
    except ImportError:
        pass
    if not (SHARED_VAL / "labels.csv").is_file():
        pytest.skip("needs scikit-image's `chelsea` photo or ../shared/ ImageNet val images")
    with open(SHARED_VAL / "labels.csv") as fh:
        name = next(r["file"] for r in csv.DictReader(fh) if 281 <= int(r["class_index"]) <= 285)
    return Image.open(SHARED_VAL / "images" / name)


@pytest.mark.slow
def test_cat_photo_is_nearest_to_cat(encoder: ConSEEncoder) -> None:
    pixels = encoder.image_transform(_cat_photo().convert("RGB")).unsqueeze(0)
    assert pixels.shape == (1, 3, 224, 224)
    img = encoder.encode_images(pixels)
    words = encoder.encode_texts(WORDS)
    assert img.dtype == torch.float32 and torch.allclose(img.norm(dim=-1), torch.ones(1), atol=1e-5)
    assert WORDS[int((img @ words.T).argmax())] == "cat"


@pytest.mark.slow
def test_identity_changes_with_t_and_names_parts(encoder: ConSEEncoder) -> None:
    other = ConSEEncoder("efficientnet_lite0", encoder.text, top_t=5)
    assert other.identity != encoder.identity
    assert "T=10" in encoder.identity and "a photo of a {}" in encoder.identity
    assert encoder.text.identity in encoder.identity
    assert "efficientnet_lite0@" in encoder.identity
    assert "centercrop224" in encoder.preprocess_identity


@pytest.mark.slow
def test_class_embeddings_computed_once(encoder: ConSEEncoder) -> None:
    first = encoder.class_embeddings
    assert first.shape == (1000, 384)
    assert encoder.class_embeddings is first


def test_parse_spec() -> None:
    assert parse_conse_spec("conse:efficientnet_lite2+minilm") == ("efficientnet_lite2", "minilm")
    assert parse_conse_spec("conse:efficientnet_lite0+mpnet") == ("efficientnet_lite0", "mpnet")


@pytest.mark.parametrize(
    "spec", ["conse:resnet50+minilm", "conse:efficientnet_lite2+glove", "conse:efficientnet_lite2", "lite2+minilm"]
)
def test_bad_spec_names_valid_choices(spec: str) -> None:
    with pytest.raises(DissectError, match=r"efficientnet_lite0, .*minilm, mpnet"):
        parse_conse_spec(spec)


def test_bad_top_t() -> None:
    with pytest.raises(DissectError, match="top_t"):
        ConSEEncoder("efficientnet_lite0", "minilm", top_t=0)


@pytest.mark.slow
def test_conse_recognises_class_words_and_not_letter_strings_or_colours(encoder: ConSEEncoder) -> None:
    words = ["pretzel", "tractor", "goldfish", "qwxzv", "tdwm", "purple", "striped"]
    recognised = encoder.recognises(encoder.encode_texts(words))
    assert recognised.tolist() == [True, True, True, False, False, False, False]
    assert recognised_concepts(encoder, encoder.encode_texts(["pretzel"])).tolist() == [True]


def test_an_encoder_without_an_answer_gives_none() -> None:
    class Plain:
        pass

    assert recognised_concepts(Plain(), torch.zeros(2, 4)) is None  # type: ignore[arg-type]
