"""Job pages: live progress (htmx polls the fragment every second) and cancelling."""

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from app.core.urls import job_url
from app.jobs import queue
from app.read import queries
from app.web.htmx import JOB_FINISHED, is_htmx, trigger, vary_on_htmx


def make_jobs_router(
    *, get_session: Callable[[], Iterator[Session]], engine: Engine, templates: Jinja2Templates
) -> APIRouter:
    """Return the router of the job pages."""
    router = APIRouter(include_in_schema=False)
    SessionDep = Annotated[Session, Depends(get_session)]

    @router.get("/jobs/{job_id}", response_class=HTMLResponse)
    def job_page(request: Request, job_id: int, session: SessionDep) -> Response:
        """A job's status and progress; htmx gets the progress fragment, which stops polling once finished."""
        job = queries.get_job(session, job_id)
        context = {"title": f"job {job_id}", "job": job}
        if not is_htmx(request):
            return vary_on_htmx(templates.TemplateResponse(request, "job.html", context))
        response = templates.TemplateResponse(request, "partials/job_progress.html", context)
        return vary_on_htmx(trigger(response, JOB_FINISHED) if job.finished else response)

    @router.post("/jobs/{job_id}/cancel")
    def cancel_job(job_id: int) -> Response:
        """Cancel a queued job, or ask a running one to stop; back to the job page."""
        queue.cancel(engine, job_id)
        return RedirectResponse(job_url(job_id), status_code=303)

    return router
