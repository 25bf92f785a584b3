"""Server-rendered pages: home, run, layer grid, neuron permalink, model redirect, label search."""

# No `from __future__ import annotations` in route modules: FastAPI must see the local `SessionDep` alias.

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session

from app.core.urls import layer_url, neuron_url, run_url
from app.read import queries
from app.read.read_cache import ReadCache, body_key
from app.read.schemas import NeuronSort
from app.web.htmx import is_htmx, vary_on_htmx
from app.web.paging import PAGE_SIZE, make_pager, page_offset

SORT_CHOICES: tuple[tuple[str, str], ...] = (
    ("unit", "Unit ↑"),
    ("-unit", "Unit ↓"),
    ("-score", "Score ↓ (best first)"),
    ("score", "Score ↑ (weakest first)"),
    ("label", "Label A→Z"),
    ("-label", "Label Z→A"),
)


def layer_page_context(
    session: Session, cache: ReadCache, run_id: int, layer: str, *, sort: NeuronSort, q: str, page: int
) -> dict[str, object]:
    """Return what layer.html and its grid partials need for one grid state."""
    run = cache.run(session, run_id)
    facts = cache.layer(session, run_id, layer)
    index = cache.layer_index(session, run_id, layer)
    listing = index.page(offset=page_offset(page), limit=PAGE_SIZE, sort=sort, q=q)
    return {
        "title": f"{facts.name} · run {run_id}",
        "run": run,
        "run_id": run_id,
        "layer": facts.summary,
        "page": listing,
        "pager": make_pager(listing, page),
        "sorts": SORT_CHOICES,
        "card_memo": index.card_memo,
    }


def neuron_page_context(session: Session, cache: ReadCache, run_id: int, layer: str, unit: int) -> dict[str, object]:
    """Return what neuron.html needs (no concept scored yet)."""
    run = cache.run(session, run_id)
    neuron = cache.layer_index(session, run_id, layer).detail(run, unit)
    return {
        "title": f"{neuron.label} · {neuron.layer}/{neuron.unit}",
        "run": run,
        "neuron": neuron,
        "concept": None,
        "concept_score": None,
        "concept_error": None,
    }


def make_pages_router(
    *, get_session: Callable[[], Iterator[Session]], templates: Jinja2Templates, cache: ReadCache
) -> APIRouter:
    """Return the router of the HTML pages."""
    router = APIRouter(include_in_schema=False)
    SessionDep = Annotated[Session, Depends(get_session)]
    open_session = contextmanager(get_session)

    async def cached_html(request: Request, render: Callable[[Session], tuple[str, dict[str, object]]]) -> Response:
        # Layer and neuron pages derive from a stored run alone, so a rendered body stays right forever;
        # ServeCachedBodies answers the next request for the same key before it reaches this router.
        key = body_key(request.url.path, request.url.query, is_htmx(request))
        cached = cache.body(key)
        if cached is None:

            def produce() -> bytes:
                with open_session() as session:
                    name, context = render(session)
                return templates.get_template(name).render(context).encode()

            cached = cache.keep(key, await run_in_threadpool(produce), "text/html; charset=utf-8")
        return vary_on_htmx(Response(cached.body, media_type=cached.media_type))

    @router.get("/", response_class=HTMLResponse)
    def home(request: Request, session: SessionDep) -> Response:
        """Runs and jobs."""
        context = {"title": "Runs", "runs": queries.list_runs(session), "jobs": queries.list_jobs(session)}
        return templates.TemplateResponse(request, "home.html", context)

    @router.get("/runs/{run_id}", response_class=HTMLResponse)
    def run_page(request: Request, run_id: int, session: SessionDep) -> Response:
        """A run's settings and layers."""
        run = queries.run_detail(session, run_id)
        context = {
            "title": f"run {run_id} · {run.model_name}",
            "run": run,
            "run_id": run_id,
            "typed_concepts": queries.list_typed_concepts(session, run_id),
        }
        return templates.TemplateResponse(request, "run.html", context)

    @router.get("/runs/{run_id}/layers")
    def switch_layer(run_id: int, session: SessionDep, layer: str = "") -> Response:
        """Redirect the layer switcher's choice to that layer's page."""
        if not layer:
            return RedirectResponse(run_url(run_id), status_code=303)
        found = queries.get_layer(session, run_id, layer)
        return RedirectResponse(layer_url(run_id, found.name), status_code=303)

    @router.get("/runs/{run_id}/search", response_class=HTMLResponse)
    def search_page(request: Request, run_id: int, session: SessionDep, q: str = "") -> Response:
        """Labels matching q across all layers of a run."""
        context = {
            "title": f"search · run {run_id}",
            "run": queries.run_detail(session, run_id),
            "result": queries.search_labels(session, run_id, q),
        }
        return templates.TemplateResponse(request, "search.html", context)

    # The neuron route comes before the layer route: `{layer:path}` would also match ".../neurons/7".
    @router.get("/runs/{run_id}/layers/{layer:path}/neurons/{unit}", response_class=HTMLResponse)
    async def neuron_page(request: Request, run_id: int, layer: str, unit: int) -> Response:
        """The neuron's permalink: label, runners-up, top images with boxes and heatmaps, settings."""
        return await cached_html(
            request, lambda session: ("neuron.html", neuron_page_context(session, cache, run_id, layer, unit))
        )

    @router.get("/runs/{run_id}/layers/{layer:path}", response_class=HTMLResponse)
    async def layer_page(
        request: Request,
        run_id: int,
        layer: str,
        sort: NeuronSort = "unit",
        q: str = "",
        page: Annotated[int, Query(ge=1)] = 1,
        part: str = "",
    ) -> Response:
        """A layer's neuron grid; htmx gets the grid (or, for "load more", the next cards) alone."""
        if is_htmx(request):
            name = "partials/neuron_cards.html" if part == "cards" else "partials/neuron_grid.html"
        else:
            name = "layer.html"

        def render(session: Session) -> tuple[str, dict[str, object]]:
            return name, layer_page_context(session, cache, run_id, layer, sort=sort, q=q.strip(), page=page)

        return await cached_html(request, render)

    @router.get("/models/{model_name}/layers/{layer:path}/neurons/{unit}")
    def model_neuron(model_name: str, layer: str, unit: int, session: SessionDep) -> Response:
        """Redirect to the neuron's permalink in the model's latest run that has the layer."""
        run_id = queries.latest_run_with_layer(session, model_name, layer)
        return RedirectResponse(neuron_url(run_id, layer, unit), status_code=307)

    return router
