"""Which units detect X? The one search box of a run (labels, their word forms and near concepts, and the concept
ranked over every layer) and the cross-layer concept ranking on its own."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from app.core.urls import API_PREFIX, api_url, run_concepts_url, search_url
from app.read.runs import queries as run_queries
from app.read.schemas.common import ListPage
from app.read.schemas.search import ConceptRanking, HitSort, UnitSearch
from app.read.search.ranking import rank_concept
from app.read.search.units import HIT_ORDERS, search_units
from app.web.deps import ReadCacheDep, SearcherDep, SessionDep
from app.web.errors import API_ERRORS
from app.web.resources import Page, resource
from app.web.routes.concepts import Concept
from app.web.views.paging import MAX_LIMIT, Id, Offset

router = APIRouter(tags=["search"], responses=API_ERRORS)

#: The sorts the search page offers for its hits.
HIT_SORT_CHOICES: tuple[tuple[HitSort, str], ...] = (
    ("layer", "Layer (forward order)"),
    ("score", "Concept score ↓"),
    ("r", "r ↓ (best explained first)"),
)


def next_offset(page: ListPage[Any]) -> int | None:
    """Return where the page after `page` starts, or None when `page` is the last."""
    end = page.offset + page.limit
    return end if end < page.total else None


@resource(router, "/runs/{run_id}/concepts", html=None)
def run_concepts(
    run_id: Id,
    q: Concept,
    session: SessionDep,
    cache: ReadCacheDep,
    searcher: SearcherDep,
    offset: Offset = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 24,
    layer: Annotated[str | None, Query(description="rank this layer's units alone; left out: every layer")] = None,
) -> ConceptRanking:
    """A typed concept ranked over every layer of the run in one answer, best first: each unit with its label,
    verdict, r, crops, the concept's score and rank within its layer, and a standardised score comparable across
    layers; with the warning when the encoder does not recognise the concept or too few probe images carry it."""
    ranking = rank_concept(session, cache, searcher, run_id, q, offset=offset, limit=limit, layer=layer)
    after = next_offset(ranking)
    following = None if after is None else run_concepts_url(run_id, q, offset=after, limit=limit, layer=layer)
    return ranking.model_copy(update={"next": following and api_url(following)})


def search_page(result: UnitSearch, session: SessionDep) -> dict[str, object]:
    """Return search.html's context: the run, the hits and the concept ranking; sorted by r, the ranking's rows are
    too (layer order would scatter a ranking, so otherwise it keeps its own, best standardised score first)."""
    ranked = list(result.ranking.items) if result.ranking else []
    return {
        "title": f"{result.q or 'search'} · run {result.run_id}",
        "run": run_queries.run_detail(session, result.run_id),
        "result": result,
        "ranked": sorted(ranked, key=HIT_ORDERS["r"]) if result.sort == "r" else ranked,
        "sorts": HIT_SORT_CHOICES,
        "next_url": result.next and result.next.removeprefix(API_PREFIX),
        "ranking_api_url": result.ranking and api_url(run_concepts_url(result.run_id, result.ranking.concept)),
    }


@resource(router, "/runs/{run_id}/search", html=Page("search.html", context=search_page))
def search(
    run_id: Id,
    session: SessionDep,
    cache: ReadCacheDep,
    searcher: SearcherDep,
    q: str = "",
    sort: Annotated[HitSort, Query(description="score: the concept's standardised score; r; layer order")] = "layer",
    offset: Offset = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 200,
) -> UnitSearch:
    """Which units detect q? The units of every layer whose label contains q or one of its word forms (`dog`:
    `dogs`), or is one of the run's labels nearest q by the run's encoder (`canine`), a page of them in `sort`
    order; and q ranked as a concept over every layer (its first units; `/concepts` pages through them all)."""
    result = search_units(session, cache, searcher, run_id, q, sort=sort, offset=offset, limit=limit)
    after = next_offset(result)
    following = None if after is None else search_url(run_id, result.q, sort=sort, offset=after, limit=limit)
    return result.model_copy(update={"next": following and api_url(following)})
