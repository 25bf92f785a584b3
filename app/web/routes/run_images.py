"""Your own image (#23): an editor uploads an image to a run; the worker runs the run's model on it; its page shows
it as a probe image's view does (the prediction, the units it drives most per layer, "why this prediction") and the
labelled units that fire unusually on it."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse
from sqlalchemy import Engine
from starlette.datastructures import UploadFile

from app.auth.permissions import can_edit
from app.core.config import ENV_PREFIX, Settings
from app.core.errors import AtlasError, TooLarge
from app.core.urls import API_PREFIX, run_image_url
from app.jobs.run_images import IMAGE_FORMATS, check_image, submit_run_image
from app.persistence.db import write_session
from app.persistence.models import User
from app.read.images import uploads as upload_queries
from app.read.images.view import TOP_UNITS
from app.read.schemas.common import ListPage
from app.read.schemas.run_images import RunImageCreated, RunImageSummary, RunImageView
from app.web.deps import CurrentUserDep, EditorDep, EngineDep, ReadCacheDep, SessionDep, SettingsDep
from app.web.errors import API_ERRORS, WRITE_ERRORS, ErrorBody
from app.web.resources import Page, resource
from app.web.routes.images import ImageViewsDep
from app.web.routes.upload import FORM_OVERHEAD_BYTES, counting_receive
from app.web.views.htmx import JOB_FINISHED
from app.web.views.paging import Id, whole

router = APIRouter(tags=["images"], responses=API_ERRORS)
#: The statuses an uploaded image keeps once reached (its page stops polling).
FINISHED = ("succeeded", "failed", "cancelled")
#: The formats the form's file picker offers.
ACCEPTED_TYPES = ",".join(f"image/{name.lower()}" for name in IMAGE_FORMATS)
IMAGE_REQUEST_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["image"],
                "properties": {
                    "image": {"type": "string", "format": "binary", "description": "PNG, JPEG, WebP or GIF"}
                },
            }
        }
    },
}


async def receive_image(request: Request, settings: Settings) -> bytes:
    """Return the bytes of the multipart field `image`, refusing (413) a body past the image bound while it arrives
    so that nothing larger is spooled, and (422) a request without the field."""
    limit = settings.image_max_bytes
    too_large = TooLarge(
        f"The upload is over the limit of {limit / 2**20:.0f} MB for one image; upload a smaller image or raise "
        f"{ENV_PREFIX}IMAGE_MAX_MB on the server."
    )
    declared = request.headers.get("content-length", "")
    if declared.isdecimal() and int(declared) > limit + FORM_OVERHEAD_BYTES:
        raise too_large
    bounded = Request(request.scope, counting_receive(request, limit + FORM_OVERHEAD_BYTES, too_large))
    async with bounded.form(max_files=1, max_fields=10) as form:
        upload = form.get("image")
        if not isinstance(upload, UploadFile):
            raise AtlasError("No image was sent; send it as the multipart field `image` (PNG, JPEG, WebP or GIF).")
        return await upload.read(limit + 1)


def store_image(engine: Engine, settings: Settings, run_id: int, data: bytes, owner: User) -> RunImageCreated:
    """Check an uploaded image and queue its reading (or find an identical upload's); return the answer."""
    image = check_image(data, settings)
    with write_session(engine) as session:
        row = submit_run_image(session, settings, run_id, image, owner=owner)
        return RunImageCreated(id=row.id, job_id=row.job_id, url=run_image_url(run_id, row.id))


@router.post(
    API_PREFIX + "/runs/{run_id}/images",
    status_code=202,
    responses={
        **WRITE_ERRORS,
        400: {"model": ErrorBody, "description": "the body is not readable multipart form data"},
        413: {"model": ErrorBody, "description": "the image is over the size bound"},
    },
    openapi_extra={"requestBody": IMAGE_REQUEST_BODY},
)
async def upload_image(
    run_id: Id, request: Request, engine: EngineDep, settings: SettingsDep, user: EditorDep
) -> RunImageCreated:
    """Upload an image to a run (multipart field `image`: PNG, JPEG, WebP or GIF, bounded in bytes and pixels) and
    queue the run's model on it (any editor; within their queue limit); an identical upload to the run answers with
    that one. 413 past the size bound, 422 for a file that is not a whole image or has too many pixels; nothing is
    stored then. The reading is served at `url`."""
    data = await receive_image(request, settings)
    return await run_in_threadpool(store_image, engine, settings, run_id, data, user)


@router.post("/runs/{run_id}/uploads", include_in_schema=False)
async def upload_image_form(
    run_id: Id, request: Request, engine: EngineDep, settings: SettingsDep, user: EditorDep
) -> RedirectResponse:
    """The upload form (run page, uploaded image pages): queue the image, then show its page."""
    data = await receive_image(request, settings)
    created = await run_in_threadpool(store_image, engine, settings, run_id, data, user)
    return RedirectResponse(created.url, status_code=303)


def uploads_panel(images: ListPage[RunImageSummary], run_id: Id, user: CurrentUserDep) -> dict[str, object]:
    """Return the context of the run page's "your own image" panel: its uploads and, for editors, the form."""
    return {
        "title": f"images uploaded to run {run_id}",
        "run_id": run_id,
        "images": images.items,
        "can_upload": can_edit(user),
        "accepted_types": ACCEPTED_TYPES,
    }


@resource(
    router,
    "/runs/{run_id}/uploads",
    html=Page("run_uploads.html", context=uploads_panel, fragment="partials/run_uploads.html"),
)
def run_uploads(run_id: Id, session: SessionDep) -> ListPage[RunImageSummary]:
    """The newest images uploaded to the run (at most 24), newest first, with their status and top class."""
    return whole(upload_queries.run_images(session, run_id))


def run_image_page(
    view: RunImageView, session: SessionDep, cache: ReadCacheDep, user: CurrentUserDep
) -> dict[str, object]:
    """Return run_image.html's context and its result fragment's (polled while queued or running)."""
    return {
        "title": f"uploaded image {view.id} · run {view.run_id}",
        "run": cache.run(session, view.run_id),
        "view": view,
        "finished": view.status in FINISHED,
        "top_units": TOP_UNITS,
        "can_upload": can_edit(user),
        "accepted_types": ACCEPTED_TYPES,
    }


def finished_event(view: RunImageView) -> str | None:
    """Return the event sent with a finished image's fragment (which also stops the polling)."""
    return JOB_FINISHED if view.status in FINISHED else None


@resource(
    router,
    "/runs/{run_id}/uploads/{image_id}",
    html=Page(
        "run_image.html",
        context=run_image_page,
        fragment="partials/run_image_result.html",
        fragment_event=finished_event,
    ),
)
def run_image(run_id: Id, image_id: Id, session: SessionDep, cache: ReadCacheDep, views: ImageViewsDep) -> RunImageView:
    """An image uploaded to a run: its status and, once the model read it, its top-5 classes, the units behind the
    top class, per layer the units it drives most (by activation and by z-score over the probe set), and the
    labelled units at or above the 99th percentile of the probe images, with their labels and verdicts."""
    return upload_queries.run_image_view(session, cache, views, run_id, image_id)
