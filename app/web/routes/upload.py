"""Uploads: the upload page and API (a checkpoint plus its architecture, layers, probe set, concepts and encoder,
checked first), and the architectures a checkpoint can be for."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy import Engine
from starlette.datastructures import UploadFile
from starlette.types import Message, Receive

from app.core.config import Settings
from app.core.redact import redact_paths
from app.core.urls import API_PREFIX, api_url, job_url
from app.jobs.catalogue.sets import allowed_encoders
from app.jobs.uploads.architectures import ArchitectureCatalog
from app.jobs.uploads.checkpoints import (
    BadUpload,
    UploadValues,
    accept_upload,
    check_upload_quotas,
    receive_checkpoint,
    refuse_without_file,
)
from app.jobs.uploads.class_names import CLASS_NAMES_MAX_BYTES, receive_class_names
from app.jobs.uploads.defaults import default_encoder, default_probe
from app.jobs.uploads.problems import problems_by_field
from app.persistence.models import User
from app.read.catalogue.sets import list_concept_sets, list_probe_sets
from app.read.schemas.catalogue import LayerOption
from app.read.schemas.common import ListPage
from app.read.schemas.jobs import JobCreated
from app.web.deps import CatalogDep, EditorDep, EngineDep, SessionDep, SettingsDep, TemplatesDep
from app.web.errors import API_ERRORS, WRITE_ERRORS, ErrorBody, error_status
from app.web.views.htmx import HtmxAwareRoute, is_htmx
from app.web.views.paging import whole
from dissect_core.errors import DissectError
from dissect_core.models.class_names import CLASS_NAMES_FILE_FORMAT

# Multipart framing, the small form fields and the class names file on top of the checkpoint itself.
FORM_OVERHEAD_BYTES = (1 << 20) + CLASS_NAMES_MAX_BYTES

# The form is parsed by hand (to stop oversize uploads early), so its schema is spelled out for /docs.
UPLOAD_REQUEST_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["checkpoint", "architecture", "layers"],
                "properties": {
                    "checkpoint": {"type": "string", "format": "binary", "description": ".pt/.pth/.safetensors"},
                    "architecture": {"type": "string", "example": "resnet18"},
                    "layers": {"type": "array", "items": {"type": "string"}, "example": ["layer4"]},
                    "probe": {
                        "type": "string",
                        "default": UploadValues.probe,
                        "description": "a probe set's name, from GET /api/v1/probe-sets",
                    },
                    "concepts": {
                        "type": "string",
                        "default": UploadValues.concepts,
                        "description": "a concept set's name, from GET /api/v1/concept-sets",
                    },
                    "encoder": {
                        "type": "string",
                        "default": UploadValues.encoder,
                        "description": "an encoder's name, from GET /api/v1/encoders",
                    },
                    "model_name": {
                        "type": "string",
                        "description": "what the upload is called, unique (default: the file's name without suffix)",
                    },
                    "class_names": {
                        "type": "string",
                        "format": "binary",
                        "description": (
                            f"optional: {CLASS_NAMES_FILE_FORMAT}, at most {CLASS_NAMES_MAX_BYTES // 1024} KB, one "
                            "name per output of the checkpoint's head (default: the architecture's trained weights' "
                            "names when the head has as many outputs)"
                        ),
                    },
                },
            }
        }
    },
}

router = APIRouter(tags=["upload"], responses=API_ERRORS)


async def submit_upload(
    request: Request, engine: Engine, settings: Settings, catalog: ArchitectureCatalog, owner: User
) -> int:
    """Receive, check and queue an uploaded checkpoint from a multipart request as `owner`'s job; return its id."""
    declared = request.headers.get("content-length", "")
    limit = settings.upload_limit_bytes
    if declared.isdecimal() and int(declared) > limit + FORM_OVERHEAD_BYTES:
        raise BadUpload(
            f"The upload is {int(declared) / 2**20:.0f} MB, over the limit of {limit / 2**20:.0f} MB; upload a "
            "smaller checkpoint or raise NEURON_ATLAS_UPLOAD_LIMIT_MB on the server."
        )
    await run_in_threadpool(check_upload_quotas, engine, settings, owner)
    passed = BadUpload(
        f"The upload passed the limit of {limit / 2**20:.0f} MB while it was arriving; upload a smaller "
        "checkpoint or raise NEURON_ATLAS_UPLOAD_LIMIT_MB on the server."
    )
    bounded = Request(request.scope, counting_receive(request, limit + FORM_OVERHEAD_BYTES, passed))
    async with bounded.form(max_files=2, max_fields=100) as form:
        request.state.upload_values = UploadValues.from_form(form)
        names_file = form.get("class_names")
        if isinstance(names_file, UploadFile) and (names_file.filename or names_file.size):
            names = await receive_class_names(names_file)
            request.state.upload_values = replace(request.state.upload_values, class_names=names)
        values = request.state.upload_values
        upload = form.get("checkpoint")
        try:
            if not isinstance(upload, UploadFile) or not upload.filename:
                raise BadUpload("No checkpoint file was sent; choose a .pt, .pth or .safetensors file.")
            received = await receive_checkpoint(upload, settings)
        except BadUpload as missing:  # say what else is wrong too, so the form is fixed in one go
            await run_in_threadpool(refuse_without_file, engine, settings, catalog, values, missing)
            raise
    return await run_in_threadpool(partial(accept_upload, engine, settings, catalog, values, received, owner=owner))


def counting_receive(request: Request, max_body: int, refusal: BadUpload) -> Receive:
    """Return the request's receive, raising `refusal` once the body passes `max_body` bytes (chunked bodies too,
    which declare no length), so nothing larger is spooled to disk."""
    received = 0

    async def receive() -> Message:
        nonlocal received
        message = await request.receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > max_body:
                raise refusal
        return message

    return receive


@dataclass
class UploadForm:
    """The upload form with what it offers: architectures and their layers, the catalogue, the size limit."""

    request: Request
    session: SessionDep
    templates: TemplatesDep
    catalog: CatalogDep
    settings: SettingsDep

    def probe_options(self) -> list[str]:
        """Return the probe sets the form offers, by name."""
        return [probe_set.name for probe_set in list_probe_sets(self.session)]

    def starting_values(self, architecture: str) -> UploadValues:
        """Return the form's first values: the architecture's main stages, and a probe set and encoder that work
        offline when the default ones would need a download."""
        return UploadValues(
            architecture=architecture,
            layers=tuple(main_layers_or_none(self.catalog, architecture)),
            probe=default_probe(self.probe_options(), self.settings.data_dir),
            encoder=default_encoder(allowed_encoders(self.settings)),
        )

    def render(self, values: UploadValues, error: DissectError | None = None, status: int = 200) -> Response:
        """Return the form filled with `values`, each problem of the last upload shown next to its field."""
        layer_options, layer_error = [], None
        try:
            layer_options = self.catalog.layers(values.architecture) if values.architecture else []
        except Exception as problem:  # the form must still render when one architecture cannot be built
            cause = redact_paths(str(problem))
            layer_error = f"Could not list the layers of {values.architecture} ({cause}); pick another architecture."
        problems = {
            field: [redact_paths(message) for message in messages]
            for field, messages in (problems_by_field(error) if error is not None else {}).items()
        }
        context = {
            "title": "Upload",
            "architectures": self.catalog.names(),
            "values": values,
            "layer_options": layer_options,
            "main_layers": main_layers_or_none(self.catalog, values.architecture),
            "layer_error": layer_error,
            "problems": problems,
            "limit_mb": round(self.settings.upload_limit_bytes / 2**20),
            "class_names_max_kb": CLASS_NAMES_MAX_BYTES // 1024,
            "probe_options": self.probe_options(),
            "concept_options": [concept_set.name for concept_set in list_concept_sets(self.session)],
            "encoder_options": allowed_encoders(self.settings),
        }
        return self.templates.TemplateResponse(self.request, "upload.html", context, status_code=status)


def main_layers_or_none(catalog: ArchitectureCatalog, architecture: str) -> list[str]:
    """Return the architecture's main stages, or none when it is unknown or cannot be built (the form says why)."""
    try:
        return catalog.main_layers(architecture) if architecture else []
    except Exception:  # the layer list shows the problem
        return []


UploadFormDep = Annotated[UploadForm, Depends()]


@router.get("/upload", response_class=HTMLResponse, include_in_schema=False)
def upload_page(form: UploadFormDep, catalog: CatalogDep, _user: EditorDep, architecture: str = "") -> Response:
    """The upload form (for editors); `architecture` picks whose layers are listed."""
    chosen = architecture if architecture in catalog.names() else catalog.default()
    return form.render(form.starting_values(chosen))


@router.post("/upload", response_class=HTMLResponse, include_in_schema=False)
async def upload_submit(
    request: Request,
    form: UploadFormDep,
    engine: EngineDep,
    settings: SettingsDep,
    catalog: CatalogDep,
    user: EditorDep,
) -> Response:
    """Check and queue an upload, then go to its job; a bad upload re-renders the form with the problem."""
    try:
        job_id = await submit_upload(request, engine, settings, catalog, user)
    except DissectError as error:
        values = getattr(request.state, "upload_values", None) or UploadValues(architecture=catalog.default())
        return await run_in_threadpool(form.render, values, error, error_status(error))
    return RedirectResponse(job_url(job_id), status_code=303)


@router.post(
    API_PREFIX + "/uploads",
    status_code=201,
    response_model=JobCreated,
    responses={
        **WRITE_ERRORS,
        400: {"model": ErrorBody, "description": "unusable file"},
        422: {"model": ErrorBody, "description": "does not fit / bad fields"},
        429: {"model": ErrorBody, "description": "over the uploads-per-hour or queued-jobs limit"},
    },
    openapi_extra={"requestBody": UPLOAD_REQUEST_BODY},
)
async def upload_api(
    request: Request, engine: EngineDep, settings: SettingsDep, catalog: CatalogDep, user: EditorDep
) -> Response:
    """Upload a checkpoint (multipart: checkpoint, architecture, layers, probe, concepts, encoder, model_name and an
    optional class_names file) and queue it; the probe, concept set and encoder are catalogue names, never paths."""
    job_id = await submit_upload(request, engine, settings, catalog, user)  # a refusal: app.web.errors answers
    created = JobCreated(job_id=job_id, job_url=job_url(job_id), api_url=api_url(job_url(job_id)))
    return JSONResponse(created.model_dump(), status_code=201, headers={"Location": created.api_url})


@router.get(API_PREFIX + "/architectures")
def architectures(catalog: CatalogDep) -> ListPage[str]:
    """The architectures a checkpoint can be uploaded for, all on one page."""
    return whole(catalog.names())


def architecture_layers(request: Request, architecture: str, catalog: CatalogDep, templates: TemplatesDep) -> Response:
    """The architecture's layers in forward order, all on one page; htmx gets the upload form's layer picker
    instead."""
    options = catalog.layers(architecture)
    if is_htmx(request.headers):
        main = catalog.main_layers(architecture)
        values = UploadValues(architecture=architecture, layers=tuple(main))
        context = {"layer_options": options, "main_layers": main, "values": values, "layer_error": None}
        return templates.TemplateResponse(request, "partials/layer_picker.html", context)
    return JSONResponse(whole(options).model_dump(mode="json"))


# The upload form's script asks this API path for the picker, so the fragment is served here rather than on a page.
router.add_api_route(
    API_PREFIX + "/architectures/{architecture}/layers",
    architecture_layers,
    methods=["GET"],
    response_model=ListPage[LayerOption],
    route_class_override=HtmxAwareRoute,
)
