"""Pushing a run: POST /api/v1/runs takes a saved run's folder as one archive (`neuron-atlas push`,
`DissectionResult.push`) and stores it as the uploader's run (app.jobs.uploads.pushed_runs checks it)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from sqlalchemy import Engine
from starlette.datastructures import UploadFile

from app.core.config import Settings
from app.core.errors import BadUpload, TooLarge
from app.core.urls import API_PREFIX, api_url, run_url
from app.jobs.uploads.pushed_runs import check_push_quota, store_pushed_run
from app.persistence.models import User
from app.read.schemas.runs import RunPushed
from app.web import openapi_examples as examples
from app.web.deps import EditorDep, EngineDep, SettingsDep
from app.web.errors import API_ERRORS, WRITE_ERRORS, ErrorBody
from app.web.routes.upload import FORM_OVERHEAD_BYTES, counting_receive

# The body is parsed by hand (to stop an oversize archive early), so its schema is spelled out for /docs.
PUSH_REQUEST_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["archive"],
                "properties": {
                    "archive": {
                        "type": "string",
                        "format": "binary",
                        "description": "a .tar.gz (or .zip) of the files of a folder written by "
                        "DissectionResult.save(folder), with no leading folder: results.csv, results.json, the "
                        "manifest, record, safetensors artifacts and images/<index>.jpg",
                    }
                },
            },
            "examples": {
                "saved run": {
                    "summary": "tar -czf run.tar.gz -C my-run . && curl -F archive=@run.tar.gz …",
                    "value": {"archive": "(the bytes of run.tar.gz)"},
                }
            },
        }
    },
}

router = APIRouter(tags=["runs"], responses=API_ERRORS)


async def receive_pushed_run(request: Request, settings: Settings, engine: Engine, owner: User) -> int:
    """Receive a multipart `archive` (bounded while it arrives), check it and store it as `owner`'s run; return
    its id."""
    limit = settings.push_max_bytes
    too_large = TooLarge(
        f"The pushed run is larger than the limit of {limit / 2**20:,.0f} MB; push a run over fewer probe images or "
        "layers, or raise NEURON_ATLAS_PUSH_MAX_MB on the server."
    )
    declared = request.headers.get("content-length", "")
    if declared.isdecimal() and int(declared) > limit + FORM_OVERHEAD_BYTES:
        raise too_large
    await run_in_threadpool(check_push_quota, engine, settings, owner)
    bounded = Request(request.scope, counting_receive(request, limit + FORM_OVERHEAD_BYTES, too_large))
    async with bounded.form(max_files=1, max_fields=10) as form:
        archive = form.get("archive")
        if not isinstance(archive, UploadFile) or not archive.filename:
            raise BadUpload(
                "No archive was sent; send the saved run's folder as a multipart file field `archive` (a .tar.gz "
                "of its files), e.g. with `neuron-atlas push FOLDER --server URL`."
            )
        return await run_in_threadpool(lambda: store_pushed_run(engine, settings, archive.file, owner=owner))


@router.post(
    API_PREFIX + "/runs",
    status_code=201,
    response_model=RunPushed,
    responses={
        **examples.PUSHED,
        **WRITE_ERRORS,
        400: {"model": ErrorBody, "description": "an unusable archive: damaged, a link, a path member, a bomb"},
        413: {"model": ErrorBody, "description": "the archive is larger than NEURON_ATLAS_PUSH_MAX_MB"},
        422: {"model": ErrorBody, "description": "a pickle inside, or files, layers or counts that disagree"},
        429: {"model": ErrorBody, "description": "over the pushes-per-hour limit"},
    },
    openapi_extra={"requestBody": PUSH_REQUEST_BODY},
)
async def push_run(request: Request, engine: EngineDep, settings: SettingsDep, user: EditorDep) -> Response:
    """Store a run pushed as one archive of a saved folder (editors and admins); it becomes the uploader's run.
    The archive is checked as strictly as an upload: bounded while it arrives, names never paths, no links and no
    pickles, every file named by the manifest with its sha256, every layer and count consistent, images bounded."""
    run_id = await receive_pushed_run(request, settings, engine, user)  # a refusal: app.web.errors answers
    base = str(request.base_url).rstrip("/")
    pushed = RunPushed(run_id=run_id, url=base + run_url(run_id), api_url=base + api_url(run_url(run_id)))
    return JSONResponse(pushed.model_dump(), status_code=201, headers={"Location": pushed.api_url})
