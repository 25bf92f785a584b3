"""Probe images' view URLs, read in one query for a run's pages."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.urls import media_url
from app.persistence.models import (
    ProbeImage,
)


def view_urls(session: Session, run_id: int, indices: list[int] | None = None) -> dict[int, str | None]:
    """Return the view URL of each probe image of a run (one query): those at `indices`, or all of them."""
    query = select(ProbeImage.index, ProbeImage.view_file).where(ProbeImage.run_id == run_id)
    if indices is not None:
        query = query.where(ProbeImage.index.in_(indices))
    return {index: media_url(view_file) for index, view_file in session.execute(query).tuples()}
