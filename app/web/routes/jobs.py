"""Jobs: the newest jobs, one job's live progress (htmx polls its fragment every second), and cancelling."""

from __future__ import annotations

from fastapi import APIRouter, Request

from app.auth.permissions import can_change, require_owner
from app.core.urls import API_PREFIX, job_url
from app.jobs.queue import jobs as queue
from app.persistence.models import Job
from app.read.jobs import queries as job_queries
from app.read.schemas.common import ListPage
from app.read.schemas.jobs import JobView
from app.web.deps import CurrentUserDep, EditorDep, EngineDep, SessionDep
from app.web.errors import API_ERRORS
from app.web.resources import Page, Redirect, resource
from app.web.views.htmx import JOB_FINISHED
from app.web.views.paging import Id, Limit, Offset, linked

router = APIRouter(tags=["jobs"], responses=API_ERRORS)


@router.get(API_PREFIX + "/jobs")
def jobs(request: Request, session: SessionDep, offset: Offset = 0, limit: Limit = 50) -> ListPage[JobView]:
    """The newest jobs first, a page at a time (`next` links the following page)."""
    items = job_queries.list_jobs(session, limit=limit, offset=offset)
    page = ListPage[JobView](items=items, total=job_queries.count_jobs(session), offset=offset, limit=limit)
    return linked(page, request)


def job_page(job: JobView, session: SessionDep, user: CurrentUserDep) -> dict[str, object]:
    """Return the context of job.html and of its progress fragment; the cancel button shows to its owner or an
    admin only."""
    row = session.get(Job, job.id)
    may_cancel = can_change(user, row.owner if row is not None else None)
    return {"title": f"job {job.id}", "job": job, "may_cancel": may_cancel}


def finished_event(job: JobView) -> str | None:
    """Return the event sent with a finished job's last fragment (which also stops the polling)."""
    return JOB_FINISHED if job.finished else None


@resource(
    router,
    "/jobs/{job_id}",
    html=Page("job.html", context=job_page, fragment="partials/job_progress.html", fragment_event=finished_event),
)
def job(job_id: Id, session: SessionDep) -> JobView:
    """One job's status and progress."""
    return job_queries.get_job(session, job_id)


@resource(router, "/jobs/{job_id}/cancel", method="POST", html=Redirect(lambda cancelled: job_url(cancelled.id)))
def cancel_job(job_id: Id, session: SessionDep, engine: EngineDep, user: EditorDep) -> JobView:
    """Cancel a queued job, or ask a running one to stop at its next progress report (its owner or an admin)."""
    job_queries.get_job(session, job_id)
    job = session.get(Job, job_id)
    require_owner(user, job.owner if job is not None else None, f"Job {job_id}", "cancel it")
    session.rollback()  # end the read snapshot, so the re-read below sees the cancellation
    queue.cancel(engine, job_id)
    return job_queries.get_job(session, job_id)
