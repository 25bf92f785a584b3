"""A job's clock as its page shows it: time since it started, its duration once finished, where its stage stands
among the stages a dissection job runs, and the stage's remaining time at the stage's own rate."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from app.persistence.models import FINISHED_STATES, Job
from dissect_core.progress import DISSECTION_STAGES, stage_position

#: The stages a dissection job reports: the dissection's own, then storing its run (app.persistence.store reports
#: "media" while it writes the top images, then "store").
DISSECTION_JOB_STAGES: tuple[str, ...] = (*DISSECTION_STAGES, "media", "store")


@dataclass(frozen=True)
class JobTiming:
    """Seconds since the job started (to its end once finished), the stage's place, and its remaining seconds."""

    elapsed_s: float | None
    stage_number: int | None
    n_stages: int | None
    eta_s: float | None


def _aware(moment: datetime | None) -> datetime | None:
    """Return the moment in UTC (SQLite hands back naive datetimes, stored as UTC)."""
    if moment is None:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def job_timing(job: Job, now: datetime) -> JobTiming:
    """Return the job's timing at `now`: elapsed seconds (None before it started), its stage k of n (None for a
    stage no dissection job lists, or once finished) and the stage's ETA (None until a step of it is done)."""
    started, finished = _aware(job.started_at), _aware(job.finished_at)
    end = finished if finished is not None else now
    elapsed = max(0.0, (end - started).total_seconds()) if started is not None else None
    running = job.status not in FINISHED_STATES
    position = stage_position(job.stage, DISSECTION_JOB_STAGES) if job.stage and running else None
    stage_started = _aware(job.stage_started_at)
    eta = None
    if running and stage_started is not None and job.total and 0 < job.done <= job.total:
        per_step = max(0.0, (now - stage_started).total_seconds()) / job.done
        eta = per_step * (job.total - job.done)
    n_stages = len(DISSECTION_JOB_STAGES) if position is not None else None
    return JobTiming(elapsed_s=elapsed, stage_number=position, n_stages=n_stages, eta_s=eta)
