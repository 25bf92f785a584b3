"""Bounds on what a URL may ask for (ids, units, limits, offsets, pages), and a layer grid's page numbers, neurons
shown and links."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Path, Query, Request

from app.core.errors import NotFound
from app.core.urls import layer_url
from app.read.schemas.common import ListPage
from app.read.schemas.neurons import NeuronList
from app.read.schemas.runs import GRID_SORT, NeuronSort

PAGE_SIZE = 96
#: The largest `limit` an API list accepts.
MAX_LIMIT = 500
#: The largest id, unit number or offset a URL may name: the largest signed 64-bit integer, what the databases store.
MAX_ID = 2**63 - 1
#: The most pages one layer page shows at once (a reload after many "load more"s shows the last ones).
MAX_PAGES_SHOWN = 10
#: The largest grid page a URL may name.
MAX_PAGE = MAX_ID // PAGE_SIZE

#: A run id, job id or unit number in a path; one out of range is answered 404 (app.web.errors), as a missing one.
Id = Annotated[int, Path(ge=0, le=MAX_ID, description="a whole number from 0 to 2^63 − 1")]
#: How many items an API list skips.
Offset = Annotated[int, Query(ge=0, le=MAX_ID, description="how many items to skip, 0 to 2^63 − 1")]
#: How many grid pages in a layer page is.
PageNumber = Annotated[int, Query(ge=1, le=MAX_PAGE)]
#: How many items one page of an API list holds.
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"the most items on the page, 1 to {MAX_LIMIT}")]

Item = TypeVar("Item")
Listing = TypeVar("Listing", bound=ListPage[Any])


def linked(listing: Listing, request: Request) -> Listing:
    """Return the page with `next` set: the request's path and query with the offset of the next page, or None on
    the last page. The URL is relative (kept answers are replayed to every host name the server answers to)."""
    end = listing.offset + len(listing.items)
    if not listing.items or end >= listing.total:
        return listing.model_copy(update={"next": None})
    query = request.url.include_query_params(offset=end).query
    return listing.model_copy(update={"next": f"{request.url.path}?{query}"})


def page_of(items: Sequence[Item], request: Request, *, offset: int, limit: int) -> ListPage[Item]:
    """Return the page of a whole list that starts at `offset` and holds at most `limit` items, linked to the next."""
    page = ListPage[Item](items=list(items[offset : offset + limit]), total=len(items), offset=offset, limit=limit)
    return linked(page, request)


def whole(items: Sequence[Item]) -> ListPage[Item]:
    """Return a short list (a run's layers, the encoders) as one page holding all of it."""
    return ListPage[Item](items=list(items), total=len(items), offset=0, limit=max(1, len(items)))


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
    #: The first page on screen: below `page` after "load more" added pages to it.
    start: int = 0
    #: The address of what is on screen once "load more" added the next page (the browser's URL is set to it).
    more_screen_url: str | None = None

    @property
    def pages_shown(self) -> str:
        """Return the pages on screen: `page 3` alone, or `pages 1–3` after "load more"."""
        return f"pages {self.start}–{self.page}" if self.start and self.start < self.page else f"page {self.page}"


def page_offset(page: int, page_size: int = PAGE_SIZE) -> int:
    """Return the offset of the first neuron on a (1-based) page."""
    return (page - 1) * page_size


def grid_params(
    sort: NeuronSort,
    q: str,
    page: int | None = None,
    part: str | None = None,
    *,
    reliable: bool = False,
    verdict: str | None = None,
    start: int | None = None,
) -> dict[str, str | int]:
    """Return the grid state as URL parameters, leaving out defaults so URLs stay short."""
    params: dict[str, str | int] = {}
    if q:
        params["q"] = q
    if sort != GRID_SORT:
        params["sort"] = sort
    if reliable:
        params["reliable"] = "true"
    if verdict:
        params["verdict"] = verdict
    if page and page > 1:
        params["page"] = page
    if start and page and start < page:
        params["start"] = start
    if part:
        params["part"] = part
    return params


def unit_page(unit: int, page_size: int = PAGE_SIZE) -> int:
    """Return the page of a layer's default grid (every unit, by unit number) that holds the unit."""
    return unit // page_size + 1


def unit_grid_url(run_id: int, layer: str, unit: int) -> str:
    """Return the URL of the layer grid's page that holds the unit, scrolled to its card."""
    return layer_url(run_id, layer, **grid_params("unit", "", unit_page(unit))) + f"#unit-{unit}"


def shown_pages(page: int, start: int | None) -> int:
    """Return the first page on screen for `?page=N&start=S`: S when it is below N (within MAX_PAGES_SHOWN), else N."""
    return max(start, page - MAX_PAGES_SHOWN + 1) if start is not None and start < page else page


def make_pager(listing: NeuronList, page: int, page_size: int = PAGE_SIZE, start: int | None = None) -> Pager:
    """Return the pager of the grid showing pages `start`…`page` (`page` alone by default), or raise NotFound when
    the page is past the last one."""
    n_pages = max(1, -(-listing.total // page_size))
    if page > n_pages:
        filtered = listing.q or listing.reliable or listing.verdict
        raise NotFound(
            f"Layer '{listing.layer}' has {n_pages} page{'s' if n_pages > 1 else ''} of {page_size} neurons"
            f"{' matching the filter' if filtered else ''}, so there is no page {page}; "
            "go to page 1."
        )
    first_page = shown_pages(page, start)

    def url(target: int, part: str | None = None, since: int | None = None) -> str:
        params = grid_params(
            listing.sort, listing.q, target, part, reliable=listing.reliable, verdict=listing.verdict, start=since
        )
        return layer_url(listing.run_id, listing.layer, **params)

    has_next = page < n_pages
    remaining = listing.total - page * page_size
    return Pager(
        page=page,
        n_pages=n_pages,
        first=page_offset(first_page, page_size) + 1 if listing.total else 0,
        last=min(listing.total, page * page_size),
        previous_url=url(first_page - 1) if first_page > 1 else None,
        next_url=url(page + 1) if has_next else None,
        more_url=url(page + 1, "cards", first_page) if has_next else None,
        more_count=min(page_size, remaining),
        start=first_page,
        more_screen_url=url(page + 1, since=first_page) if has_next else None,
    )
