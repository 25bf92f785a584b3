"""Concepts on demand: rank a layer by a typed concept, score one on a neuron, keep them, relabel with them."""

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.core.urls import job_url, run_url
from app.jobs.typed_concepts import keep_typed_concept, relabel_with_typed_concepts
from app.persistence.db import write_session
from app.read import queries
from app.read.concept_search import ConceptSearcher, score_neuron, search_layer
from app.read.read_cache import ReadCache
from app.web.htmx import TYPED_CONCEPTS_CHANGED, is_htmx, trigger, vary_on_htmx
from app.web.routes.pages import layer_page_context, neuron_page_context
from dissect_core.errors import DissectError


def _local_path(url: str, fallback: str) -> str:
    # Only same-site paths: a form's `back` field must not send the browser elsewhere.
    return url if url.startswith("/") and not url.startswith("//") and "\\" not in url else fallback


def make_concepts_router(
    *,
    get_session: Callable[[], Iterator[Session]],
    engine: Engine,
    settings: Settings,
    templates: Jinja2Templates,
    searcher: ConceptSearcher,
    cache: ReadCache,
) -> APIRouter:
    """Return the router of the concept-search pages and fragments."""
    router = APIRouter(include_in_schema=False)
    SessionDep = Annotated[Session, Depends(get_session)]

    @router.get("/runs/{run_id}/layers/{layer:path}/neurons/{unit}/concept", response_class=HTMLResponse)
    def neuron_concept(
        request: Request, run_id: int, layer: str, unit: int, session: SessionDep, q: str = ""
    ) -> Response:
        """A typed concept's score on one neuron and the neuron's rank for it; htmx gets the fragment."""
        context = neuron_page_context(session, cache, run_id, layer, unit) if not is_htmx(request) else {}
        context["concept"] = q
        context["concept_score"] = None
        context["concept_error"] = None
        if q.strip():
            try:
                context["concept_score"] = score_neuron(session, searcher, run_id, layer, unit, q)
            except DissectError as error:
                context["concept_error"] = str(error)
        name = "partials/neuron_concept.html" if is_htmx(request) else "neuron.html"
        return vary_on_htmx(templates.TemplateResponse(request, name, context))

    @router.get("/runs/{run_id}/layers/{layer:path}/concepts", response_class=HTMLResponse)
    def layer_concepts(request: Request, run_id: int, layer: str, session: SessionDep, q: str = "") -> Response:
        """The layer's neurons ranked by a typed concept; htmx gets the ranked list alone."""
        if is_htmx(request):
            context: dict[str, object] = {"run_id": run_id, "layer": queries.layer_summary(session, run_id, layer)}
        else:
            context = layer_page_context(session, cache, run_id, layer, sort="unit", q="", page=1)
        context.update(concept=q, result=None, error=None)
        if q.strip():
            try:
                context["result"] = search_layer(session, searcher, run_id, layer, q)
            except DissectError as error:
                context["error"] = str(error)
        name = "partials/concept_results.html" if is_htmx(request) else "layer.html"
        return vary_on_htmx(templates.TemplateResponse(request, name, context))

    @router.get("/runs/{run_id}/typed-concepts", response_class=HTMLResponse)
    def typed_concepts_panel(request: Request, run_id: int, session: SessionDep) -> Response:
        """The panel of a run's kept concepts (an htmx fragment)."""
        queries.get_run(session, run_id)
        context = {"run_id": run_id, "typed_concepts": queries.list_typed_concepts(session, run_id)}
        return templates.TemplateResponse(request, "partials/typed_concepts.html", context)

    @router.post("/runs/{run_id}/typed-concepts")
    def keep_concept(
        request: Request, run_id: int, text: Annotated[str, Form()] = "", back: Annotated[str, Form()] = ""
    ) -> Response:
        """Keep a typed concept for the run; htmx gets the change event (the panel reloads on it)."""
        with write_session(engine) as session:
            keep_typed_concept(session, run_id, text)
        if not is_htmx(request):
            return RedirectResponse(_local_path(back, run_url(run_id)), status_code=303)
        return trigger(Response(status_code=204), TYPED_CONCEPTS_CHANGED)

    @router.post("/runs/{run_id}/relabel")
    def relabel(run_id: int) -> Response:
        """Queue a relabel of the run with its typed concepts added to its vocabulary; go to the job."""
        with write_session(engine) as session:
            job_id = relabel_with_typed_concepts(session, settings, run_id)
        return RedirectResponse(job_url(job_id), status_code=303)

    return router
