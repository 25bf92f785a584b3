"""The JSON API under /api/v1: every page's data, from the same queries the pages use."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.core.urls import API_PREFIX, api_url, job_url, neuron_url
from app.jobs import queue
from app.jobs.architectures import ArchitectureCatalog
from app.jobs.typed_concepts import keep_typed_concept, relabel_with_typed_concepts
from app.jobs.uploads import UploadValues
from app.persistence.db import write_session
from app.read import queries
from app.read.concept_search import ConceptSearcher, score_neuron, search_layer
from app.read.read_cache import ReadCache, body_key
from app.read.schemas import (
    ConceptSearchResult,
    JobCreated,
    JobView,
    LayerOption,
    LayerSummary,
    NeuronConceptScore,
    NeuronDetail,
    NeuronList,
    NeuronSort,
    RunDetail,
    RunSummary,
    SearchResult,
    TypedConceptView,
)
from app.web.htmx import is_htmx, vary_on_htmx

MAX_LIMIT = 500


def make_api_router(
    *,
    get_session: Callable[[], Iterator[Session]],
    engine: Engine,
    settings: Settings,
    templates: Jinja2Templates,
    searcher: ConceptSearcher,
    catalog: ArchitectureCatalog,
    cache: ReadCache,
) -> APIRouter:
    """Return the router of the JSON API."""
    router = APIRouter(prefix=API_PREFIX)
    SessionDep = Annotated[Session, Depends(get_session)]
    open_session = contextmanager(get_session)

    async def cached_json(request: Request, produce: Callable[[Session], BaseModel]) -> Response:
        # Neurons of a stored run never change: keep the serialised body (ServeCachedBodies replays it).
        key = body_key(request.url.path, request.url.query, is_htmx(request))
        cached = cache.body(key)
        if cached is None:

            def render() -> bytes:
                with open_session() as session:
                    return produce(session).model_dump_json().encode()

            cached = cache.keep(key, await run_in_threadpool(render), "application/json")
        return vary_on_htmx(Response(cached.body, media_type=cached.media_type))

    @router.get("/runs", tags=["runs"])
    def runs(session: SessionDep) -> list[RunSummary]:
        """Every run, newest first."""
        return queries.list_runs(session)

    @router.get("/runs/{run_id}", tags=["runs"])
    def run(run_id: int, session: SessionDep) -> RunDetail:
        """One run with its pinned settings and layers."""
        return queries.run_detail(session, run_id)

    @router.get("/runs/{run_id}/layers", tags=["runs"])
    def layers(run_id: int, session: SessionDep) -> list[LayerSummary]:
        """A run's layers in forward order."""
        return queries.list_layers(session, run_id)

    @router.get("/runs/{run_id}/search", tags=["runs"])
    def search(
        run_id: int, session: SessionDep, q: str = "", limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 200
    ) -> SearchResult:
        """Neurons of every layer whose label contains q."""
        return queries.search_labels(session, run_id, q, limit=limit)

    @router.get("/runs/{run_id}/typed-concepts", tags=["concepts"])
    def typed_concepts(run_id: int, session: SessionDep) -> list[TypedConceptView]:
        """Concepts kept on the run's pages for a relabel."""
        queries.get_run(session, run_id)
        return queries.list_typed_concepts(session, run_id)

    @router.post("/runs/{run_id}/typed-concepts", tags=["concepts"], status_code=201)
    def keep_concept(run_id: int, text: Annotated[str, Form()]) -> TypedConceptView:
        """Keep a typed concept for the run (idempotent)."""
        with write_session(engine) as session:
            row = keep_typed_concept(session, run_id, text)
            return TypedConceptView(id=row.id, text=row.text, created_at=row.created_at)

    @router.post("/runs/{run_id}/relabel", tags=["concepts"], status_code=201)
    def relabel(run_id: int) -> JobCreated:
        """Queue a relabel with the run's settings and its typed concepts added to its vocabulary."""
        with write_session(engine) as session:
            job_id = relabel_with_typed_concepts(session, settings, run_id)
        return JobCreated(job_id=job_id, job_url=job_url(job_id), api_url=api_url(job_url(job_id)))

    # Routes that end in a fixed suffix come before the bare `{layer:path}`, which would swallow them.
    @router.get("/runs/{run_id}/layers/{layer:path}/neurons/{unit}/concept", tags=["concepts"])
    def neuron_concept(run_id: int, layer: str, unit: int, q: str, session: SessionDep) -> NeuronConceptScore:
        """A typed concept's soft-WPMI score on one neuron and the neuron's rank for it in the layer."""
        return score_neuron(session, searcher, run_id, layer, unit, q)

    @router.get("/runs/{run_id}/layers/{layer:path}/neurons/{unit}", tags=["neurons"], response_model=NeuronDetail)
    async def neuron(request: Request, run_id: int, layer: str, unit: int) -> Response:
        """One neuron: label, score, runners-up, all top images, neighbours."""

        def produce(session: Session) -> NeuronDetail:
            return cache.layer_index(session, run_id, layer).detail(cache.run(session, run_id), unit)

        return await cached_json(request, produce)

    @router.get("/runs/{run_id}/layers/{layer:path}/neurons", tags=["neurons"], response_model=NeuronList)
    async def neurons(
        request: Request,
        run_id: int,
        layer: str,
        offset: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 96,
        sort: NeuronSort = "unit",
        q: str = "",
    ) -> Response:
        """One page of a layer's neurons; sort by unit, score or label (`-` for descending), filter by q."""

        def produce(session: Session) -> NeuronList:
            return cache.layer_index(session, run_id, layer).page(offset=offset, limit=limit, sort=sort, q=q)

        return await cached_json(request, produce)

    @router.get("/runs/{run_id}/layers/{layer:path}/concepts", tags=["concepts"])
    def concept_search(
        run_id: int,
        layer: str,
        q: str,
        session: SessionDep,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 24,
    ) -> ConceptSearchResult:
        """The layer's neurons ranked by the soft-WPMI score a typed concept would get."""
        return search_layer(session, searcher, run_id, layer, q, limit=limit)

    @router.get("/runs/{run_id}/layers/{layer:path}", tags=["runs"])
    def layer(run_id: int, layer: str, session: SessionDep) -> LayerSummary:
        """One layer of a run."""
        return queries.layer_summary(session, run_id, layer)

    @router.get(
        "/models/{model_name}/layers/{layer:path}/neurons/{unit}",
        tags=["neurons"],
        response_class=RedirectResponse,
        status_code=307,
    )
    def model_neuron(model_name: str, layer: str, unit: int, session: SessionDep) -> Response:
        """Redirect to the neuron in the model's latest run that has the layer."""
        run_id = queries.latest_run_with_layer(session, model_name, layer)
        return RedirectResponse(api_url(neuron_url(run_id, layer, unit)), status_code=307)

    @router.get("/jobs", tags=["jobs"])
    def jobs(session: SessionDep, limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50) -> list[JobView]:
        """The newest jobs first."""
        return queries.list_jobs(session, limit=limit)

    @router.get("/jobs/{job_id}", tags=["jobs"])
    def job(job_id: int, session: SessionDep) -> JobView:
        """One job's status and progress."""
        return queries.get_job(session, job_id)

    @router.post("/jobs/{job_id}/cancel", tags=["jobs"])
    def cancel_job(job_id: int, session: SessionDep) -> JobView:
        """Cancel a queued job, or ask a running one to stop at its next progress report."""
        queries.get_job(session, job_id)
        session.rollback()  # end the read snapshot, so the re-read below sees the cancellation
        queue.cancel(engine, job_id)
        return queries.get_job(session, job_id)

    @router.get("/architectures", tags=["upload"])
    def architectures() -> list[str]:
        """The architectures a checkpoint can be uploaded for."""
        return catalog.names()

    @router.get("/architectures/{architecture}/layers", tags=["upload"], response_model=list[LayerOption])
    def architecture_layers(request: Request, architecture: str) -> Response:
        """The architecture's layers in forward order; htmx gets the upload form's layer picker instead."""
        options = catalog.layers(architecture)
        if is_htmx(request):
            context = {"layer_options": options, "values": UploadValues(architecture=architecture), "layer_error": None}
            return vary_on_htmx(templates.TemplateResponse(request, "partials/layer_picker.html", context))
        return vary_on_htmx(JSONResponse([option.model_dump() for option in options]))

    return router
