"""Runs: the home page, the run list, one run, its layer list (and the layer switcher), label search."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy import Engine, delete

from app.auth.permissions import require_owner
from app.core.urls import API_PREFIX, layer_url, run_url
from app.jobs.runs.details import BadRunDetails, RunDetailsEdit, edit_run_details
from app.persistence.db import write_session
from app.persistence.models import RUN_NAME_MAX, RUN_NOTES_MAX, Run, User
from app.read.caches import ReadCache
from app.read.concepts import typed as typed_queries
from app.read.jobs import queries as job_queries
from app.read.layers import queries as layer_queries
from app.read.runs import export
from app.read.runs import queries as run_queries
from app.read.runs.lineage import same_architecture_links
from app.read.runs.overview import label_free_baselines
from app.read.runs.weight_agreement import weight_agreement
from app.read.schemas.layers import LayerSummary, SearchResult
from app.read.schemas.runs import RunDetail, RunSummary
from app.web.deps import (
    ArtifactsReaderDep,
    ClassViewsDep,
    EditorDep,
    EngineDep,
    PreloaderDep,
    ReadCacheDep,
    ResponseCacheDep,
    SessionDep,
    SessionsDep,
    TemplatesDep,
)
from app.web.errors import API_ERRORS, WRITE_ERRORS, ErrorBody
from app.web.middleware.response_cache import ResponseCache
from app.web.resources import Page, Redirect, resource
from app.web.views.paging import MAX_LIMIT, Id

router = APIRouter(tags=["runs"], responses=API_ERRORS)


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def home(request: Request, session: SessionDep, templates: TemplatesDep) -> Response:
    """Runs and jobs."""
    context = {"title": "Runs", "runs": run_queries.list_runs(session), "jobs": job_queries.list_jobs(session)}
    return templates.TemplateResponse(request, "home.html", context)


@router.get(API_PREFIX + "/runs")
def runs(session: SessionDep) -> list[RunSummary]:
    """Every run, newest first."""
    return run_queries.list_runs(session)


def run_page(
    run: RunDetail,
    session: SessionDep,
    cache: ReadCacheDep,
    preloader: PreloaderDep,
    classes: ClassViewsDep,
    reader: ArtifactsReaderDep,
) -> dict[str, object]:
    """Return run.html's context: the run, its layers' overview of their labels (with the label-free scores of
    random image sets beside theirs), the concepts kept so far, the runs it compares with (its parent first) and
    whether it has class pages."""
    preloader.request(run.id)  # so the first concept typed on its pages finds the encoder loaded
    overview = cache.overview(session, run.id)
    return {
        "title": run.title or f"run {run.id} · {run.model_name}",
        "run": run,
        "run_id": run.id,
        "overview": overview,
        "baselines": label_free_baselines(session, reader, run.id, overview),
        "evaluated": any(layer.n_evaluated for layer in overview),
        "typed_concepts": typed_queries.list_typed_concepts(session, run.id),
        "comparable": same_architecture_links(session, run.id, run.architecture),
        "details_error": None,
        "has_classes": classes.has_classes(session, run),
    }


@resource(router, "/runs/{run_id}", html=Page("run.html", context=run_page))
def run(run_id: Id, session: SessionDep, reader: ArtifactsReaderDep) -> RunDetail:
    """One run with its pinned settings and layers, and the paper's weight finding replayed on its weights."""
    detail = run_queries.run_detail(session, run_id)
    return detail.model_copy(update={"weight_concept_agreement": weight_agreement(session, reader, run_id)})


class RunDetailsBody(BaseModel):
    """A change of a run's name or notes: a field left out stays as it is, an empty one is cleared."""

    name: str | None = Field(None, max_length=RUN_NAME_MAX, description="what to call the run")
    notes: str | None = Field(None, max_length=RUN_NOTES_MAX, description="the owner's notes on the run")


def _edit_details(
    run_id: int, edit: RunDetailsEdit, engine: Engine, user: User, caches: tuple[ReadCache, ResponseCache]
) -> None:
    """Store a run's new name or notes (its owner or an admin) and forget its cached pages, which show them."""
    with write_session(engine) as session:
        edit_run_details(session, user, run_id, edit)
    for cache in caches:
        cache.forget_run(run_id)


EDIT_RESPONSES: dict[int | str, dict[str, object]] = {
    **WRITE_ERRORS,
    400: {"model": ErrorBody, "description": "the body is not JSON"},
    403: {"model": ErrorBody, "description": "not the owner"},
}


@router.patch(API_PREFIX + "/runs/{run_id}", responses=EDIT_RESPONSES)
def edit_run_api(
    run_id: Id,
    body: RunDetailsBody,
    engine: EngineDep,
    user: EditorDep,
    session: SessionDep,
    read_cache: ReadCacheDep,
    response_cache: ResponseCacheDep,
) -> RunDetail:
    """Rename a run or change its notes (its owner or an admin); answer the run as it is now."""
    _edit_details(run_id, RunDetailsEdit(body.name, body.notes), engine, user, (read_cache, response_cache))
    return run_queries.run_detail(session, run_id)


@router.post("/runs/{run_id}/details", include_in_schema=False)
def edit_run_form(
    request: Request,
    run_id: Id,
    engine: EngineDep,
    user: EditorDep,
    session: SessionDep,
    templates: TemplatesDep,
    read_cache: ReadCacheDep,
    response_cache: ResponseCacheDep,
    preloader: PreloaderDep,
    reader: ArtifactsReaderDep,
    classes: ClassViewsDep,
    name: Annotated[str, Form()] = "",
    notes: Annotated[str, Form()] = "",
) -> Response:
    """Rename a run or change its notes from its page's form, then show the page again; a problem is shown on the
    page, the form keeping what was typed."""
    try:
        _edit_details(run_id, RunDetailsEdit(name, notes), engine, user, (read_cache, response_cache))
    except BadRunDetails as problem:
        context = run_page(run(run_id, session, reader), session, read_cache, preloader, classes, reader)
        context.update(details_error=str(problem), typed_name=name, typed_notes=notes)
        return templates.TemplateResponse(request, "run.html", context, status_code=422)
    return RedirectResponse(run_url(run_id), status_code=303)


def chosen_layer(_layers: list[LayerSummary], run_id: Id, session: SessionDep, layer: str = "") -> str:
    """Return where the layer switcher goes: the chosen layer's page, or the run's page (it lists the layers)."""
    return layer_url(run_id, layer_queries.get_layer(session, run_id, layer).name) if layer else run_url(run_id)


@resource(router, "/runs/{run_id}/layers", html=Redirect(chosen_layer))
def layers(run_id: Id, session: SessionDep) -> list[LayerSummary]:
    """A run's layers in forward order."""
    return layer_queries.list_layers(session, run_id)


def search_page(result: SearchResult, session: SessionDep) -> dict[str, object]:
    """Return search.html's context: the run and the labels that matched."""
    return {
        "title": f"search · run {result.run_id}",
        "run": run_queries.run_detail(session, result.run_id),
        "result": result,
    }


@resource(router, "/runs/{run_id}/search", html=Page("search.html", context=search_page))
def search(
    run_id: Id, session: SessionDep, q: str = "", limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 200
) -> SearchResult:
    """Neurons of every layer whose label contains q."""
    return layer_queries.search_labels(session, run_id, q, limit=limit)


EXPORT_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {
        "description": "every neuron of every layer, in forward order then by unit, as the rows of the CLI's "
        "results.csv: the run (run_id, model, weights, encoder, probe_set), then layer, unit, label, score, "
        "runners-up and the evaluation fields (null, or empty in CSV, for runs stored before evaluations); "
        "CSV cells holding lists are JSON, and a CSV text cell a spreadsheet would read as a formula (starting "
        "with =, +, -, @, tab or carriage return) starts with an apostrophe",
        "content": {media_type.split(";")[0]: {} for media_type in export.MEDIA_TYPES.values()},
    }
}


def _export_body(
    export_format: export.ExportFormat, header: dict[str, Any], batches: export.RowBatches
) -> Iterator[str] | Iterator[bytes]:
    """Return the chunks of an export in the format; Parquet is written whole to a spooled file first."""
    if export_format == "csv":
        return export.csv_chunks(batches)
    if export_format == "json":
        return export.json_chunks(header, batches)
    return export.file_chunks(export.parquet_file(batches))


@router.get(API_PREFIX + "/runs/{run_id}/export", response_class=StreamingResponse, responses=EXPORT_RESPONSES)
def export_run(
    run_id: Id, session: SessionDep, sessions: SessionsDep, format: export.ExportFormat = "csv"
) -> StreamingResponse:
    """A run's labels as a CSV, JSON or Parquet download, streamed from the database in batches."""
    header = {"run": run_queries.run_detail(session, run_id).model_dump(mode="json")}  # NotFound before streaming
    body = _export_body(format, header, export.export_batches(sessions, run_id))
    filename = export.export_filename(run_id, format)
    return StreamingResponse(
        body,
        media_type=export.MEDIA_TYPES[format],
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def delete_run(run_id: int, engine: Engine, user: User, caches: tuple[ReadCache, ResponseCache]) -> None:
    """Delete a run and its layers, neurons and typed concepts (its owner or an admin), and forget its cached pages;
    `neuron-atlas gc` removes its files."""
    with write_session(engine) as session:
        require_owner(user, run_queries.get_run(session, run_id).owner, f"Run {run_id}", "delete it")
        session.execute(delete(Run).where(Run.id == run_id))
    for cache in caches:
        cache.forget_run(run_id)


@router.delete(API_PREFIX + "/runs/{run_id}", status_code=204, responses={403: {"description": "not the owner"}})
def delete_run_api(
    run_id: Id, engine: EngineDep, user: EditorDep, read_cache: ReadCacheDep, response_cache: ResponseCacheDep
) -> Response:
    """Delete a run (its owner or an admin); its files stay until `neuron-atlas gc`."""
    delete_run(run_id, engine, user, (read_cache, response_cache))
    return Response(status_code=204)


@router.post("/runs/{run_id}/delete", include_in_schema=False)
def delete_run_form(
    run_id: Id, engine: EngineDep, user: EditorDep, read_cache: ReadCacheDep, response_cache: ResponseCacheDep
) -> Response:
    """Delete a run from its page's form, then go to the list of runs."""
    delete_run(run_id, engine, user, (read_cache, response_cache))
    return RedirectResponse("/", status_code=303)
