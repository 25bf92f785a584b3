"""Media files (views, crops, heatmaps) from the media dir; names are content hashes, so cached forever."""

# No `from __future__ import annotations` in route modules: FastAPI reads the Annotated aliases as they are.

from pathlib import Path, PurePosixPath

from fastapi import APIRouter
from fastapi.responses import FileResponse, Response

from app.core.errors import NotFound
from app.web.deps import SettingsDep

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


@router.get("/{path:path}")
def media(path: str, settings: SettingsDep) -> Response:
    """One content-addressed media file."""
    return FileResponse(resolve_media_path(settings.media_dir, path), headers={"Cache-Control": IMMUTABLE})
