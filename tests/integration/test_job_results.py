"""Every job kind links its result once it succeeded (#26): a dissection its run, an intervention its page, a sweep
its layer's table, an uploaded image its reading; in the job view, its API schema and on the job page."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from app.jobs.queue import jobs as queue
from app.persistence.db import write_session
from app.persistence.models import Intervention, Job, JobState, RunImage, UnitSweep
from tests.support.dashboard_seed import Dashboard

HX = {"HX-Request": "true"}


def finished_job(dashboard: Dashboard, kind: str, params: dict[str, Any], status: JobState, **row: Any) -> int:
    """Add a job of `kind` that ended in `status` (with `run_id` when given); return its id."""
    with write_session(dashboard.engine) as session:
        job_id = queue.enqueue(session, params, kind).id
        session.execute(update(Job).where(Job.id == job_id).values(status=status.value, **row))
    return job_id


def add_result_row(dashboard: Dashboard, row: Any) -> int:
    with write_session(dashboard.engine) as session:
        session.add(row)
        session.flush()
        return int(row.id)


@pytest.fixture(scope="module")
def results(dashboard: Dashboard) -> dict[str, tuple[int, str]]:
    """A succeeded job of every kind with its result row, by kind: (job id, the expected result URL)."""
    run_id = dashboard.newer.run_id
    dissect = finished_job(
        dashboard, "dissect", {"model": "tinynet", "layers": ["fc"]}, JobState.SUCCEEDED, run_id=run_id
    )
    params = {"run_id": run_id, "layer": "fc", "units": [1]}
    intervention = finished_job(dashboard, "intervention", params, JobState.SUCCEEDED)
    intervention_id = add_result_row(
        dashboard,
        Intervention(run_id=run_id, layer="fc", units=[1], mode="zero", params_sha256="0" * 64, job_id=intervention),
    )
    sweep = finished_job(dashboard, "sweep", params, JobState.SUCCEEDED)
    for unit in (1, 2):  # one row per swept unit, one link for the sweep
        add_result_row(
            dashboard,
            UnitSweep(
                run_id=run_id, layer="fc", unit=unit, label="dog", label_effect_cosine=0.1, label_effect_z=1.0,
                label_effect_p=0.5, top_classes=[0], predictions_changed=0.0, n_images=4, sweep_seconds=1.0,
                job_id=sweep,
            ),
        )  # fmt: skip
    image = finished_job(dashboard, "image", {"run_id": run_id, "sha256": "1" * 64}, JobState.SUCCEEDED)
    image_id = add_result_row(
        dashboard, RunImage(run_id=run_id, file="x.png", sha256="1" * 64, width=4, height=4, job_id=image)
    )
    return {
        "dissect": (dissect, f"/runs/{run_id}"),
        "intervention": (intervention, f"/interventions/{intervention_id}"),
        "sweep": (sweep, f"/runs/{run_id}/layers/fc/sweep"),
        "image": (image, f"/runs/{run_id}/uploads/{image_id}"),
    }


@pytest.mark.parametrize("kind", ["dissect", "intervention", "sweep", "image"])
def test_a_succeeded_job_of_every_kind_links_its_result(
    client: TestClient, results: dict[str, tuple[int, str]], kind: str
) -> None:
    job_id, url = results[kind]
    assert client.get(f"/api/v1/jobs/{job_id}").json()["result_url"] == url
    listed = {job["id"]: job["result_url"] for job in client.get("/api/v1/jobs", params={"limit": 100}).json()["items"]}
    assert listed[job_id] == url
    fragment = client.get(f"/jobs/{job_id}", headers=HX).text
    assert f'id="job-result" href="{url}"' in fragment
    assert ("Open run #" in fragment) is (kind == "dissect")


def test_a_job_that_failed_links_no_result(client: TestClient, dashboard: Dashboard) -> None:
    failed = finished_job(dashboard, "sweep", {"run_id": dashboard.newer.run_id, "layer": "fc"}, JobState.FAILED)
    assert client.get(f"/api/v1/jobs/{failed}").json()["result_url"] is None
    assert 'id="job-result"' not in client.get(f"/jobs/{failed}", headers=HX).text


def test_the_api_schema_names_the_result_url(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()["components"]["schemas"]["JobView"]["properties"]
    assert "result_url" in schema
