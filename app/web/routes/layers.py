"""A layer: its summary, and its page, the neuron grid in any sort, filter and page (htmx swaps the grid alone)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from sqlalchemy.orm import Session

from app.read.caches import ReadCache
from app.read.schemas.layers import LayerSummary
from app.read.schemas.runs import GRID_SORT, NeuronSort
from app.web.deps import PreloaderDep, ReadCacheDep, SessionDep
from app.web.errors import API_ERRORS
from app.web.resources import Page, resource
from app.web.views.paging import MAX_PAGE, PAGE_SIZE, Id, PageNumber, make_pager, page_offset, shown_pages
from dissect_core.evaluation.verdict import Verdict

SORT_CHOICES: tuple[tuple[str, str], ...] = (
    ("unit", "Unit ↑"),
    ("-unit", "Unit ↓"),
    ("-score", "Score ↓ (best first)"),
    ("score", "Score ↑ (weakest first)"),
    ("label", "Label A→Z"),
    ("-label", "Label Z→A"),
    ("-polysemanticity", "Polysemantic units first"),
    ("polysemanticity", "Monosemantic units first"),
    ("-clarity", "Clarity ↓ (clearest first)"),
    ("clarity", "Clarity ↑ (least clear first)"),
)
#: The sorts a layer with an evaluation also offers: by the label's out-of-fold r.
R_SORT_CHOICES: tuple[tuple[str, str], ...] = (
    ("-r", "r ↓ (best explained first)"),
    ("r", "r ↑ (least explained first)"),
)

#: What htmx gets of a layer page: the whole grid, or the next cards alone ("load more").
GridPart = Literal["grid", "cards"]

router = APIRouter(tags=["runs"], responses=API_ERRORS)


def layer_page_context(
    session: Session,
    cache: ReadCache,
    run_id: Id,
    layer: str,
    *,
    sort: NeuronSort,
    q: str,
    page: int,
    reliable: bool = False,
    verdict: Verdict | None = None,
    start: int | None = None,
    cards_only: bool = False,
) -> dict[str, object]:
    """Return what layer.html and its grid partials need for one grid state: pages `start`…`page` (`page` alone by
    default; `cards_only`: the cards of `page` alone, for "load more", with the pager of every page on screen)."""
    run = cache.run(session, run_id)
    facts = cache.layer(session, run_id, layer)
    index = cache.layer_index(session, run_id, layer)
    first_page = page if cards_only else shown_pages(page, start)
    limit = PAGE_SIZE * (page - first_page + 1)
    listing = index.page(
        offset=page_offset(first_page), limit=limit, sort=sort, q=q, reliable=reliable, verdict=verdict
    )
    return {
        "title": f"{facts.name} · run {run_id}",
        "run": run,
        "run_id": run_id,
        "layer": facts.summary,
        "page": listing,
        "pager": make_pager(listing, page, start=start),
        # The default sort (GRID_SORT, by r) leads; a layer without an evaluation has no r: its grid is in unit order.
        "sorts": R_SORT_CHOICES + SORT_CHOICES if facts.summary.evaluation is not None else SORT_CHOICES,
        "layer_index": index,
    }


def layer_page(
    _summary: LayerSummary,
    run_id: Id,
    layer: str,
    session: SessionDep,
    cache: ReadCacheDep,
    preloader: PreloaderDep,
    sort: NeuronSort = GRID_SORT,
    q: str = "",
    page: PageNumber = 1,
    part: GridPart = "grid",
    reliable: bool = False,
    verdict: Annotated[Verdict | Literal[""] | None, Query(description="only labels with this grade")] = None,
    start: Annotated[int | None, Query(ge=1, le=MAX_PAGE, description="the first page on screen")] = None,
) -> dict[str, object]:
    """Return layer.html's context for the grid state in the URL (`reliable`: only top-grade labels; `verdict`:
    only labels with that grade).

    `part` is what htmx gets (`grid_fragment` reads it); it is declared so that kept answers are keyed by it.
    """
    preloader.request(run_id, layer)  # so the first concept typed finds the encoder and the layer loaded
    return layer_page_context(
        session,
        cache,
        run_id,
        layer,
        sort=sort,
        q=q.strip(),
        page=page,
        reliable=reliable,
        verdict=verdict or None,  # the grade menu's "any grade" sends an empty value
        start=start,
        cards_only=part == "cards",
    )


def grid_fragment(request: Request) -> str:
    """Return what htmx gets of a layer page: the next cards alone for "load more" (`part=cards`), or the grid."""
    return "partials/neuron_cards.html" if request.query_params.get("part") == "cards" else "partials/neuron_grid.html"


@resource(
    router,
    "/runs/{run_id}/layers/{layer}",
    html=Page("layer.html", context=layer_page, fragment=grid_fragment, immutable=True),
)
def layer(run_id: Id, layer: str, session: SessionDep, cache: ReadCacheDep) -> LayerSummary:
    """One layer of a run."""
    return cache.layer(session, run_id, layer).summary
