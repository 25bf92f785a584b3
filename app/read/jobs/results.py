"""Where each job's result is shown once it succeeded, for every job kind, found from what the job left: an
intervention's page, an uploaded image's reading, a sweep's layer table (their rows name the job), else a
dissection's run."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.urls import intervention_url, layer_sweep_url, run_image_url, run_url
from app.persistence.models import Intervention, Job, JobState, RunImage, UnitSweep


def result_urls(session: Session, jobs: Sequence[Job]) -> dict[int, str]:
    """Return the path of each succeeded job's result by job id (a job whose result is gone has none), in one query
    per kind of result row."""
    succeeded = [job.id for job in jobs if job.status == JobState.SUCCEEDED.value]
    if not succeeded:
        return {}
    urls: dict[int, str] = {}
    interventions = select(Intervention.job_id, Intervention.id).where(Intervention.job_id.in_(succeeded))
    urls.update({job_id: intervention_url(row_id) for job_id, row_id in session.execute(interventions) if job_id})
    images = select(RunImage.job_id, RunImage.run_id, RunImage.id).where(RunImage.job_id.in_(succeeded))
    urls.update({job_id: run_image_url(run_id, row_id) for job_id, run_id, row_id in session.execute(images) if job_id})
    sweeps = select(UnitSweep.job_id, UnitSweep.run_id, UnitSweep.layer).where(UnitSweep.job_id.in_(succeeded))
    urls.update(
        {
            job_id: layer_sweep_url(run_id, layer)
            for job_id, run_id, layer in session.execute(sweeps.distinct())
            if job_id
        }
    )
    for job in jobs:
        if job.id in succeeded and job.id not in urls and job.run_id is not None:
            urls[job.id] = run_url(job.run_id)  # a dissection (or a relabelling): the run it stored
    return urls
