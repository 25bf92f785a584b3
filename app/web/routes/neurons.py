"""Neurons: one neuron's permalink, one page of a layer's neurons, and a model's latest-run permalink."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse

from app.core.urls import api_url, neuron_url
from app.read.concepts.search import MAX_CONCEPT_CHARS
from app.read.layers import queries as layer_queries
from app.read.schemas.neurons import NeuronDetail, NeuronList
from app.read.schemas.runs import GRID_SORT, NeuronSort, RunDetail
from app.web import openapi_examples as examples
from app.web.deps import PreloaderDep, ReadCacheDep, SessionDep
from app.web.errors import API_ERRORS
from app.web.resources import Page, Redirect, resource
from app.web.views.paging import PAGE_SIZE, Id, Limit, Offset, linked, unit_grid_url
from app.web.views.sorted_neighbours import neighbour_links
from app.web.views.top_images_pager import TopPage, top_images_page
from dissect_core.evaluation.verdict import Verdict

router = APIRouter(tags=["neurons"], responses=API_ERRORS)


def neuron_page_context(run: RunDetail, neuron: NeuronDetail, top_page: int = 1) -> dict[str, object]:
    """Return what neuron.html needs for a neuron (no concept scored yet), showing a page of its top images."""
    return {
        "title": f"{neuron.label} · {neuron.layer}/{neuron.unit}",
        "run": run,
        "neuron": neuron,
        "top_images": top_images_page(neuron, top_page),
        "layer_back_url": unit_grid_url(run.id, neuron.layer, neuron.unit),
        "concept": None,
        "concept_score": None,
        "concept_error": None,
    }


def neuron_page(
    neuron: NeuronDetail,
    session: SessionDep,
    cache: ReadCacheDep,
    preloader: PreloaderDep,
    top_page: TopPage = 1,
    sort: NeuronSort = GRID_SORT,
    q: str = "",
    concept: Annotated[
        str, Query(max_length=MAX_CONCEPT_CHARS, description="a concept to score on the neuron (a search carries it)")
    ] = "",
) -> dict[str, object]:
    """Return neuron.html's context: label, runners-up, a page of top images with boxes and heatmaps, settings
    (the distribution panels load after it: see routes/distribution.py); previous/next follow the grid's
    `sort`/`q`; a `concept` fills the concept box, which scores it once the page is shown."""
    preloader.request(neuron.run_id, neuron.layer)  # so the first concept scored on it finds the encoder loaded
    run = cache.run(session, neuron.run_id)
    return {
        **neuron_page_context(run, neuron, top_page),
        "neighbours": neighbour_links(session, cache, neuron, sort, q),
        "concept": concept.strip() or None,
    }


@resource(
    router,
    "/runs/{run_id}/layers/{layer}/neurons/{unit}",
    html=Page("neuron.html", context=neuron_page, immutable=True),
    immutable=True,
    responses=examples.NEURON,
)
def neuron(run_id: Id, layer: str, unit: Id, session: SessionDep, cache: ReadCacheDep) -> NeuronDetail:
    """One neuron: label, score, runners-up, all top images, neighbours."""
    return cache.layer_index(session, run_id, layer).detail(cache.run(session, run_id), unit)


@resource(router, "/runs/{run_id}/layers/{layer}/neurons", html=None, immutable=True, responses=examples.NEURONS)
def neurons(
    request: Request,
    run_id: Id,
    layer: str,
    session: SessionDep,
    cache: ReadCacheDep,
    offset: Offset = 0,
    limit: Limit = PAGE_SIZE,
    sort: NeuronSort = "unit",
    q: str = "",
    reliable: Annotated[bool, Query(description="only neurons whose label is reliable (verdict explains)")] = False,
    verdict: Annotated[Verdict | None, Query(description="only neurons whose label has this grade")] = None,
) -> NeuronList:
    """One page of a layer's neurons; sort by unit, score, label, r, clarity or polysemanticity (`-` for
    descending), filter by q, by reliability and by the label's grade; `next` links the following page."""
    index = cache.layer_index(session, run_id, layer)
    return linked(index.page(offset=offset, limit=limit, sort=sort, q=q, reliable=reliable, verdict=verdict), request)


@resource(
    router,
    "/models/{model_name}/layers/{layer}/neurons/{unit}",
    html=Redirect(status_code=307),
    json=Redirect(api_url, status_code=307),
    response_class=RedirectResponse,
    status_code=307,
)
def model_neuron(model_name: str, layer: str, unit: Id, session: SessionDep) -> str:
    """Redirect to the neuron in the model's latest run that has the layer."""
    return neuron_url(layer_queries.latest_run_with_layer(session, model_name, layer), layer, unit)
