"""Runs: the home page, the run list, one run, its layer list (and the layer switcher); search is routes/search.py."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy import Engine, delete

from app.auth.permissions import can_change, can_edit, require_owner
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
from app.read.runs.deletion import RunDeletion, run_deletion
from app.read.runs.findings import run_findings
from app.read.runs.lineage import same_architecture_links
from app.read.runs.overview import label_free_baselines
from app.read.runs.weight_agreement import weight_agreement
from app.read.schemas.common import ListPage
from app.read.schemas.layers import LayerSummary
from app.read.schemas.runs import RunDetail, RunSummary
from app.web import openapi_examples as examples
from app.web.deps import (
    ArtifactsReaderDep,
    ClassViewsDep,
    CurrentUserDep,
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
from app.web.views.flash import flash, take_flash
from app.web.views.paging import Id, Limit, Offset, page_of, whole

router = APIRouter(tags=["runs"], responses=API_ERRORS)
#: The confirmation page of deleting a run; its button posts back to it.
DELETE_PAGE = "/runs/{run_id}/delete"


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def home(request: Request, session: SessionDep, templates: TemplatesDep, user: CurrentUserDep) -> Response:
    """Runs and jobs, the upload button for those who may upload, and the message of what was just done."""
    context = {
        "title": "Runs",
        "runs": run_queries.list_runs(session),
        "jobs": job_queries.list_jobs(session),
        "may_upload": can_edit(user),
        "flash": take_flash(request),
    }
    return templates.TemplateResponse(request, "home.html", context)


@router.get(API_PREFIX + "/runs", responses=examples.RUNS)
def runs(request: Request, session: SessionDep, offset: Offset = 0, limit: Limit = 100) -> ListPage[RunSummary]:
    """The runs, newest first, a page at a time (`next` links the following page)."""
    return page_of(run_queries.list_runs(session), request, offset=offset, limit=limit)


def run_page(
    run: RunDetail,
    session: SessionDep,
    cache: ReadCacheDep,
    preloader: PreloaderDep,
    classes: ClassViewsDep,
    reader: ArtifactsReaderDep,
    user: CurrentUserDep,
) -> dict[str, object]:
    """Return run.html's context: the run, its layers' overview of their labels (with the label-free scores of
    random image sets beside theirs), the concepts kept so far, the runs it compares with (its parent first) and
    whether it has class pages, what it found per layer (best units, common labels), and whether the user may
    change it (only then are its forms shown)."""
    preloader.request(run.id)  # so the first concept typed on its pages finds the encoder loaded
    overview = run.overview
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
        "findings": run_findings(session, cache, run.id),
        "may_change": can_change(user, run_queries.get_run(session, run.id).owner),
    }


@resource(router, "/runs/{run_id}", html=Page("run.html", context=run_page))
def run(run_id: Id, session: SessionDep, reader: ArtifactsReaderDep, cache: ReadCacheDep) -> RunDetail:
    """One run with its pinned settings and layers, what each layer's labels are worth (`overview`), and the
    paper's weight finding replayed on its weights."""
    detail = run_queries.run_detail(session, run_id)
    update = {"weight_concept_agreement": weight_agreement(session, reader, run_id)}
    return detail.model_copy(update={**update, "overview": cache.overview(session, run_id)})


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
        detail = run(run_id, session, reader, read_cache)
        context = run_page(detail, session, read_cache, preloader, classes, reader, user)
        context.update(details_error=str(problem), typed_name=name, typed_notes=notes)
        return templates.TemplateResponse(request, "run.html", context, status_code=422)
    return RedirectResponse(run_url(run_id), status_code=303)


def chosen_layer(_layers: ListPage[LayerSummary], run_id: Id, session: SessionDep, layer: str = "") -> str:
    """Return where the layer switcher goes: the chosen layer's page, or the run's page (it lists the layers)."""
    return layer_url(run_id, layer_queries.get_layer(session, run_id, layer).name) if layer else run_url(run_id)


@resource(router, "/runs/{run_id}/layers", html=Redirect(chosen_layer))
def layers(run_id: Id, session: SessionDep) -> ListPage[LayerSummary]:
    """A run's layers in forward order, all on one page."""
    return whole(layer_queries.list_layers(session, run_id))


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


def delete_run(run_id: int, engine: Engine, user: User, caches: tuple[ReadCache, ResponseCache]) -> RunDeletion:
    """Delete a run and its layers, neurons and typed concepts (its owner or an admin), forget its cached pages and
    return what went; `neuron-atlas gc` removes its files."""
    with write_session(engine) as session:
        require_owner(user, run_queries.get_run(session, run_id).owner, f"Run {run_id}", "delete it")
        deletion = run_deletion(session, run_id)
        session.execute(delete(Run).where(Run.id == run_id))
    for cache in caches:
        cache.forget_run(run_id)
    return deletion


@router.delete(API_PREFIX + "/runs/{run_id}", status_code=204, responses={403: {"description": "not the owner"}})
def delete_run_api(
    run_id: Id, engine: EngineDep, user: EditorDep, read_cache: ReadCacheDep, response_cache: ResponseCacheDep
) -> Response:
    """Delete a run (its owner or an admin); its files stay until `neuron-atlas gc`."""
    delete_run(run_id, engine, user, (read_cache, response_cache))
    return Response(status_code=204)


def _count(n: int, noun: str) -> str:
    """Return `n noun`, the noun plural unless n is 1 (`1 layer`, `2,048 neurons`)."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


@router.get(DELETE_PAGE, response_class=HTMLResponse, include_in_schema=False)
def delete_run_page(
    request: Request, run_id: Id, session: SessionDep, user: EditorDep, templates: TemplatesDep
) -> Response:
    """The confirmation step of deleting a run (its owner or an admin): what goes with it, and the button."""
    require_owner(user, run_queries.get_run(session, run_id).owner, f"Run {run_id}", "delete it")
    deletion = run_deletion(session, run_id)
    context = {"title": f"Delete {deletion.title}", "deletion": deletion}
    return templates.TemplateResponse(request, "run_delete.html", context)


@router.post(DELETE_PAGE, include_in_schema=False)
def delete_run_form(
    request: Request,
    run_id: Id,
    engine: EngineDep,
    user: EditorDep,
    read_cache: ReadCacheDep,
    response_cache: ResponseCacheDep,
) -> Response:
    """Delete a run from its confirmation page, then go to the list of runs, which says what was deleted."""
    gone = delete_run(run_id, engine, user, (read_cache, response_cache))
    flash(
        request,
        f"Deleted {gone.title}: {_count(len(gone.layer_names), 'layer')}, {_count(gone.n_neurons, 'neuron')} and "
        f"{_count(len(gone.typed_concepts), 'typed concept')}. Its files stay until an operator runs neuron-atlas gc.",
    )
    return RedirectResponse("/", status_code=303)
