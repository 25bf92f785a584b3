"""The dissection job queue, kept in the `jobs` table so any number of worker processes can share it.

A job is owned by the worker whose id is in `worker_id` while `status` is running; every write a worker
makes is conditional on that ownership, so a worker that was presumed dead (and whose job was requeued)
can no longer change or finish the job.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, Update, case, func, or_, select, update
from sqlalchemy.orm import Session

from app.core.errors import AtlasError
from app.persistence.db import write_session
from app.persistence.models import Job, JobState, Run, utcnow


class JobLost(RuntimeError):
    """The worker no longer owns the job: it was requeued after a missed heartbeat, or cancelled."""


@dataclass(frozen=True)
class JobSignal:
    """What a running job's worker learns on each heartbeat or progress report."""

    owned: bool
    cancel_requested: bool


#: States of a job an identical request reuses instead of queuing another.
REUSABLE_STATES = (JobState.QUEUED.value, JobState.RUNNING.value, JobState.SUCCEEDED.value)


def params_sha256(params: dict[str, Any]) -> str:
    """Return the SHA-256 of job params as canonical JSON (sorted keys, no spaces)."""
    return hashlib.sha256(json.dumps(params, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def identical_job(session: Session, params: dict[str, Any], kind: str = "dissect") -> Job | None:
    """Return the newest queued, running or succeeded job with exactly these params (and a run, if it succeeded)."""
    candidates = session.scalars(
        select(Job)
        .where(Job.kind == kind, Job.params_sha256 == params_sha256(params), Job.status.in_(REUSABLE_STATES))
        .order_by(Job.id.desc())
    )
    for job in candidates:
        if job.params == params and (job.status != JobState.SUCCEEDED or job.run_id is not None):
            return job
    return None


def enqueue(
    session: Session,
    params: dict[str, Any],
    kind: str = "dissect",
    *,
    owner_id: int | None = None,
    parent_run_id: int | None = None,
    target_model_id: int | None = None,
) -> Job:
    """Add a queued job of `owner_id` to the session's transaction (flushed so it has an id; the caller commits);
    a relabel names its `parent_run_id`, which the run it stores keeps, and a job whose model row exists already
    (an upload's) its `target_model_id`, which the run it stores joins."""
    try:
        json.dumps(params, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise AtlasError(
            f"job parameters must be plain JSON (strings, numbers, lists, dicts): {error}; "
            "pass paths as strings and leave out NaN or infinite numbers"
        ) from None
    job = Job(
        kind=kind,
        params=params,
        status=JobState.QUEUED,
        done=0,
        total=0,
        attempts=0,
        cancel_requested=False,
        owner_id=owner_id,
        params_sha256=params_sha256(params),
        history=[],
        parent_run_id=parent_run_id,
        target_model_id=target_model_id,
    )
    session.add(job)
    session.flush()
    return job


def claim_next(engine: Engine, worker_id: str) -> Job | None:
    """Atomically take the oldest queued job for `worker_id`, or return None when the queue is empty.

    PostgreSQL: `SELECT ... FOR UPDATE SKIP LOCKED`, so racing workers each lock a different row.
    SQLite: the transaction starts with `BEGIN IMMEDIATE`, so claims are serialised by the write lock.
    """
    with write_session(engine) as session:
        query = select(Job).where(Job.status == JobState.QUEUED).order_by(Job.created_at, Job.id).limit(1)
        job = session.scalars(query.with_for_update(skip_locked=True)).first()
        if job is None:
            return None
        now = utcnow()
        job.status = JobState.RUNNING
        job.worker_id = worker_id
        job.attempts += 1
        job.started_at = now
        job.heartbeat_at = now
        job.stage, job.done, job.total, job.error, job.stage_started_at = None, 0, 0, None, None
        return job


def heartbeat(engine: Engine, job_id: int, worker_id: str) -> JobSignal:
    """Record that the worker is alive; tell it whether it still owns the job and whether to cancel."""
    return _touch(engine, job_id, worker_id, {})


def report_progress(engine: Engine, job_id: int, worker_id: str, stage: str, done: int, total: int) -> JobSignal:
    """Record the job's stage and progress (also a heartbeat), and when a new stage started; the answer says
    whether to keep going."""
    stage = stage[:100]
    # The stage's start is kept while its reports come in, so the job page reads that stage's own rate.
    new_stage = or_(Job.stage.is_(None), Job.stage != stage)
    started = case((new_stage, utcnow()), else_=Job.stage_started_at)
    return _touch(
        engine, job_id, worker_id, {"stage": stage, "done": int(done), "total": int(total), "stage_started_at": started}
    )


def _touch(engine: Engine, job_id: int, worker_id: str, values: dict[str, Any]) -> JobSignal:
    with write_session(engine) as session:
        updated = _updated_rows(
            session,
            update(Job)
            .where(Job.id == job_id, Job.status == JobState.RUNNING, Job.worker_id == worker_id)
            .values(heartbeat_at=utcnow(), **values),
        )
        if updated != 1:
            return JobSignal(owned=False, cancel_requested=False)
        cancel = session.scalar(select(Job.cancel_requested).where(Job.id == job_id))
        return JobSignal(owned=True, cancel_requested=bool(cancel))


def requeue_stale(engine: Engine, timeout_s: float, max_attempts: int) -> list[int]:
    """Queue again every running job without a heartbeat for `timeout_s`; return the ids handled.

    A job that already used `max_attempts` attempts fails instead, and a job whose cancellation was
    requested is marked cancelled, both with an error saying what happened.
    """
    cutoff = utcnow() - timedelta(seconds=timeout_s)
    handled = []
    with write_session(engine) as session:
        stale = session.scalars(
            select(Job)
            .where(Job.status == JobState.RUNNING, or_(Job.heartbeat_at < cutoff, Job.heartbeat_at.is_(None)))
            .with_for_update(skip_locked=True)
        ).all()
        for job in stale:
            _expire(job, timeout_s, max_attempts)
            handled.append(job.id)
    return handled


def _expire(job: Job, timeout_s: float, max_attempts: int) -> None:
    silent = f"its worker {job.worker_id} sent no heartbeat for {timeout_s:g} s (killed, or out of memory?)"
    if job.cancel_requested:
        _close(job, JobState.CANCELLED, f"cancelled; {silent}")
    elif job.attempts >= max_attempts:
        _close(
            job,
            JobState.FAILED,
            f"gave up after {job.attempts} attempts: each time {silent}. Look at the worker's log; if it "
            "ran out of memory, lower batch_size or max_images or give the worker more memory, then submit "
            "the job again",
        )
    else:
        _note(job, JobState.QUEUED, f"attempt {job.attempts} of {max_attempts} was interrupted: {silent}; queued again")
        job.status = JobState.QUEUED
        job.worker_id = None


def _note(job: Job, status: str, note: str | None) -> None:
    """Set the job's error to `note` and add the attempt's outcome to its history (kept across requeues)."""
    job.error = note
    entry = {"attempt": job.attempts, "at": utcnow().isoformat(), "worker": job.worker_id, "status": str(status)}
    job.history = [*(job.history or []), {**entry, "note": note}]


def _close(job: Job, status: str, error: str | None = None) -> None:
    _note(job, status, error)
    job.status = status
    job.finished_at = utcnow()


def cancel(engine: Engine, job_id: int) -> Job:
    """Cancel a queued job now, or ask a running one to stop at its next progress report; return it."""
    with write_session(engine) as session:
        job = session.get(Job, job_id, with_for_update=True)
        if job is None:
            raise AtlasError(f"there is no job {job_id}; check the job number on the jobs page")
        if job.status == JobState.QUEUED:
            _close(job, JobState.CANCELLED, "cancelled before it started")
        elif job.status == JobState.RUNNING:
            job.cancel_requested = True
        elif job.status != JobState.CANCELLED:
            raise AtlasError(
                f"job {job_id} already {job.status}, so there is nothing to cancel; "
                "delete its run instead if you do not want it"
            )
        return job


def get_job(engine: Engine, job_id: int) -> Job | None:
    """Return a detached snapshot of one job, or None."""
    with Session(engine, expire_on_commit=False) as session:
        return session.get(Job, job_id)


def succeed_in_session(session: Session, job_id: int, worker_id: str) -> Job:
    """Mark the worker's job succeeded inside the caller's transaction (the one storing its result); return it.

    Raises JobLost when the worker no longer owns the job, which rolls the result back: a job that was requeued
    and picked up elsewhere is therefore stored once.
    """
    job = session.get(Job, job_id, with_for_update=True, populate_existing=True)
    if job is None or job.status != JobState.RUNNING or job.worker_id != worker_id:
        raise JobLost(f"job {job_id} is no longer owned by worker {worker_id}; its result is discarded")
    _close(job, JobState.SUCCEEDED)
    return job


def complete_in_session(session: Session, job_id: int, worker_id: str, run_id: int) -> None:
    """Mark the job succeeded inside the caller's transaction (the one storing its run); the run becomes the job
    owner's, and so does its model when this is the model's first run.

    Raises JobLost when the worker no longer owns the job, which rolls the run back: a job that was
    requeued and picked up elsewhere therefore never gets two runs.
    """
    job = succeed_in_session(session, job_id, worker_id)
    job.run_id = run_id
    run = session.get(Run, run_id)
    if run is not None and job.parent_run_id is not None:
        run.parent_run_id = job.parent_run_id
    if run is not None and job.owner_id is not None:
        run.owner_id = job.owner_id
        model = run.model
        first_run = session.scalar(select(func.count(Run.id)).where(Run.model_id == model.id)) == 1
        if model.owner_id is None and first_run:
            model.owner_id = job.owner_id


def finish(engine: Engine, job_id: int, worker_id: str, run_id: int | None) -> bool:
    """Mark the worker's job succeeded with its run; True if it did (or `complete_in_session` already had)."""
    if _owned_update(engine, job_id, worker_id, JobState.SUCCEEDED, None, run_id=run_id):
        return True
    job = get_job(engine, job_id)
    return job is not None and job.status == JobState.SUCCEEDED and job.worker_id == worker_id and job.run_id == run_id


def fail(engine: Engine, job_id: int, worker_id: str, error: str) -> bool:
    """Mark the worker's job failed with an error message for the user; False if it was not its job."""
    return _owned_update(engine, job_id, worker_id, JobState.FAILED, error)


def mark_cancelled(engine: Engine, job_id: int, worker_id: str) -> bool:
    """Mark the worker's job cancelled after it stopped on request; False if it was not its job."""
    return _owned_update(engine, job_id, worker_id, JobState.CANCELLED, "cancelled while running")


def release(engine: Engine, job_id: int, worker_id: str) -> bool:
    """Give the worker's job back to the queue (worker shutting down); the attempt is not counted.

    A job whose cancellation was requested meanwhile is marked cancelled instead.
    """
    with write_session(engine) as session:
        job = session.get(Job, job_id, with_for_update=True)
        if job is None or job.status != JobState.RUNNING or job.worker_id != worker_id:
            return False
        if job.cancel_requested:
            _close(job, JobState.CANCELLED, "cancelled while running")
            return True
        _note(job, JobState.QUEUED, f"worker {worker_id} shut down while running it; queued again")
        job.status = JobState.QUEUED
        job.worker_id = None
        job.attempts -= 1
        return True


def _owned_update(
    engine: Engine, job_id: int, worker_id: str, status: JobState, note: str | None, run_id: int | None = None
) -> bool:
    """Close the worker's job with `status` and `note` (and its run); return False when it is not the worker's."""
    with write_session(engine) as session:
        job = session.get(Job, job_id, with_for_update=True, populate_existing=True)
        if job is None or job.status != JobState.RUNNING or job.worker_id != worker_id:
            return False
        _close(job, status, note)
        if run_id is not None:
            job.run_id = run_id
        return True


def _updated_rows(session: Session, statement: Update) -> int:
    """Run an UPDATE in the session's transaction; return how many rows it changed."""
    return cast(CursorResult[Any], session.execute(statement)).rowcount
