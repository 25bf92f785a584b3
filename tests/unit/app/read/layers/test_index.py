"""The in-memory layer index: grid sorts (ties by ascending unit), filters, pages, neighbours, missing units."""

from __future__ import annotations

import pytest

from app.core.errors import NotFound
from app.read.layers.index import IndexedNeuron, LayerIndex
from app.read.schemas.layers import LayerScoreStats
from app.read.schemas.neurons import NeuronSummary
from app.read.schemas.runs import RunDetail

LABELS = {0: "dog", 1: "Cat", 2: "dog", 5: "bird", 7: "cat"}
SCORES = {0: 0.5, 1: 0.9, 2: 0.5, 5: 0.1, 7: 0.9}


def make_index() -> LayerIndex:
    stats = LayerScoreStats(score_min=0.1, score_max=0.9, low_confidence_below=0.3)
    neurons = tuple(
        IndexedNeuron(
            summary=NeuronSummary(
                unit=unit, label=label, score=SCORES[unit], low_confidence=False, score_fraction=0.5, top_images=[]
            ),
            top_images=(),
            runners_up=(),
            label_folded=label.casefold(),
        )
        for unit, label in LABELS.items()
    )
    return LayerIndex(run_id=3, layer="blocks.1", layer_kind="conv", n_units=8, stats=stats, neurons=neurons)


@pytest.mark.parametrize(
    ("sort", "units"),
    [
        ("unit", [0, 1, 2, 5, 7]),
        ("-unit", [7, 5, 2, 1, 0]),
        ("score", [5, 0, 2, 1, 7]),
        ("-score", [1, 7, 0, 2, 5]),
        ("label", [5, 1, 7, 0, 2]),
        ("-label", [0, 2, 1, 7, 5]),
    ],
)
def test_sorts_break_ties_by_ascending_unit(sort: str, units: list[int]) -> None:
    assert [neuron.unit for neuron in make_index().ordered(sort)] == units


def test_filter_matches_label_text_in_any_case_or_a_unit_number() -> None:
    index = make_index()
    assert [neuron.unit for neuron in index.matching("unit", "CAT")] == [1, 7]
    assert [neuron.unit for neuron in index.matching("unit", "#5")] == [5]
    assert [neuron.unit for neuron in index.matching("unit", " 7 ")] == [7]
    assert index.matching("unit", "100%_") == []


def test_page_slices_the_matches_and_counts_them_all() -> None:
    page = make_index().page(offset=1, limit=2, sort="-score", q="")
    assert page.total == 5 and [neuron.unit for neuron in page.items] == [7, 0]


def test_detail_links_neighbours_in_unit_order_and_refuses_missing_units() -> None:
    index = make_index()
    run = RunDetail.model_construct(id=3, model_name="tinynet")
    detail = index.detail(run, 5)
    assert (detail.previous_unit, detail.next_unit) == (2, 7)
    assert index.detail(run, 0).previous_unit is None and index.detail(run, 7).next_unit is None
    with pytest.raises(NotFound, match="units 0–7; there is no unit 4"):
        index.detail(run, 4)


def make_evaluated_index() -> LayerIndex:
    """Units 0–4 with r 0.1, 0.5, none (an undefined r), 0.5, 0.3; units 1 and 3 reliable."""
    stats = LayerScoreStats(score_min=0.1, score_max=0.9, low_confidence_below=0.3)
    rs = {0: 0.1, 1: 0.5, 2: None, 3: 0.5, 4: 0.3}
    neurons = tuple(
        IndexedNeuron(
            summary=NeuronSummary(
                unit=unit,
                label="dog" if unit % 2 else "cat",
                score=0.5,
                low_confidence=False,
                score_fraction=0.5,
                explained_r=r,
                reliable=unit in (1, 3),
                top_images=[],
            ),
            top_images=(),
            runners_up=(),
            label_folded="dog" if unit % 2 else "cat",
        )
        for unit, r in rs.items()
    )
    return LayerIndex(run_id=3, layer="blocks.1", layer_kind="conv", n_units=5, stats=stats, neurons=neurons)


@pytest.mark.parametrize(("sort", "units"), [("-r", [1, 3, 4, 0, 2]), ("r", [0, 4, 1, 3, 2])])
def test_r_sorts_break_ties_by_unit_and_put_neurons_without_r_last(sort: str, units: list[int]) -> None:
    assert [neuron.unit for neuron in make_evaluated_index().ordered(sort)] == units


def test_the_reliable_filter_keeps_reliable_labels_alone_and_combines_with_q() -> None:
    index = make_evaluated_index()
    assert [neuron.unit for neuron in index.matching("-r", "", reliable=True)] == [1, 3]
    assert index.matching("unit", "cat", reliable=True) == []
    page = index.page(offset=0, limit=10, sort="unit", q="dog", reliable=True)
    assert page.reliable and page.total == 2
