"""Which media files something stored references: the one rule the media route (it serves only these, so a deleted
run's images answer 404 at once) and `gc` (it removes the others) share.

A media file is referenced by a run's probe image (its view; top images show the same views), by a top image of a
run stored before crops and heatmaps were cut on request (its crop or heatmap), by a catalogued probe set (its
thumbnails), by a run's concept set (its list) or by an image uploaded to a run (its file). Crops and heatmaps
cut on request are reached through their run's stable URLs and kept under an alias of the run's artifacts folder
(app.persistence.media.ALIAS_FOLDER).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, and_, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from app.persistence.models import CUT_ON_REQUEST, CatalogProbeSet, ConceptSet, ProbeImage, Run, RunImage, TopImage


def _stored_file(column: InstrumentedAttribute[Any]) -> ColumnElement[bool]:
    """Return the condition (matching the partial indexes of top_images) of a top image's file stored at store time."""
    return and_(column.is_not(None), column != CUT_ON_REQUEST)


def media_is_referenced(session: Session, relative: str, media_dir: Path) -> bool:
    """Return whether anything stored references the media file `relative` (a path under `media_dir`)."""
    if session.scalar(select(ProbeImage.id).where(ProbeImage.view_file == relative).limit(1)) is not None:
        return True
    if session.scalar(select(RunImage.id).where(RunImage.file == relative).limit(1)) is not None:
        return True
    if any(relative in (thumbnails or []) for thumbnails in session.scalars(select(CatalogProbeSet.thumbnails))):
        return True
    for column in (TopImage.crop_file, TopImage.heatmap_file):
        found = select(TopImage.id).where(column == relative, _stored_file(column)).limit(1)
        if session.scalar(found) is not None:
            return True
    return relative in _concept_lists(session, media_dir)


def referenced_media(session: Session, media_dir: Path) -> set[str]:
    """Return every media file (relative to `media_dir`) something stored references, aliases of live runs aside."""
    referenced: set[str] = set(session.scalars(select(ProbeImage.view_file).where(ProbeImage.view_file.is_not(None))))
    referenced.update(session.scalars(select(RunImage.file)))
    for thumbnails in session.scalars(select(CatalogProbeSet.thumbnails)):
        referenced.update(thumbnails or [])
    for column in (TopImage.crop_file, TopImage.heatmap_file):
        referenced.update(session.scalars(select(column).where(_stored_file(column))))
    return referenced | _concept_lists(session, media_dir)


def live_alias_folders(session: Session) -> set[str]:
    """Return the alias folder names (a run's artifacts folder's name) of the runs that exist."""
    return {Path(artifacts_dir).name for artifacts_dir in session.scalars(select(Run.artifacts_dir))}


def _concept_lists(session: Session, media_dir: Path) -> set[str]:
    """Return the runs' concept lists kept in the media dir, relative to it (older databases hold absolute paths)."""
    root = media_dir.resolve()
    found = set()
    for file in session.scalars(select(ConceptSet.file)):
        path = Path(file)
        if not path.is_absolute():
            found.add(path.as_posix())
        elif path.is_relative_to(root):
            found.add(path.relative_to(root).as_posix())
    return found
