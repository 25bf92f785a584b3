"""Per-user limits on queued jobs, uploads and pushed runs per hour, typed concepts per run, and uploaded probe and
concept sets (their number and bytes); admins and the CLI are exempt."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.auth.permissions import is_admin
from app.core.config import ENV_PREFIX, Settings
from app.core.errors import QuotaExceeded
from app.persistence.models import (
    CatalogConceptSet,
    CatalogProbeSet,
    Job,
    JobState,
    Run,
    TargetModel,
    TypedConcept,
    User,
    utcnow,
)

#: A check run before an upload is received: raises QuotaExceeded when the user has no room left.
QuotaCheck = Callable[[Session, Settings, User | None], None]


def _limited(user: User | None) -> bool:
    """Return whether the limits apply to the user (not to admins, nor to the command line's jobs)."""
    return user is not None and not is_admin(user)


def check_queued_jobs(session: Session, settings: Settings, user: User | None) -> None:
    """Raise QuotaExceeded when the user already has `max_queued_jobs` jobs waiting in the queue."""
    if not _limited(user):
        return
    assert user is not None
    limit = settings.max_queued_jobs
    queued = session.scalar(
        select(func.count(Job.id)).where(Job.owner_id == user.id, Job.status == JobState.QUEUED.value)
    )
    if (queued or 0) >= limit:
        raise QuotaExceeded(
            f"{user.name} already has {queued} jobs waiting in the queue, the limit of {limit} per user; wait until "
            f"one starts or cancel one on its job page (an admin can raise {ENV_PREFIX}MAX_QUEUED_JOBS)."
        )


def check_uploads_per_hour(session: Session, settings: Settings, user: User | None) -> None:
    """Raise QuotaExceeded when the user uploaded `max_uploads_per_hour` checkpoints in the last hour."""
    if not _limited(user):
        return
    assert user is not None
    limit = settings.max_uploads_per_hour
    since = utcnow() - timedelta(hours=1)
    uploaded = session.scalar(
        select(func.count(TargetModel.id)).where(
            TargetModel.owner_id == user.id, TargetModel.uploaded_name.is_not(None), TargetModel.created_at >= since
        )
    )
    if (uploaded or 0) >= limit:
        raise QuotaExceeded(
            f"{user.name} uploaded {uploaded} checkpoints in the last hour, the limit of {limit} per hour; try again "
            f"later (an admin can raise {ENV_PREFIX}MAX_UPLOADS_PER_HOUR)."
        )


def check_pushed_runs_per_hour(session: Session, settings: Settings, user: User | None) -> None:
    """Raise QuotaExceeded when the user pushed `max_uploads_per_hour` runs in the last hour (runs of theirs that
    no job made)."""
    if not _limited(user):
        return
    assert user is not None
    limit = settings.max_uploads_per_hour
    since = utcnow() - timedelta(hours=1)
    made_by_a_job = select(Job.id).where(Job.run_id == Run.id).exists()
    pushed = session.scalar(
        select(func.count(Run.id)).where(Run.owner_id == user.id, Run.created_at >= since, ~made_by_a_job)
    )
    if (pushed or 0) >= limit:
        raise QuotaExceeded(
            f"{user.name} pushed {pushed} runs in the last hour, the limit of {limit} per hour; try again later "
            f"(an admin can raise {ENV_PREFIX}MAX_UPLOADS_PER_HOUR)."
        )


def check_typed_concepts(session: Session, settings: Settings, user: User | None, run_id: int) -> None:
    """Raise QuotaExceeded when the run already keeps `max_typed_concepts` typed concepts."""
    if not _limited(user):
        return
    limit = settings.max_typed_concepts
    kept = session.scalar(select(func.count(TypedConcept.id)).where(TypedConcept.run_id == run_id))
    if (kept or 0) >= limit:
        raise QuotaExceeded(
            f"Run {run_id} already keeps {kept} typed concepts, the limit of {limit} per run; relabel with those "
            f"first, or upload a concept list instead (an admin can raise {ENV_PREFIX}MAX_TYPED_CONCEPTS)."
        )


def check_probe_sets(session: Session, settings: Settings, user: User | None, adding_bytes: int = 0) -> None:
    """Raise QuotaExceeded when the user's uploaded probe sets, with one of `adding_bytes` more, pass the limits
    on their number (`max_probe_sets`) or bytes (`max_probe_set_bytes`); `adding_bytes` 0: before an upload."""
    _check_sets(session, user, CatalogProbeSet, adding_bytes, settings.max_probe_sets, settings.max_probe_set_bytes)


def check_concept_sets(session: Session, settings: Settings, user: User | None, adding_bytes: int = 0) -> None:
    """Raise QuotaExceeded when the user's uploaded concept sets, with one of `adding_bytes` more, pass the limits
    on their number (`max_concept_sets`) or bytes (`max_concept_set_bytes`); `adding_bytes` 0: before an upload."""
    _check_sets(
        session, user, CatalogConceptSet, adding_bytes, settings.max_concept_sets, settings.max_concept_set_bytes
    )


#: Per catalogue table: what its rows are called, and the variables raising its count and bytes limits.
_SET_LIMITS = {
    CatalogProbeSet: ("probe sets", "MAX_PROBE_SETS", "MAX_PROBE_SETS_MB", 2**20, "MB"),
    CatalogConceptSet: ("concept sets", "MAX_CONCEPT_SETS", "MAX_CONCEPT_SETS_KB", 2**10, "KB"),
}


def _check_sets(
    session: Session,
    user: User | None,
    table: type[CatalogProbeSet] | type[CatalogConceptSet],
    adding_bytes: int,
    max_sets: int,
    max_bytes: int,
) -> None:
    if not _limited(user):
        return
    assert user is not None
    what, count_variable, bytes_variable, unit_bytes, unit = _SET_LIMITS[table]
    count, held_or_none = session.execute(
        select(func.count(table.id), func.sum(table.n_bytes)).where(table.owner_id == user.id)
    ).one()
    held = int(held_or_none or 0)  # sets uploaded before their bytes were counted count nothing
    page = f"delete one on the {what} page"
    if count >= max_sets:
        raise QuotaExceeded(
            f"{user.name} already has {count} {what}, the limit of {max_sets} per user; {page} first (an admin can "
            f"raise {ENV_PREFIX}{count_variable})."
        )
    if held >= max_bytes or held + adding_bytes > max_bytes:
        adding = f" and this one's {adding_bytes / unit_bytes:,.1f} {unit}" if adding_bytes else ""
        raise QuotaExceeded(
            f"{user.name}'s {what} hold {held / unit_bytes:,.1f} {unit}{adding}: no room within the limit of "
            f"{max_bytes / unit_bytes:,.0f} {unit} per user; {page} first (an admin can raise "
            f"{ENV_PREFIX}{bytes_variable})."
        )
