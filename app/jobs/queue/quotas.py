"""Per-user limits on queued jobs, uploads per hour and typed concepts per run; admins and the CLI are exempt."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.auth.permissions import is_admin
from app.core.config import ENV_PREFIX, Settings
from app.core.errors import QuotaExceeded
from app.persistence.models import Job, JobState, TargetModel, TypedConcept, User, utcnow


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
