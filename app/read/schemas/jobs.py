"""Read models of jobs: one job as pages show it, and the answer to queuing one."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from app.read.schemas.runs import UtcDatetime


class JobView(BaseModel):
    """A queued dissection and its progress."""

    id: int
    kind: str
    status: str
    stage: str | None
    done: int
    total: int
    fraction: float | None
    error: str | None
    cancel_requested: bool
    run_id: int | None
    model: str | None
    layers: list[str]
    created_at: UtcDatetime
    started_at: UtcDatetime | None
    finished_at: UtcDatetime | None
    finished: bool
    #: Who queued it; None for jobs queued from the command line.
    owner: str | None = None
    #: What each attempt came to, oldest first: {"attempt", "at", "worker", "status", "note"}.
    history: list[dict[str, Any]] = []
    #: The job's settings as queued, server paths shown by their public names.
    settings: dict[str, Any] = {}
    #: Seconds since the current attempt started; once finished, how long it took (None before it started).
    elapsed_s: float | None = None
    #: The current stage's place among the stages a dissection job runs (None for other stages, or once finished).
    stage_number: int | None = None
    n_stages: int | None = None
    #: Seconds the current stage has left at its own rate so far (None until one of its steps is done).
    eta_s: float | None = None
    #: Where the job's result is shown once it succeeded, for every kind: a dissection's run, an intervention's
    #: page, a sweep's layer table, an uploaded image's reading (None before, on failure, or once it is deleted).
    result_url: str | None = None


class JobCreated(BaseModel):
    """The answer to a submission: the job's id and where to watch it."""

    job_id: int
    job_url: str
    api_url: str
