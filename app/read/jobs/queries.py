"""The job queue as pages and the API show it: one job, and the newest jobs."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload

from app.core.errors import NotFound
from app.core.redact import redact_paths, redact_settings, redact_value
from app.persistence.models import (
    FINISHED_STATES,
    Job,
    utcnow,
)
from app.read.catalogue.sets import public_names
from app.read.jobs.results import result_urls
from app.read.jobs.timing import job_timing
from app.read.schemas.jobs import JobView


def job_view(job: Job, names: Mapping[str, str], result_url: str | None = None) -> JobView:
    """Return the view of a job row: its model by name, its settings and error without server paths (`names`' by
    name), its timing now and where its result is shown (`result_urls`)."""
    params = job.params or {}
    layers = params.get("layers") or []
    timing = job_timing(job, utcnow())
    return JobView(
        id=job.id,
        kind=job.kind,
        status=job.status,
        stage=job.stage,
        done=job.done,
        total=job.total,
        fraction=min(1.0, job.done / job.total) if job.total else None,
        error=redact_paths(job.error, names) if job.error else None,
        cancel_requested=job.cancel_requested,
        run_id=job.run_id,
        model=redact_value(params.get("model_name") or params.get("model"), names),
        layers=[str(layer) for layer in layers] if isinstance(layers, list) else [str(layers)],
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        finished=job.status in FINISHED_STATES,
        owner=job.owner.name if job.owner is not None else None,
        history=[
            {
                **{key: value for key, value in entry.items() if key != "worker"},  # worker ids name server hosts
                "note": redact_paths(entry["note"], names) if entry.get("note") else None,
            }
            for entry in job.history or []
            if isinstance(entry, dict)
        ],
        settings=redact_settings(params, names),
        elapsed_s=timing.elapsed_s,
        stage_number=timing.stage_number,
        n_stages=timing.n_stages,
        eta_s=timing.eta_s,
        result_url=result_url,
    )


def list_jobs(session: Session, *, limit: int = 50, offset: int = 0) -> list[JobView]:
    """Return the newest jobs first, from the `offset`-th."""
    query = select(Job).options(joinedload(Job.owner)).order_by(Job.created_at.desc(), Job.id.desc())
    jobs = session.scalars(query.offset(offset).limit(limit)).all()
    names = public_names(session)  # the settings name catalogued folders and files by their names
    results = result_urls(session, jobs)
    return [job_view(job, names, results.get(job.id)) for job in jobs]


def count_jobs(session: Session) -> int:
    """Return how many jobs there are."""
    return session.scalar(select(func.count(Job.id))) or 0


def get_job(session: Session, job_id: int) -> JobView:
    """Return one job, or raise NotFound."""
    job = session.get(Job, job_id)
    if job is None:
        raise NotFound(f"There is no job {job_id}; the jobs are listed on the home page, /.")
    return job_view(job, public_names(session), result_urls(session, [job]).get(job.id))
