"""Bounds on what a URL may ask for (ids, units, limits, offsets, pages), and a layer grid's page numbers, neurons
shown and links."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Path, Query

from app.core.errors import NotFound
from app.core.urls import layer_url
from app.read.schemas import NeuronList, NeuronSort

PAGE_SIZE = 96
#: The largest `limit` an API list accepts.
MAX_LIMIT = 500
#: The largest id, unit number or offset a URL may name: the largest signed 64-bit integer, what the databases store.
MAX_ID = 2**63 - 1
#: The largest grid page a URL may name.
MAX_PAGE = MAX_ID // PAGE_SIZE

#: A run id, job id or unit number in a path; one out of range is answered 404 (app.web.errors), as a missing one.
Id = Annotated[int, Path(ge=0, le=MAX_ID, description="a whole number from 0 to 2^63 − 1")]
#: How many items an API list skips.
Offset = Annotated[int, Query(ge=0, le=MAX_ID, description="how many items to skip, 0 to 2^63 − 1")]
#: How many grid pages in a layer page is.
PageNumber = Annotated[int, Query(ge=1, le=MAX_PAGE)]


@dataclass(frozen=True)
class Pager:
    """Where a grid page sits among its pages, and the URLs of its neighbours and of "load more"."""

    page: int
    n_pages: int
    first: int
    last: int
    previous_url: str | None
    next_url: str | None
    more_url: str | None
    more_count: int


def page_offset(page: int, page_size: int = PAGE_SIZE) -> int:
    """Return the offset of the first neuron on a (1-based) page."""
    return (page - 1) * page_size


def grid_params(
    sort: NeuronSort, q: str, page: int | None = None, part: str | None = None, *, reliable: bool = False
) -> dict[str, str | int]:
    """Return the grid state as URL parameters, leaving out defaults so URLs stay short."""
    params: dict[str, str | int] = {}
    if q:
        params["q"] = q
    if sort != "unit":
        params["sort"] = sort
    if reliable:
        params["reliable"] = "true"
    if page and page > 1:
        params["page"] = page
    if part:
        params["part"] = part
    return params


def unit_page(unit: int, page_size: int = PAGE_SIZE) -> int:
    """Return the page of a layer's default grid (every unit, by unit number) that holds the unit."""
    return unit // page_size + 1


def unit_grid_url(run_id: int, layer: str, unit: int) -> str:
    """Return the URL of the layer grid's page that holds the unit, scrolled to its card."""
    return layer_url(run_id, layer, **grid_params("unit", "", unit_page(unit))) + f"#unit-{unit}"


def make_pager(listing: NeuronList, page: int, page_size: int = PAGE_SIZE) -> Pager:
    """Return the pager of one grid page, or raise NotFound when the page is past the last one."""
    n_pages = max(1, -(-listing.total // page_size))
    if page > n_pages:
        raise NotFound(
            f"Layer '{listing.layer}' has {n_pages} page{'s' if n_pages > 1 else ''} of {page_size} neurons"
            f"{' matching the filter' if listing.q or listing.reliable else ''}; there is no page {page}. Go to page 1."
        )

    def url(target: int, part: str | None = None) -> str:
        params = grid_params(listing.sort, listing.q, target, part, reliable=listing.reliable)
        return layer_url(listing.run_id, listing.layer, **params)

    has_next = page < n_pages
    remaining = listing.total - page * page_size
    return Pager(
        page=page,
        n_pages=n_pages,
        first=listing.offset + 1 if listing.neurons else 0,
        last=listing.offset + len(listing.neurons),
        previous_url=url(page - 1) if page > 1 else None,
        next_url=url(page + 1) if has_next else None,
        more_url=url(page + 1, "cards") if has_next else None,
        more_count=min(page_size, remaining),
    )
