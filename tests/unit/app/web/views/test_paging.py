"""Grid paging: pager links keep the grid state; a page past the end is NotFound."""

from __future__ import annotations

import pytest

from app.core.errors import NotFound
from app.read.schemas.layers import LayerScoreStats
from app.read.schemas.neurons import NeuronList
from app.web.views.paging import grid_params, make_pager, unit_grid_url


def listing(total: int, offset: int, n_shown: int, q: str = "") -> NeuronList:
    return NeuronList(
        run_id=1,
        layer="blocks.3",
        n_units=total,
        total=total,
        offset=offset,
        limit=96,
        sort="-score",
        q=q,
        stats=LayerScoreStats(score_min=0, score_max=1, low_confidence_below=0.25),
        neurons=[],
    ).model_copy(update={"neurons": [None] * n_shown})


def test_pager_links_keep_the_grid_state() -> None:
    pager = make_pager(listing(2048, 96, 96), page=2)
    assert (pager.page, pager.n_pages, pager.first, pager.last) == (2, 22, 97, 192)
    assert pager.previous_url == "/runs/1/layers/blocks.3?sort=-score"
    assert pager.next_url == "/runs/1/layers/blocks.3?sort=-score&page=3"
    assert pager.more_url == "/runs/1/layers/blocks.3?sort=-score&page=3&start=2&part=cards"
    last = make_pager(listing(2048, 2016, 32), page=22)
    assert last.next_url is None and last.more_url is None and last.last == 2048
    with pytest.raises(NotFound, match="22 pages"):
        make_pager(listing(2048, 0, 0), page=23)
    assert grid_params("unit", "", 1) == {}


def test_pager_links_keep_the_reliable_filter() -> None:
    reliable = listing(300, 0, 96).model_copy(update={"reliable": True})
    pager = make_pager(reliable, page=1)
    assert pager.next_url == "/runs/1/layers/blocks.3?sort=-score&reliable=true&page=2"
    assert grid_params("unit", "", 1, reliable=True) == {"reliable": "true"}
    with pytest.raises(NotFound, match="matching the filter"):
        make_pager(reliable, page=5)


def test_a_units_grid_url_names_the_page_that_holds_it() -> None:
    assert unit_grid_url(1, "fc", 95) == "/runs/1/layers/fc#unit-95"
    assert unit_grid_url(1, "fc", 96) == "/runs/1/layers/fc?page=2#unit-96"
    assert unit_grid_url(1, "conv_head", 705) == "/runs/1/layers/conv_head?page=8#unit-705"
