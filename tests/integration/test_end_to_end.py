"""The whole product path with nothing faked: queue a dissection, a worker runs the real pipeline and stores it,
the server shows the run, its neurons, their crops and heatmaps, and scores a typed concept from the artifacts."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.jobs.dissections import submit_dissection
from app.jobs.queue.worker import run_worker
from app.persistence.db import create_db_engine, write_session
from app.persistence.models import Job
from app.web.main import create_app
from dissect_core.config import DissectConfig
from tests.conftest import TINY_CLIP
from tests.support.dashboard_seed import prepare_database

pytestmark = pytest.mark.usefixtures("tiny_clip")


def test_queued_dissection_is_run_by_a_worker_and_served(probe_folder, concept_file, tmp_path):
    settings, engine = prepare_database(tmp_path / "data")
    config = DissectConfig(
        model="resnet18", weights="none", layers=("layer4", "fc"), probe=str(probe_folder),
        concepts=str(concept_file), encoder=TINY_CLIP, similarity_params={"top_k": 4},
    )  # fmt: skip
    with write_session(engine) as session:
        job_id = submit_dissection(session, config)

    assert run_worker(settings, once=True, handle_signals=False) == 1

    with Session(create_db_engine(settings.database_url)) as session:
        job = session.scalars(select(Job).where(Job.id == job_id)).one()
        assert (job.status, job.error) == ("succeeded", None)
        run_id = job.run_id
    client = TestClient(create_app(settings))
    layers = client.get(f"/api/v1/runs/{run_id}/layers").json()["items"]
    assert [layer["name"] for layer in layers] == ["layer4", "fc"]
    neurons = client.get(f"/api/v1/runs/{run_id}/layers/layer4/neurons?limit=5&sort=-score").json()
    assert neurons["total"] == 512 and len(neurons["items"]) == 5
    first = neurons["items"][0]
    assert first["label"] in {"cat", "dog", "striped", "car", "sky"}
    neuron = client.get(f"/api/v1/runs/{run_id}/layers/layer4/neurons/{first['unit']}").json()
    assert len(neuron["top_images"]) == 20  # the default n_top_images; crops and heatmaps cut on request
    for image in neuron["top_images"]:
        for key in ("crop_url", "view_url", "heatmap_url"):
            media = client.get(image[key])
            assert media.status_code == 200 and "immutable" in media.headers["cache-control"]
    page = client.get(f"/runs/{run_id}/layers/layer4/neurons/{first['unit']}")
    assert page.status_code == 200 and first["label"] in page.text
    ranked = client.get(f"/api/v1/runs/{run_id}/layers/fc/concepts", params={"q": "striped"}).json()
    assert ranked["n_units"] == 1000 and len(ranked["items"]) > 0
    # A label word typed as a concept scores what it scored as the label: its term is counted once.
    typed = client.get(
        f"/api/v1/runs/{run_id}/layers/layer4/neurons/{first['unit']}/concept", params={"q": first["label"]}
    ).json()
    assert typed["score"] == pytest.approx(first["score"], abs=1e-4) and typed["rank"] == 1
