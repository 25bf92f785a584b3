"""A run's name and notes are checked against their limits; a relabel with its parent's labelling is recognised."""

from __future__ import annotations

import pytest

from app.jobs.runs.details import RunDetailsEdit, check_run_details
from app.jobs.runs.relabel_noop import RelabelChangesNothing, refuse_reproducing_relabel, reproduces_parent
from dissect_core.config import DissectConfig

PARENT = DissectConfig(model="resnet18", layers=("layer4",), probe="probe", concepts="a.txt", encoder="fake:enc")
WORDS = ["dog", "cat"]


def test_names_and_notes_within_their_limits_pass_and_longer_ones_are_named() -> None:
    assert check_run_details(RunDetailsEdit(name="n" * 200, notes="x" * 5000)) == []
    assert check_run_details(RunDetailsEdit(name="  " + "n" * 200 + "  ")) == []  # counted without the spaces
    problems = check_run_details(RunDetailsEdit(name="n" * 201, notes="x" * 5001))
    assert problems == [
        "Name too long: 201 characters, where a run's name may have at most 200; shorten it.",
        "Notes too long: 5,001 characters, where a run's notes may have at most 5,000; shorten it.",
    ]


def test_a_relabel_reproduces_its_parent_only_with_the_same_concepts_and_labelling_settings() -> None:
    same = DissectConfig(**{**PARENT.to_dict(), "layers": ("layer4",), "concepts": "b.txt"})
    assert reproduces_parent(PARENT, WORDS, same, list(WORDS))  # another file, the same words
    assert not reproduces_parent(PARENT, WORDS, same, [*WORDS, "zebra"])
    for change in ({"similarity": "cos"}, {"pool": "max"}, {"encoder": "fake:other"}, {"similarity_params": {"a": 1}}):
        changed = DissectConfig(**{**PARENT.to_dict(), "layers": ("layer4",), **change})
        assert not reproduces_parent(PARENT, WORDS, changed, WORDS), change
    with pytest.raises(RelabelChangesNothing, match=r"would reproduce run #7: change the concept set, similarity"):
        refuse_reproducing_relabel(7, PARENT, WORDS, same, WORDS)
