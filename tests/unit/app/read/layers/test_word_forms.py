"""A word's forms: its base forms under every reading and their inflections; labels split into words."""

from __future__ import annotations

from app.read.layers.word_forms import label_words, word_forms


def test_forms_join_a_word_with_its_base_form_and_inflections() -> None:
    assert {"dog", "dogs"} <= word_forms("Dogs")
    assert {"goose", "geese"} <= word_forms("geese") and {"mouse", "mice"} <= word_forms("mouse")
    assert {"puppy", "puppies"} <= word_forms("puppies")


def test_a_participle_adjective_and_its_noun_find_each_other() -> None:
    assert {"stripe", "stripes"} <= word_forms("striped")
    assert "striped" in word_forms("stripe") and "striped" in word_forms("stripes")


def test_numbers_and_unknown_words_are_their_own_only_form() -> None:
    assert word_forms("3") == {"3"} and word_forms("x7") == {"x7"}
    assert "qwzx" in word_forms("qwzx")


def test_labels_split_into_case_folded_words() -> None:
    assert label_words("Tabby_cat, STRIPED-shirt") == ["tabby", "cat", "striped", "shirt"]
    assert label_words("") == []
