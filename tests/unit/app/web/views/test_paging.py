"""Grid paging: pager links keep the grid state; a page past the end is NotFound."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from app.core.errors import NotFound
from app.read.schemas.layers import LayerScoreStats
from app.read.schemas.neurons import NeuronList
from app.web.views.paging import grid_params, linked, make_pager, page_of, unit_grid_url


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
        items=[],
    ).model_copy(update={"items": [None] * n_shown})


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
    assert grid_params("-r", "", 1) == {}  # the grid's default order (by r) stays out of its URLs
    assert grid_params("unit", "", 1) == {"sort": "unit"}


def test_pager_links_keep_the_reliable_filter() -> None:
    reliable = listing(300, 0, 96).model_copy(update={"reliable": True})
    pager = make_pager(reliable, page=1)
    assert pager.next_url == "/runs/1/layers/blocks.3?sort=-score&reliable=true&page=2"
    assert grid_params("-r", "", 1, reliable=True) == {"reliable": "true"}
    with pytest.raises(NotFound, match="matching the filter"):
        make_pager(reliable, page=5)


def test_a_units_grid_url_names_the_page_that_holds_it() -> None:
    assert unit_grid_url(1, "fc", 95) == "/runs/1/layers/fc?sort=unit#unit-95"
    assert unit_grid_url(1, "fc", 96) == "/runs/1/layers/fc?sort=unit&page=2#unit-96"
    assert unit_grid_url(1, "conv_head", 705) == "/runs/1/layers/conv_head?sort=unit&page=8#unit-705"


def get(path: str, query: str) -> Request:
    return Request({"type": "http", "method": "GET", "path": path, "query_string": query.encode(), "headers": []})


def test_next_is_the_same_query_at_the_next_offset_and_none_on_the_last_page() -> None:
    request = get("/api/v1/runs/1/layers/blocks.3/neurons", "sort=-score&q=sky&limit=96&offset=96")
    assert linked(listing(2048, 96, 96), request).next == (
        "/api/v1/runs/1/layers/blocks.3/neurons?sort=-score&q=sky&limit=96&offset=192"
    )
    assert linked(listing(2048, 2016, 32), request).next is None
    assert linked(listing(0, 0, 0), request).next is None


def test_a_whole_list_is_paged_by_offset_and_limit() -> None:
    items = list(range(7))
    first = page_of(items, get("/api/v1/runs", "limit=3"), offset=0, limit=3)
    assert (first.items, first.total, first.next) == ([0, 1, 2], 7, "/api/v1/runs?limit=3&offset=3")
    last = page_of(items, get("/api/v1/runs", "limit=3&offset=6"), offset=6, limit=3)
    assert (last.items, last.next) == ([6], None)
