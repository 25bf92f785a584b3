"""The neuron page's top images, ten at a time: which page shows which images, and the pager's links."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlencode

from fastapi import Query

from app.core.errors import NotFound
from app.read.schemas.neurons import NeuronDetail, TopImageView

TOP_PAGE_SIZE = 10
#: The largest top-images page a URL may name (a neuron keeps far fewer top images than this many pages hold).
MAX_TOP_PAGE = 10_000
#: The neuron page's `top_page` parameter: which ten top images it shows.
TopPage = Annotated[int, Query(ge=1, le=MAX_TOP_PAGE, description="the page of top images, ten a page, from 1")]


@dataclass(frozen=True)
class TopImagesPage:
    """One page of a neuron's top images: the images, their 1-based numbers, and the pager's links."""

    images: tuple[TopImageView, ...]
    page: int
    n_pages: int
    first: int
    total: int
    previous_url: str | None
    next_url: str | None
    page_urls: tuple[tuple[int, str], ...]

    @property
    def numbered(self) -> list[tuple[int, TopImageView]]:
        """Return the page's images with their number among all the neuron's top images (from 1)."""
        return [(self.first + offset, image) for offset, image in enumerate(self.images)]


def top_page_url(permalink: str, page: int) -> str:
    """Return the neuron page showing a page of top images (page 1 is the permalink itself)."""
    return permalink if page == 1 else f"{permalink}?{urlencode({'top_page': page})}"


def top_images_page(neuron: NeuronDetail, page: int = 1, page_size: int = TOP_PAGE_SIZE) -> TopImagesPage:
    """Return the page of a neuron's top images, or raise NotFound for a page past the last."""
    total = len(neuron.top_images)
    n_pages = max(1, -(-total // page_size))
    if page > n_pages:
        raise NotFound(
            f"Unit {neuron.unit} of layer '{neuron.layer}' has {total} top images on {n_pages} "
            f"page{'s' if n_pages != 1 else ''}, so there is no top_page {page}; "
            f"open {top_page_url(neuron.permalink, 1)}."
        )
    start = (page - 1) * page_size
    return TopImagesPage(
        images=tuple(neuron.top_images[start : start + page_size]),
        page=page,
        n_pages=n_pages,
        first=start + 1,
        total=total,
        previous_url=top_page_url(neuron.permalink, page - 1) if page > 1 else None,
        next_url=top_page_url(neuron.permalink, page + 1) if page < n_pages else None,
        page_urls=tuple((number, top_page_url(neuron.permalink, number)) for number in range(1, n_pages + 1)),
    )
