"""The job page's clock (#26): elapsed time, the stage k of n, the stage's ETA from its own rate, the settings, the
duration after success with the run's link, and the stage's start kept across its reports."""

from __future__ import annotations

import re
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session

from app.jobs.queue import jobs as queue
from app.persistence.db import write_session
from app.persistence.models import Job, utcnow
from app.read.jobs.timing import DISSECTION_JOB_STAGES
from tests.support.dashboard_seed import Dashboard

HX = {"HX-Request": "true"}


def visible_text(html: str) -> str:
    """Return the page's text as a reader sees it: tags dropped, runs of white space as one space."""
    return " ".join(re.sub(r"<[^>]+>", "", html).split())


def running_job(dashboard: Dashboard, probe: str) -> int:
    """Queue a job and claim it for "test-worker" (cancelling any job queued before it); return its id."""
    with write_session(dashboard.engine) as session:
        job_id = queue.enqueue(session, {"model": "tinynet", "layers": ["fc"], "probe": probe, "top_k": 5}).id
    claimed = queue.claim_next(dashboard.engine, "test-worker")
    while claimed is not None and claimed.id != job_id:
        queue.cancel(dashboard.engine, claimed.id)
        claimed = queue.claim_next(dashboard.engine, "test-worker")
    assert claimed is not None
    return job_id


def shift_clock(dashboard: Dashboard, job_id: int, *, started_s: float, stage_started_s: float) -> None:
    """Move the job's start and its stage's start back by the given seconds."""
    now = utcnow()
    with write_session(dashboard.engine) as session:
        session.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(
                started_at=now - timedelta(seconds=started_s), stage_started_at=now - timedelta(seconds=stage_started_s)
            )
        )


def test_a_stage_keeps_its_start_until_the_next_stage_reports(dashboard: Dashboard) -> None:
    job_id = running_job(dashboard, "stage-start")
    queue.report_progress(dashboard.engine, job_id, "test-worker", "probe pass", 0, 12)
    shift_clock(dashboard, job_id, started_s=100, stage_started_s=60)
    queue.report_progress(dashboard.engine, job_id, "test-worker", "probe pass", 3, 12)
    with Session(dashboard.engine) as session:
        kept = session.get(Job, job_id)
        assert kept is not None and kept.stage_started_at is not None
        assert (utcnow() - kept.stage_started_at.replace(tzinfo=utcnow().tzinfo)).total_seconds() > 59
    queue.report_progress(dashboard.engine, job_id, "test-worker", "similarity", 0, 2)
    with Session(dashboard.engine) as session:
        moved = session.get(Job, job_id)
        assert moved is not None and moved.stage_started_at is not None
        assert (utcnow() - moved.stage_started_at.replace(tzinfo=utcnow().tzinfo)).total_seconds() < 30


def test_a_running_job_shows_elapsed_time_stage_k_of_n_eta_and_settings(
    client: TestClient, dashboard: Dashboard
) -> None:
    job_id = running_job(dashboard, "clock")
    queue.report_progress(dashboard.engine, job_id, "test-worker", "probe pass", 3, 12)
    shift_clock(dashboard, job_id, started_s=125, stage_started_s=30)  # 10 s a batch: 9 batches, 90 s, to go
    api = client.get(f"/api/v1/jobs/{job_id}").json()
    assert api["stage_number"] == DISSECTION_JOB_STAGES.index("probe pass") + 1 == 3
    assert api["n_stages"] == len(DISSECTION_JOB_STAGES)
    assert 124 <= api["elapsed_s"] < 160 and 89 <= api["eta_s"] < 120
    assert api["settings"]["top_k"] == 5 and api["settings"]["layers"] == ["fc"]
    fragment = visible_text(client.get(f"/jobs/{job_id}", headers=HX).text)
    assert re.search(
        rf"probe pass stage 3 of {len(DISSECTION_JOB_STAGES)} · running for 2 min 0[5-9] s · about 1 min 3\d s left",
        fragment,
    ), fragment
    page = client.get(f"/jobs/{job_id}").text
    assert 'id="job-settings"' in page and "top_k" in visible_text(page)
    queue.finish(dashboard.engine, job_id, "test-worker", dashboard.newer.run_id)
    done = client.get(f"/jobs/{job_id}", headers=HX)
    text = visible_text(done.text)
    assert re.search(r"took 2 min \d\d s", text) and "left in this stage" not in text and "stage 3 of" not in text
    assert f'href="/runs/{dashboard.newer.run_id}"' in done.text
    assert client.get(f"/api/v1/jobs/{job_id}").json()["eta_s"] is None


def test_a_stage_without_a_done_step_has_no_eta_and_a_queued_job_no_clock(
    client: TestClient, dashboard: Dashboard
) -> None:
    job_id = running_job(dashboard, "no-eta")
    queue.report_progress(dashboard.engine, job_id, "test-worker", "embed concepts", 0, 1)
    api = client.get(f"/api/v1/jobs/{job_id}").json()
    assert api["eta_s"] is None and api["stage_number"] == 2 and api["elapsed_s"] is not None
    queue.report_progress(dashboard.engine, job_id, "test-worker", "sweep", 1, 4)  # no dissection stage
    assert client.get(f"/api/v1/jobs/{job_id}").json()["stage_number"] is None
    queue.finish(dashboard.engine, job_id, "test-worker", dashboard.newer.run_id)
    with write_session(dashboard.engine) as session:
        queued = queue.enqueue(session, {"model": "tinynet", "layers": ["fc"], "probe": "later"}).id
    waiting = client.get(f"/api/v1/jobs/{queued}").json()
    assert waiting["elapsed_s"] is None and waiting["eta_s"] is None
    assert "waiting for a worker" in visible_text(client.get(f"/jobs/{queued}", headers=HX).text)
    queue.cancel(dashboard.engine, queued)
