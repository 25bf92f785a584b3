"""Generic concept words and the cleaned 20k vocabulary."""

from __future__ import annotations

import pytest

from dissect_core.data.concepts import load_concepts
from dissect_core.data.vocabulary import clean_vocabulary, is_function_word, is_generic_concept, lemma


@pytest.mark.parametrize("word", ["photo", "Pics", " image ", "closeup", "the", "about", "it"])
def test_image_meta_and_function_words_are_generic(word: str) -> None:
    assert is_generic_concept(word)


@pytest.mark.parametrize("word", ["dog", "photographer", "striped", "computer", "man", "fire", ""])
def test_words_about_what_is_in_the_image_are_not(word: str) -> None:
    assert not is_generic_concept(word)


def test_function_words_need_both_the_stop_list_and_no_content_reading() -> None:
    assert is_function_word("and") and is_function_word("which")
    assert not is_function_word("face") and not is_function_word("room")  # stop-listed, but nouns
    assert not is_function_word("zebra")


@pytest.mark.parametrize(("word", "base"), [("dogs", "dog"), ("mice", "mouse"), ("news", "news"), ("zebra", "zebra")])
def test_lemmas_prefer_the_noun_reading(word: str, base: str) -> None:
    assert lemma(word) == base


def test_clean_vocabulary_drops_and_merges_keeping_first_place() -> None:
    words = ["the", "dogs", "photo", "dog", "mr", "x", "3d", "zebra", "Mice", "mouse", "etc", "pictures"]
    assert clean_vocabulary(words) == ["dog", "zebra", "mouse"]


def test_clean_20k_is_a_built_in_concept_set() -> None:
    raw, clean = load_concepts("20k"), load_concepts("20k-clean")
    assert len(raw) == 20_000 and 8_000 < len(clean) < 16_000
    assert len(set(clean.concepts)) == len(clean.concepts)
    assert not {"photo", "image", "pic", "the", "and", "dogs"} & set(clean.concepts)
    assert {"dog", "cat", "car", "tree", "man", "computer"} <= set(clean.concepts)
