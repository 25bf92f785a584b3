"""The one label-search rule: text in the label (any case), or a unit named as `7` or `#7`."""

from __future__ import annotations

from app.read.layers.label_query import LabelQuery


def test_text_matches_inside_labels_in_any_case() -> None:
    query = LabelQuery.parse("  Dog ")
    assert query.matches("hot dog", 3) and not query.matches("cat", 3)
    assert LabelQuery.parse("STRASSE").matches("straße".casefold(), 0)


def test_a_number_also_names_a_unit() -> None:
    assert LabelQuery.parse("#7").unit == 7 and LabelQuery.parse("7").unit == 7
    assert LabelQuery.parse("7").matches("cat", 7) and not LabelQuery.parse("7").matches("cat", 8)
    assert LabelQuery.parse("7 cats").unit is None


def test_huge_or_odd_numbers_name_no_unit_and_never_raise() -> None:
    assert LabelQuery.parse("9" * 25).unit is None
    assert LabelQuery.parse("9" * 5000).unit is None  # beyond int()'s digit limit
    assert LabelQuery.parse("²").unit is None  # a digit character that int() refuses


def test_empty_text_matches_everything() -> None:
    assert LabelQuery.parse("   ").is_empty


def test_word_forms_match_whole_words_of_a_label() -> None:
    assert LabelQuery.parse("dogs").matches("dog", 0) and LabelQuery.parse("dog").matches("dogs", 0)
    for query in ("stripe", "stripes", "striped"):
        assert all(LabelQuery.parse(query).matches(label, 0) for label in ("stripe", "striped", "stripes")), query
    assert LabelQuery.parse("geese").matches("goose", 0) and LabelQuery.parse("puppy").matches("puppies", 0)
    assert LabelQuery.parse("red cars").matches("red car", 0) and not LabelQuery.parse("red cars").matches("car", 0)
    # A base form matches whole words only: "was" (be) does not find "bee" or "beach".
    assert not LabelQuery.parse("was").matches("beach", 0) and not LabelQuery.parse("was").matches("bee", 0)


def test_a_one_word_query_lists_its_other_forms() -> None:
    assert LabelQuery.parse("Dog").other_forms == ["dogged", "dogging", "dogs"]
    assert "stripe" in LabelQuery.parse("striped").other_forms
    assert LabelQuery.parse("#3").other_forms == [] and LabelQuery.parse("red car").other_forms == []
