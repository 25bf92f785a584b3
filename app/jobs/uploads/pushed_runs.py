"""Pushed runs: a folder saved by `DissectionResult.save` (results, record, manifest, safetensors artifacts, view
images), sent as one archive (`neuron-atlas push`, POST /api/v1/runs), checked and stored as a run of its uploader.

The archive is unpacked with the probe-set bounds (members, bytes, pixels; no links, names never paths) into a
locked staging folder, then `dissect_core.load_saved` rebuilds the result strictly (no pickles, only the files the
manifest names, their sha256, every layer's counts and shapes, views of the run's view size). Only then is it
stored, with `store_run`, all of it or none; the staging folder goes in every case.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

from PIL import Image
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.jobs.queue.quotas import check_pushed_runs_per_hour
from app.jobs.uploads.archives import ArchiveBounds, extract_files
from app.persistence.models import Run, User
from app.persistence.staging import staging_folder
from app.persistence.store import ViewLoader, store_run
from dissect_core.saved import load_saved

#: The folder inside the staging folder the archive is unpacked into.
UNPACKED = "run"


def push_bounds(settings: Settings) -> ArchiveBounds:
    """Return the bounds on a pushed run's archive: `push_max_bytes` of files, the probe sets' on files and pixels."""
    probe = ArchiveBounds.from_settings(settings)
    return ArchiveBounds(
        max_files=probe.max_files,
        max_bytes=settings.push_max_bytes,
        max_pixels=probe.max_pixels,
        max_total_pixels=probe.max_total_pixels,
        contents="files",
        smaller="push a run over fewer probe images or layers",
        bytes_variable="NEURON_ATLAS_PUSH_MAX_MB",
    )


def check_push_quota(engine: Engine, settings: Settings, owner: User | None) -> None:
    """Raise QuotaExceeded when `owner` may not push now: checked before the archive is received."""
    with Session(engine) as session:
        check_pushed_runs_per_hour(session, settings, owner)


def store_pushed_run(engine: Engine, settings: Settings, archive: BinaryIO, *, owner: User | None) -> int:
    """Check a pushed run's archive (a .tar.gz or .zip of a saved folder's files) and store it as `owner`'s run;
    return its id. Raises BadUpload (an unusable archive) or DissectError (an inconsistent run); then nothing is
    kept: no run row, no media files, no artifacts folder, no staging folder."""
    check_push_quota(engine, settings, owner)
    with staging_folder(settings.pushes_dir) as staging:
        folder = staging / UNPACKED
        extract_files(archive, folder, push_bounds(settings))
        saved = load_saved(folder, max_bytes=settings.push_max_bytes)
        views = dict(zip(saved.result.image_paths, saved.view_images, strict=True))

        def own(session: Session, run_id: int) -> None:
            check_pushed_runs_per_hour(session, settings, owner)  # again: pushes in parallel count each other
            run = session.get(Run, run_id)
            if run is not None and owner is not None:
                run.owner_id = owner.id

        return store_run(engine, settings, saved.result, load_view=_saved_views(views), before_commit=own)


def _saved_views(views: dict[str, Path]) -> ViewLoader:
    """Return a view loader reading each probe image's view from the saved folder's images/ as it is: saved at
    view size, it needs no resize or crop (its pixels were bounded when the archive was unpacked)."""

    def load(path: str, _resize: int, _crop: int) -> Image.Image:
        with Image.open(views[path]) as image:
            return image.convert("RGB")

    return load
