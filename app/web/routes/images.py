"""Images: one probe image of a run and, per layer, the units it drives most (by activation and by how unusual)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from app.read.images.view import TOP_UNITS, ImageViews
from app.read.schemas.images import ImageView
from app.web.deps import ReadCacheDep, SessionDep
from app.web.errors import API_ERRORS
from app.web.resources import Page, resource
from app.web.views.paging import Id

router = APIRouter(tags=["images"], responses=API_ERRORS)


async def get_image_views(request: Request) -> ImageViews:
    """Return the app's image views (standardised activations per stored layer, loaded once)."""
    return request.app.state.image_views


ImageViewsDep = Annotated[ImageViews, Depends(get_image_views)]


def image_page(view: ImageView, session: SessionDep, cache: ReadCacheDep) -> dict[str, object]:
    """Return image.html's context: the run and the image's view."""
    return {
        "title": f"image {view.image_index} · run {view.run_id}",
        "run": cache.run(session, view.run_id),
        "view": view,
        "top_units": TOP_UNITS,
    }


@resource(
    router,
    "/runs/{run_id}/images/{image_index}",
    html=Page("image.html", context=image_page, immutable=True),
    immutable=True,
)
def image(run_id: Id, image_index: Id, session: SessionDep, cache: ReadCacheDep, views: ImageViewsDep) -> ImageView:
    """One probe image of a run: its view, and per layer the units it activates most and those it is most unusual
    for (z-score over the probe set), each with its label, activation, percentile and z-score."""
    return views.view(session, cache, run_id, image_index)
