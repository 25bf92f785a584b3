"""Comparing two runs of one architecture: per layer the share of changed labels, and a layer's neurons side by side."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Query, Request

from app.core.urls import compare_url
from app.read.runs.compare import RunsNotComparable, compare_runs
from app.read.runs.lineage import same_architecture_links
from app.read.schemas.compare import CompareSort, RunComparison
from app.web.deps import ArtifactsReaderDep, ReadCacheDep, SessionDep
from app.web.errors import API_ERRORS, ErrorBody
from app.web.resources import Page, resource
from app.web.views.paging import MAX_ID, Id, Limit, Offset, linked

router = APIRouter(tags=["runs"], responses=API_ERRORS)

#: The comparison's orders as the page's column headers offer them: (sort, title).
SORTS: tuple[tuple[CompareSort, str], ...] = (
    ("changed", "label changed first"),
    ("unit", "unit"),
    ("-unit", "unit, descending"),
    ("delta", "Δ score, ascending"),
    ("-delta", "Δ score, descending"),
    ("-abs_delta", "|Δ score|, largest first"),
    ("abs_delta", "|Δ score|, smallest first"),
)
PAGE_SIZE = 100
#: The other run: a run id, in the query.
OtherRun = Annotated[int, Query(ge=0, le=MAX_ID, description="the id of the run to compare with")]


def page_link(comparison: RunComparison, **changes: str | int) -> str:
    """Return the compare page's URL with the comparison's layer, sort and offset, some of them changed."""
    params: dict[str, str | int] = {"other": comparison.other.id}
    if comparison.layer is not None:
        params["layer"] = comparison.layer
    params.update(sort=comparison.sort, offset=comparison.offset, limit=comparison.limit)
    params.update(changes)
    for key, default in (("offset", 0), ("limit", PAGE_SIZE)):
        if params.get(key) == default:
            del params[key]
    return f"{compare_url(comparison.run.id)}?{urlencode(params)}"


def compare_page(comparison: RunComparison, session: SessionDep) -> dict[str, object]:
    """Return compare.html's context: the comparison, its sorts, its pages' links and the runs to switch to."""
    offset, limit = comparison.offset, comparison.limit
    return {
        "title": f"compare run #{comparison.run.id} with run #{comparison.other.id}",
        "comparison": comparison,
        "sorts": SORTS,
        "page_link": page_link,
        "previous_url": page_link(comparison, offset=max(0, offset - limit)) if offset > 0 else None,
        "next_url": page_link(comparison, offset=offset + limit) if offset + limit < comparison.total else None,
        "comparable": same_architecture_links(session, comparison.run.id, comparison.architecture),
    }


@resource(
    router,
    "/runs/{run_id}/compare",
    html=Page("compare.html", context=compare_page),
    responses={409: {"model": ErrorBody, "description": "the runs are of different architectures"}},
)
def compare(
    request: Request,
    run_id: Id,
    other: OtherRun,
    session: SessionDep,
    cache: ReadCacheDep,
    reader: ArtifactsReaderDep,
    layer: Annotated[str, Query(description="the layer whose neurons are listed; the first shared one if empty")] = "",
    sort: CompareSort = "changed",
    offset: Offset = 0,
    limit: Limit = PAGE_SIZE,
) -> RunComparison:
    """Two runs of one architecture compared: per shared layer the share of neurons whose label changed, and one
    page of a layer's neurons with both labels, both scores and the change (`next` links the following page)."""
    try:
        comparison = compare_runs(
            session, cache, run_id, other, layer=layer, sort=sort, offset=offset, limit=limit, reader=reader
        )
        return linked(comparison, request)
    except RunsNotComparable as problem:
        raise HTTPException(409, str(problem)) from None
