"""The catalogue: probe sets (listed with thumbnails; editors upload an archive of images), concept sets (editors
upload a list) and the encoders the upload form offers. Web users choose each by name, never by server path."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile

from app.auth.permissions import can_change_named, can_edit
from app.core.config import Settings
from app.core.errors import AtlasError, BadUpload
from app.core.urls import API_PREFIX
from app.jobs.catalogue.sets import (
    allowed_encoders,
    remove_concept_set,
    remove_probe_set,
    store_uploaded_concept_set,
    store_uploaded_probe_set,
)
from app.jobs.queue.quotas import QuotaCheck, check_concept_sets, check_probe_sets
from app.persistence.models import User
from app.read.catalogue.sets import concept_set_view, list_concept_sets, list_probe_sets, probe_set_view
from app.read.schemas.catalogue import ConceptSetView, ProbeSetView
from app.read.schemas.common import ListPage
from app.web.deps import CurrentUserDep, EditorDep, EngineDep, SessionDep, SettingsDep, TemplatesDep
from app.web.errors import API_ERRORS, WRITE_ERRORS, ErrorBody, error_status
from app.web.resources import Page, resource
from app.web.views.paging import whole
from dissect_core.errors import DissectError

# Multipart framing and the name field on top of the archive or list itself.
FORM_OVERHEAD_BYTES = 64 * 1024
PROBE_SETS_PAGE = "/probe-sets"
CONCEPT_SETS_PAGE = "/concept-sets"
ERRORS: dict[int | str, dict[str, Any]] = {
    **WRITE_ERRORS,
    400: {"model": ErrorBody, "description": "unusable file (unsafe, too large, not images)"},
    422: {"model": ErrorBody, "description": "bad or taken name"},
}
DELETE_ERRORS: dict[int | str, dict[str, Any]] = {
    **WRITE_ERRORS,
    409: {"model": ErrorBody, "description": "a queued or running job uses the set; delete it once they finish"},
}


def _form_schema(required: list[str], properties: dict[str, object]) -> dict[str, object]:
    """Return an OpenAPI request body of one multipart form (the forms are parsed by hand, within bounds)."""
    schema = {"type": "object", "required": required, "properties": properties}
    return {"required": True, "content": {"multipart/form-data": {"schema": schema}}}


NAME_FIELD = {"type": "string", "example": "street-photos", "description": "lower-case letters, digits, . _ -"}
PROBE_SET_BODY = _form_schema(
    ["name", "archive"],
    {"name": NAME_FIELD, "archive": {"type": "string", "format": "binary", "description": ".zip or .tar(.gz)"}},
)
CONCEPT_SET_BODY = _form_schema(
    ["name"],
    {
        "name": NAME_FIELD,
        "concepts": {"type": "string", "description": "one concept per line"},
        "file": {"type": "string", "format": "binary", "description": "or a UTF-8 text file, one concept per line"},
    },
)

router = APIRouter(tags=["catalogue"], responses=API_ERRORS)


def _check_length(request: Request, limit: int, what: str) -> None:
    """Raise BadUpload unless the request declares its body's length (which the server then holds it to) in bounds."""
    declared = request.headers.get("content-length", "")
    if not declared.isdecimal() or "transfer-encoding" in request.headers:
        raise BadUpload(f"Send the {what} with a Content-Length header (as browsers and HTTP clients do by default).")
    if int(declared) > limit:
        raise BadUpload(
            f"The upload is {int(declared) / 2**20:,.1f} MB, over the {what} limit of {limit / 2**20:,.1f} MB; "
            "send a smaller one."
        )


async def _created(stored: Awaitable[BaseModel]) -> Response:
    """Return the API's answer to an upload: 201 with the stored set (a refusal is answered by app.web.errors)."""
    return JSONResponse((await stored).model_dump(mode="json"), status_code=201)


@dataclass(frozen=True)
class _Listing:
    """A catalogue page: its path, its template, how to list its sets and the template's context for them."""

    path: str
    template: str
    list_sets: Callable[[Session], Any]
    context: Callable[[Any, Settings, User | None], dict[str, object]]


async def _added_or_shown_why(
    stored: Awaitable[BaseModel],
    listing: _Listing,
    request: Request,
    session: Session,
    templates: Jinja2Templates,
    settings: Settings,
    user: User,
) -> Response:
    """Return the form's answer to an upload: back to the list when stored, else the list with why it was not."""
    try:
        await stored
    except DissectError as error:
        listed = await run_in_threadpool(listing.list_sets, session)
        context = {**listing.context(whole(listed), settings, user), "error": str(error)}
        return templates.TemplateResponse(request, listing.template, context, status_code=error_status(error))
    return RedirectResponse(listing.path, status_code=303)


def _name(value: object, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise AtlasError(f"Name the {what}: lower-case letters, digits, '.', '_' or '-', e.g. 'street-photos'.")
    return value


def _controls(user: User | None, sets: Sequence[ProbeSetView | ConceptSetView]) -> dict[str, object]:
    """Return a catalogue page's `may_upload` (the user may upload a set) and `deletable` (the uploaded sets' names
    the user may delete), so controls they may not use are not shown."""
    deletable = {item.name for item in sets if item.kind == "uploaded" and can_change_named(user, item.owner)}
    return {"may_upload": can_edit(user), "deletable": deletable}


# --- probe sets ----------------------------------------------------------------------------------------------


def probe_sets_page(
    probe_sets: ListPage[ProbeSetView], settings: SettingsDep, user: CurrentUserDep
) -> dict[str, object]:
    """Return probe_sets.html's context: the probe sets, the bounds on an uploaded archive, and the controls the user
    may use (the upload form for editors, delete buttons on the sets they may delete)."""
    return {
        "title": "Probe sets",
        "probe_sets": probe_sets.items,
        **_controls(user, probe_sets.items),
        "error": None,
        "max_files": settings.probe_max_files,
        "max_mb": round(settings.probe_max_bytes / 2**20),
        "max_megapixels": round(settings.probe_max_pixels / 1e6),
        "max_total_megapixels": round(settings.probe_max_total_pixels / 1e6),
    }


@resource(router, PROBE_SETS_PAGE, html=Page("probe_sets.html", context=probe_sets_page))
def probe_sets(session: SessionDep) -> ListPage[ProbeSetView]:
    """The probe sets an upload may name: built-ins, the operator's folders and uploaded archives, with thumbnails;
    all on one page."""
    return whole(list_probe_sets(session))


async def _check_room(engine: Engine, settings: Settings, owner: User, check: QuotaCheck) -> None:
    """Raise QuotaExceeded when `owner` has no room for another set: before the upload's body is read."""

    def checked() -> None:
        with Session(engine) as session:
            check(session, settings, owner)

    await run_in_threadpool(checked)


async def receive_probe_set(request: Request, engine: Engine, settings: Settings, owner: User) -> ProbeSetView:
    """Receive a multipart `name` + `archive`, then check, extract and catalogue the archive; return the new set."""
    await _check_room(engine, settings, owner, check_probe_sets)
    _check_length(request, settings.probe_max_bytes + FORM_OVERHEAD_BYTES, "probe-set archive")
    async with request.form(max_files=1, max_fields=10) as form:
        name = _name(form.get("name"), "probe set")
        archive = form.get("archive")
        if not isinstance(archive, UploadFile) or not archive.filename:
            raise BadUpload("No archive was sent; choose a .zip or .tar (.tar.gz) of images.")
        row = await run_in_threadpool(
            lambda: store_uploaded_probe_set(engine, settings, name, archive.file, owner=owner)
        )
    return probe_set_view(row, owner.name)


@router.post(
    API_PREFIX + PROBE_SETS_PAGE,
    status_code=201,
    response_model=ProbeSetView,
    responses=ERRORS,
    openapi_extra={"requestBody": PROBE_SET_BODY},
)
async def upload_probe_set(request: Request, engine: EngineDep, settings: SettingsDep, user: EditorDep) -> Response:
    """Upload a .zip or .tar(.gz) of images as a probe set (multipart: name, archive); editors only."""
    return await _created(receive_probe_set(request, engine, settings, user))


@router.post(PROBE_SETS_PAGE, response_class=HTMLResponse, include_in_schema=False)
async def upload_probe_set_page(
    request: Request,
    session: SessionDep,
    templates: TemplatesDep,
    engine: EngineDep,
    settings: SettingsDep,
    user: EditorDep,
) -> Response:
    """Add an uploaded archive as a probe set, then list the probe sets; a refused one re-renders with why."""
    stored = receive_probe_set(request, engine, settings, user)
    listing = _Listing(PROBE_SETS_PAGE, "probe_sets.html", list_probe_sets, probe_sets_page)
    return await _added_or_shown_why(stored, listing, request, session, templates, settings, user)


@router.delete(API_PREFIX + PROBE_SETS_PAGE + "/{name}", status_code=204, responses=DELETE_ERRORS)
def delete_probe_set(name: str, engine: EngineDep, settings: SettingsDep, user: EditorDep) -> Response:
    """Delete a probe set and its uploaded images (its uploader or an admin), unless a queued job uses it."""
    remove_probe_set(engine, settings, name, by=user)
    return Response(status_code=204)


@router.post(PROBE_SETS_PAGE + "/{name}/delete", include_in_schema=False)
def delete_probe_set_form(name: str, engine: EngineDep, settings: SettingsDep, user: EditorDep) -> Response:
    """Delete a probe set from the probe sets page's form, then list the probe sets again."""
    remove_probe_set(engine, settings, name, by=user)
    return RedirectResponse(PROBE_SETS_PAGE, status_code=303)


# --- concept sets --------------------------------------------------------------------------------------------


def concept_sets_page(
    concept_sets: ListPage[ConceptSetView], settings: SettingsDep, user: CurrentUserDep
) -> dict[str, object]:
    """Return concept_sets.html's context: the concept sets, the bounds on an uploaded list, and the controls the
    user may use (the upload form for editors, delete buttons on the sets they may delete)."""
    return {
        "title": "Concept sets",
        "concept_sets": concept_sets.items,
        **_controls(user, concept_sets.items),
        "error": None,
        "max_lines": settings.concepts_max_lines,
        "max_kb": settings.concepts_max_bytes // 1024,
    }


@resource(router, CONCEPT_SETS_PAGE, html=Page("concept_sets.html", context=concept_sets_page))
def concept_sets(session: SessionDep) -> ListPage[ConceptSetView]:
    """The concept sets an upload may name: the library's built-ins and uploaded lists; all on one page."""
    return whole(list_concept_sets(session))


async def receive_concept_set(request: Request, engine: Engine, settings: Settings, owner: User) -> ConceptSetView:
    """Receive a `name` and a list (`concepts` text or a `file`), then check and catalogue it; return the new set."""
    await _check_room(engine, settings, owner, check_concept_sets)
    limit = settings.concepts_max_bytes
    _check_length(request, limit + FORM_OVERHEAD_BYTES, "concept list")
    async with request.form(max_files=1, max_fields=10, max_part_size=limit + FORM_OVERHEAD_BYTES) as form:
        name = _name(form.get("name"), "concept set")
        upload, text = form.get("file"), form.get("concepts")
        if isinstance(upload, UploadFile) and upload.filename:
            data = await upload.read(limit + 1)
        elif isinstance(text, str) and text.strip():
            data = text.encode()
        else:
            raise BadUpload("No concepts were sent; type them one per line, or choose a text file.")
    row = await run_in_threadpool(lambda: store_uploaded_concept_set(engine, settings, name, data, owner=owner))
    return concept_set_view(row, owner.name)


@router.post(
    API_PREFIX + CONCEPT_SETS_PAGE,
    status_code=201,
    response_model=ConceptSetView,
    responses=ERRORS,
    openapi_extra={"requestBody": CONCEPT_SET_BODY},
)
async def upload_concept_set(request: Request, engine: EngineDep, settings: SettingsDep, user: EditorDep) -> Response:
    """Upload a concept list (form: name, and concepts as text or a file, one per line); editors only."""
    return await _created(receive_concept_set(request, engine, settings, user))


@router.post(CONCEPT_SETS_PAGE, response_class=HTMLResponse, include_in_schema=False)
async def upload_concept_set_page(
    request: Request,
    session: SessionDep,
    templates: TemplatesDep,
    engine: EngineDep,
    settings: SettingsDep,
    user: EditorDep,
) -> Response:
    """Add an uploaded list as a concept set, then list the concept sets; a refused one re-renders with why."""
    stored = receive_concept_set(request, engine, settings, user)
    listing = _Listing(CONCEPT_SETS_PAGE, "concept_sets.html", list_concept_sets, concept_sets_page)
    return await _added_or_shown_why(stored, listing, request, session, templates, settings, user)


@router.delete(API_PREFIX + CONCEPT_SETS_PAGE + "/{name}", status_code=204, responses=DELETE_ERRORS)
def delete_concept_set(name: str, engine: EngineDep, settings: SettingsDep, user: EditorDep) -> Response:
    """Delete an uploaded concept set and its list (its uploader or an admin), unless a queued job uses it."""
    remove_concept_set(engine, settings, name, by=user)
    return Response(status_code=204)


@router.post(CONCEPT_SETS_PAGE + "/{name}/delete", include_in_schema=False)
def delete_concept_set_form(name: str, engine: EngineDep, settings: SettingsDep, user: EditorDep) -> Response:
    """Delete a concept set from the concept sets page's form, then list the concept sets again."""
    remove_concept_set(engine, settings, name, by=user)
    return RedirectResponse(CONCEPT_SETS_PAGE, status_code=303)


# --- encoders ------------------------------------------------------------------------------------------------


@router.get(API_PREFIX + "/encoders")
def encoders(settings: SettingsDep) -> ListPage[str]:
    """The image–text encoders an upload may name (NEURON_ATLAS_ENCODERS, else the library's); all on one page."""
    return whole(allowed_encoders(settings))
