"""Files no job or run needs any more: checkpoints and relabel concept lists of failed or cancelled jobs and
deleted runs, artifacts folders no run references (a store killed half-way leaves one), media files nothing stored
references (app.persistence.media_refs: a deleted run's images), folders of uploads interrupted while unpacked
(app.persistence.staging), stale temporary files.

A file any queued, running or succeeded job, any run or any model with a run references is never removed. A
folder younger than ORPHAN_GRACE_S is kept while some job's worker is alive: it may be a store in progress.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.core.paths import resolved_path
from app.persistence.media import ALIAS_FOLDER
from app.persistence.media_refs import live_alias_folders, referenced_media
from app.persistence.models import Job, JobState, Run, TargetModel, utcnow
from app.persistence.staging import interrupted_staging
from dissect_core.run_record import RunRecord

#: Age after which an unreferenced folder or temporary file goes even while a worker is alive.
ORPHAN_GRACE_S = 3600.0
#: Job params and run settings naming files in the data folder.
FILE_KEYS = ("checkpoint", "concepts")
LIVE_STATES = (JobState.QUEUED.value, JobState.RUNNING.value, JobState.SUCCEEDED.value)


@dataclass
class Removal:
    """What a clean-up removes (or would, on a dry run): the paths and the bytes they hold."""

    paths: list[Path] = field(default_factory=list)
    bytes_freed: int = 0

    def add(self, path: Path) -> None:
        """Count a file or folder in, with the bytes it holds."""
        self.paths.append(path)
        self.bytes_freed += _size(path)


def _size(path: Path) -> int:
    """Return the bytes of a file, or of every file under a folder."""
    if path.is_file():
        return path.stat().st_size
    return sum(item.stat().st_size for item in path.rglob("*") if item.is_file())


def _referenced(session: Session, settings: Settings) -> set[Path]:
    """Return every file and folder in the data folder a live job, a run or a model with a run references."""
    data = settings.data_dir
    kept: set[Path] = set()
    for params in session.scalars(select(Job.params).where(Job.status.in_(LIVE_STATES))):
        kept.update(
            resolved_path(params[key], data) for key in FILE_KEYS if isinstance(params, dict) and params.get(key)
        )
    for artifacts_dir, pinned in session.execute(select(Run.artifacts_dir, Run.settings)):
        kept.add(resolved_path(artifacts_dir, data))
        config = RunRecord.from_json(pinned).config
        kept.update(resolved_path(getattr(config, key), data) for key in FILE_KEYS if getattr(config, key))
    with_runs = select(TargetModel.checkpoint_file).where(
        TargetModel.checkpoint_file.is_not(None), TargetModel.id.in_(select(Run.model_id))
    )
    kept.update(resolved_path(path, data) for path in session.scalars(with_runs) if path)
    return {path.resolve() for path in kept}


def _worker_alive(session: Session, settings: Settings) -> bool:
    """Return whether some running job's worker sent a heartbeat within the stale timeout."""
    cutoff = utcnow() - timedelta(seconds=settings.stale_timeout_s)
    live = select(Job.id).where(Job.status == JobState.RUNNING.value, Job.heartbeat_at >= cutoff).limit(1)
    return session.scalar(live) is not None


def _candidates(settings: Settings, *, orphans_only: bool) -> Iterable[Path]:
    """Return the artifacts folders (and, unless `orphans_only`, stored checkpoints, relabel concept lists and
    temporary uploads) that may be unreferenced."""
    if settings.artifacts_dir.is_dir():
        yield from settings.artifacts_dir.iterdir()
    if orphans_only:
        return
    checkpoints = settings.data_dir / "checkpoints"
    if checkpoints.is_dir():
        for item in checkpoints.iterdir():
            yield from (item.iterdir() if item.is_dir() else [item])
    concepts = settings.data_dir / "concepts"
    if concepts.is_dir():
        yield from concepts.iterdir()
    if settings.concept_sets_dir.is_dir():  # a concept list being written, or one a killed server left
        yield from settings.concept_sets_dir.glob(".upload-*")
    if settings.probe_sets_dir.is_dir():  # a deleted probe set's images, moved aside by a server killed deleting them
        yield from settings.probe_sets_dir.glob(".removed-*")


def _media_candidates(media_dir: Path) -> Iterable[Path]:
    """Return the media files (`ab/abcdef….jpg`, temporary files included) and alias folders (one per run)."""
    if not media_dir.is_dir():
        return
    for folder in media_dir.iterdir():
        if folder.name == ALIAS_FOLDER:
            yield from (alias for alias in folder.iterdir() if alias.is_dir())
        elif folder.is_dir() and not folder.name.startswith("."):
            yield from (file for file in folder.iterdir() if file.is_file())


def _alias_targets(folder: Path) -> set[str]:
    """Return the media files the aliases under a run's alias folder name."""
    return {alias.read_text(encoding="utf-8").strip() for alias in folder.rglob("*") if alias.is_file()}


def _unreferenced_media(
    candidates: list[Path], referenced: set[str], live_aliases: set[str], media_dir: Path, now: float
) -> Iterable[Path]:
    """Return the alias folders of deleted runs, and the media files nothing references that are older than
    ORPHAN_GRACE_S (a younger one may belong to a store in progress or a crop being cut)."""
    kept = set(referenced)
    for folder in candidates:
        if folder.parent.name == ALIAS_FOLDER and folder.name in live_aliases:
            kept |= _alias_targets(folder)
    for path in candidates:
        if path.parent.name == ALIAS_FOLDER:
            if path.name not in live_aliases:
                yield path
        elif path.relative_to(media_dir).as_posix() not in kept and _age_s(path, now) >= ORPHAN_GRACE_S:
            yield path


def _age_s(path: Path, now: float) -> float:
    """Return how long ago a file was last written (touched, for a media file stored again); 0 if it is gone."""
    try:
        return now - path.stat().st_mtime
    except FileNotFoundError:
        return 0.0


def interrupted_uploads(settings: Settings) -> Removal:
    """Return the folders of uploads interrupted while their archives were unpacked (their server is gone)."""
    removal = Removal()
    for root in (settings.probe_sets_dir, settings.pushes_dir):
        for path in interrupted_staging(root):
            removal.add(path)
    return removal


def remove_interrupted_uploads(settings: Settings) -> list[Path]:
    """Remove the folders of uploads interrupted while unpacked (as `serve` does when it starts); return them."""
    removal = interrupted_uploads(settings)
    remove(removal)
    return removal.paths


def find_removable(engine: Engine, settings: Settings, *, orphans_only: bool = False) -> Removal:
    """Return what a clean-up would remove; `orphans_only`: artifacts folders no run references and interrupted
    uploads' folders, nothing else (no media: what `gc` removes besides)."""
    # Listed first, then the liveness, then the references: a folder listed here whose run commits afterwards
    # belongs to a job found alive, and one whose run committed before is found referenced.
    candidates = list(_candidates(settings, orphans_only=orphans_only))
    media = [] if orphans_only else list(_media_candidates(settings.media_dir))
    with Session(engine) as session:
        young_ok = not _worker_alive(session, settings)
        kept = _referenced(session, settings)
        media_kept = set() if orphans_only else referenced_media(session, settings.media_dir)
        live_aliases = live_alias_folders(session)
    removal = interrupted_uploads(settings)
    now = time.time()
    for path in _unreferenced_media(media, media_kept, live_aliases, settings.media_dir, now):
        removal.add(path)
    for path in candidates:
        if not path.exists():
            continue
        if path.resolve() in kept:
            continue
        young = now - path.stat().st_mtime < ORPHAN_GRACE_S
        if young and (not young_ok or path.name.startswith(".upload-")):  # an upload may be arriving at the server
            continue
        removal.add(path)
    return removal


def remove(removal: Removal) -> None:
    """Delete the paths of a removal, and any checkpoint folder that leaves empty."""
    for path in removal.paths:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
            if path.parent.parent.name == "checkpoints" and not any(path.parent.iterdir()):
                path.parent.rmdir()
