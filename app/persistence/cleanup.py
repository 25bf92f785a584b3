"""Files no job or run needs any more: checkpoints and relabel concept lists of failed or cancelled jobs and
deleted runs, artifacts folders no run references (a store killed half-way leaves one), stale temporary files.

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
from app.persistence.models import Job, JobState, Run, TargetModel, utcnow

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
        kept.update(
            resolved_path(pinned[key], data) for key in FILE_KEYS if isinstance(pinned, dict) and pinned.get(key)
        )
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


def find_removable(engine: Engine, settings: Settings, *, orphans_only: bool = False) -> Removal:
    """Return what a clean-up would remove; `orphans_only`: artifacts folders no run references, and nothing else."""
    # Listed first, then the liveness, then the references: a folder listed here whose run commits afterwards
    # belongs to a job found alive, and one whose run committed before is found referenced.
    candidates = list(_candidates(settings, orphans_only=orphans_only))
    with Session(engine) as session:
        young_ok = not _worker_alive(session, settings)
        kept = _referenced(session, settings)
    removal = Removal()
    now = time.time()
    for path in candidates:
        if not path.exists():
            continue
        if path.resolve() in kept:
            continue
        young = now - path.stat().st_mtime < ORPHAN_GRACE_S
        if young and (not young_ok or path.name.startswith(".upload-")):  # an upload may be arriving at the server
            continue
        removal.paths.append(path)
        removal.bytes_freed += _size(path)
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
