"""Media files (views, crops, heatmaps) from the media dir; names are content hashes, so cached forever. A file is
served while a stored run or probe set references it (app.persistence.media_refs): a deleted run's answer 404 at
once, before `neuron-atlas gc` removes them.

A top image's crop and heatmap have a stable URL by run, layer, unit and rank: cut on the first request, kept in
the media store by content hash, and plain file hits afterwards (a stored run never changes, so neither do they).
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from fastapi import APIRouter
from fastapi.responses import FileResponse, Response

from app.core.errors import NotFound
from app.persistence.media_refs import media_is_referenced
from app.read.images.top_image_media import media_kind, top_media_file
from app.web.deps import SessionDep, SettingsDep
from app.web.views.paging import Id

IMMUTABLE = "public, max-age=31536000, immutable"

router = APIRouter(prefix="/media", include_in_schema=False)


def resolve_media_path(media_dir: Path, relative: str) -> Path:
    """Return the file under media_dir that `relative` names; raise NotFound for traversal or a missing file."""
    parts = PurePosixPath(relative).parts
    if (
        not relative
        or "\\" in relative
        or "\x00" in relative
        or relative.startswith("/")
        or any(part in ("..", ".") or part.startswith(".") for part in parts)
    ):
        raise NotFound(f"'{relative}' is not a media file name; media URLs look like /media/ab/abcdef….jpg.")
    root = media_dir.resolve()
    path = (root / Path(*parts)).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise NotFound(f"There is no media file '{relative}'; it may belong to a run that was deleted.")
    return path


# Declared before the catch-all below, which would take these paths for file names.
@router.get("/runs/{run_id}/layers/{layer}/neurons/{unit}/top/{rank}/{file_name}")
def top_image_media(
    run_id: Id, layer: str, unit: Id, rank: Id, file_name: str, session: SessionDep, settings: SettingsDep
) -> Response:
    """A top image's crop (`crop.jpg`) or heatmap (`heatmap.png`), cut on its first request."""
    kind = media_kind(file_name)
    path = top_media_file(session, settings, run_id=run_id, layer=layer, unit=unit, rank=rank, kind=kind)
    return FileResponse(path, headers={"Cache-Control": IMMUTABLE})


@router.get("/{path:path}")
def media(path: str, session: SessionDep, settings: SettingsDep) -> Response:
    """One content-addressed media file, while a stored run or probe set references it (a deleted run's: 404)."""
    file = resolve_media_path(settings.media_dir, path)
    if not media_is_referenced(session, path, settings.media_dir):
        raise NotFound(f"There is no media file '{path}'; it belonged to a run or probe set that was deleted.")
    return FileResponse(file, headers={"Cache-Control": IMMUTABLE})
