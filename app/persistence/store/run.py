"""`store_run`: media files and artifacts first, then every row in one transaction; all of it or none."""

from __future__ import annotations

import shutil
from collections.abc import Callable

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.core.paths import stored_path
from app.persistence.db import write_session
from app.persistence.media import MediaStore
from app.persistence.store.artifacts import write_artifacts
from app.persistence.store.pinning import pin_settings
from app.persistence.store.rows import insert_rows
from app.persistence.store.run_media import StoreCancelled, ViewLoader, write_run_media
from dissect_core.data.concepts import concepts_text
from dissect_core.progress import Progress
from dissect_core.results import DissectionResult

BeforeCommit = Callable[[Session, int], None]
# Any constant works; PostgreSQL stores take it so concurrent get-or-creates cannot duplicate a model row.
STORE_LOCK_KEY = 7_245_312

__all__ = ["BeforeCommit", "StoreCancelled", "ViewLoader", "store_run"]


def store_run(
    engine: Engine,
    settings: Settings,
    result: DissectionResult,
    *,
    target_model_id: int | None = None,
    load_view: ViewLoader | None = None,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    before_commit: BeforeCommit | None = None,
) -> int:
    """Store a dissection; return the new run's id. Either all of it becomes visible or none of it.

    Media files (content-addressed, shared between runs) and the artifacts folder are written first;
    then one transaction inserts every row and runs `before_commit(session, run_id)`, which may raise to
    abort. On failure the artifacts folder is removed; media files left behind are harmless and reused.
    This function owns its transaction: it commits, so it is never called inside a caller's one. The run joins
    the model row `target_model_id` when given (an uploaded checkpoint's, added when its job was queued).
    """
    settings.ensure_dirs()
    pinned = pin_settings(result.record, settings.data_dir)
    media_store = MediaStore(settings.media_dir)
    media = write_run_media(media_store, result, load_view, progress, should_stop)
    concepts_file = media_store.put(concepts_text(result.concepts).encode(), ".txt")
    run_dir = write_artifacts(settings.artifacts_dir, result, pinned)
    try:
        if progress:
            progress("store", 0, 1)
        with write_session(engine) as session:
            if session.get_bind().dialect.name == "postgresql":
                session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": STORE_LOCK_KEY})
            artifacts_dir = stored_path(run_dir, settings.data_dir)
            run_id = insert_rows(session, result, pinned, media, concepts_file, artifacts_dir, target_model_id)
            if before_commit:
                before_commit(session, run_id)
        if progress:
            progress("store", 1, 1)
        return run_id
    except BaseException:
        shutil.rmtree(run_dir, ignore_errors=True)
        raise
