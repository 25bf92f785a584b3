"""A unit's class name on a classifier's final layer, and whether its label matches the class or a synonym."""

from __future__ import annotations

import pytest

from app.read.classes.names import class_fields, label_matches_class, unit_class_name

NAMES = ["tench, Tinca tinca", "goldfish", "great_white_shark", "Arabian camel, dromedary"]


@pytest.mark.parametrize(
    ("label", "class_name", "matches"),
    [
        ("tench", "tench, Tinca tinca", True),
        ("tinca tinca", "tench, Tinca tinca", True),
        ("Goldfish", "goldfish", True),
        ("goldfishes", "goldfish", True),
        ("dromedaries", "Arabian camel, dromedary", True),
        ("great white shark", "great_white_shark", True),
        ("camel", "Arabian camel, dromedary", False),
        ("fish", "goldfish", False),
        ("", "goldfish", False),
    ],
)
def test_a_label_matches_the_class_name_or_a_synonym(label: str, class_name: str, matches: bool) -> None:
    assert label_matches_class(label, class_name) is matches


def test_only_a_layer_with_one_unit_per_class_has_class_names() -> None:
    assert unit_class_name(NAMES, 4, 1) == "goldfish"
    assert unit_class_name(NAMES, 64, 1) is None  # not the final layer
    assert unit_class_name((), 4, 1) is None
    assert unit_class_name(None, 4, 1) is None  # random weights, or a run stored before class names


def test_class_fields_say_nothing_off_the_final_layer() -> None:
    assert class_fields(NAMES, 4, 3, "dromedary") == {
        "class_name": "Arabian camel, dromedary",
        "label_matches_class": True,
    }
    assert class_fields(NAMES, 10, 3, "dromedary") == {"class_name": None, "label_matches_class": None}
