"""Interventions (#23) through the real server and worker on SQLite: a real dissection of a small random ResNet is
stored once; editors ask for interventions and sweeps, the worker runs them on the run's model and probe images,
and the API and pages show the results. The library's tests cover the maths (tests/unit/interventions)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from app.cli.main import main as cli
from app.core.config import Settings
from app.jobs.dissections import submit_dissection
from app.jobs.queue import jobs as queue
from app.jobs.queue.worker import run_worker
from app.persistence.db import create_db_engine, upgrade_database, write_session
from app.persistence.models import Intervention, Job, Run, UnitSweep, utcnow
from app.web.main import create_app
from dissect_core.config import DissectConfig
from dissect_core.run_record import RunRecord
from tests.conftest import TINY_CLIP, make_probe_folder
from tests.support.dashboard_seed import TEST_HOSTS, add_account

pytestmark = pytest.mark.usefixtures("tiny_clip")
HX = {"HX-Request": "true"}
#: The classes the stored run's record names: the probe folders' labels first, so the images have classes.
CLASS_NAMES = ("dots", "stripes", *(f"thing {index}" for index in range(2, 1000)))


@dataclass
class Atlas:
    """A stored dissection of a random ResNet-18 (layer3, layer4, fc) and accounts to use it with."""

    settings: Settings
    engine: Engine
    run_id: int
    tokens: dict[str, str]

    def client(self, name: str | None = "erin") -> TestClient:
        """Return a client on a new app, with `name`'s bearer token (anonymous for None)."""
        headers = {"Authorization": f"Bearer {self.tokens[name]}"} if name else {}
        return TestClient(create_app(self.settings), headers=headers)

    def counts(self) -> tuple[int, int]:
        """Return how many interventions and jobs are stored."""
        with Session(self.engine) as session:
            interventions = session.scalar(select(func.count()).select_from(Intervention)) or 0
            jobs = session.scalar(select(func.count()).select_from(Job)) or 0
        return interventions, jobs

    def work_once(self) -> int:
        """Run the worker for one job; return how many it ran."""
        return run_worker(self.settings, once=True, handle_signals=False)


@pytest.fixture(scope="module")
def atlas(tmp_path_factory: pytest.TempPathFactory, tiny_clip: str) -> Iterator[Atlas]:
    root = tmp_path_factory.mktemp("interventions")
    settings = Settings.for_data_dir(
        root / "data", allowed_hosts=TEST_HOSTS, preload_runs=0, heartbeat_interval_s=0.2, stale_timeout_s=1.5
    )
    settings.ensure_dirs()
    upgrade_database(settings)
    engine = create_db_engine(settings.database_url)
    concepts = root / "concepts.txt"
    concepts.write_text("dots\nstripes\ncat\ndog\nsky\n")
    config = DissectConfig(
        model="resnet18", weights="none", layers=("layer3", "layer4", "fc"),
        probe=str(make_probe_folder(root / "probe")), concepts=str(concepts), encoder=TINY_CLIP,
        similarity_params={"top_k": 4}, n_folds=0, preprocessing={"resize": 64, "crop": 64},
    )  # fmt: skip
    with write_session(engine) as session:
        job_id = submit_dissection(session, config)
    assert run_worker(settings, once=True, handle_signals=False) == 1
    with write_session(engine) as session:
        run = session.get(Run, session.get(Job, job_id).run_id)
        record = RunRecord.from_json(run.settings)  # random weights name no classes: give the run some
        run.settings = replace(record, identities=replace(record.identities, class_names=CLASS_NAMES)).to_json()
        run_id = run.id
    tokens = {name: add_account(engine, name, role) for name, role in (("erin", "editor"), ("vic", "viewer"))}
    tokens["admin"] = add_account(engine, "ada", "admin")
    yield Atlas(settings, engine, run_id, tokens)
    engine.dispose()


def ask(atlas: Atlas, body: Any, name: str | None = "erin", **options: Any) -> Any:
    """POST an intervention request (a dict as JSON, a string as the raw body); return the answer."""
    client = atlas.client(name)
    url = f"/api/v1/runs/{atlas.run_id}/interventions"
    if isinstance(body, str):
        return client.post(url, content=body, headers={"Content-Type": "application/json"}, **options)
    return client.post(url, json=body, **options)


def test_an_ablation_is_queued_run_by_the_worker_and_served(atlas: Atlas) -> None:
    created = ask(atlas, {"layer": "layer4", "units": [5], "mode": "zero"})
    assert created.status_code == 202, created.text
    body = created.json()
    assert set(body) == {"id", "job_id", "url"} and body["url"] == f"/interventions/{body['id']}"
    queued = atlas.client(None).get(f"/api/v1/interventions/{body['id']}").json()
    assert queued["status"] == "queued" and queued["classes"] is None and queued["label_effect_agreement"] is None

    assert atlas.work_once() == 1
    result = atlas.client(None).get(f"/api/v1/interventions/{body['id']}").json()
    assert (result["status"], result["run_id"], result["layer"], result["units"]) == (
        "succeeded",
        atlas.run_id,
        "layer4",
        [5],
    )
    assert (result["mode"], result["factor"], result["n_images"]) == ("zero", None, 24)
    classes = result["classes"]
    assert len(classes) == 1000 and set(classes[0]) == {
        "class_index", "class_name", "mean_delta_logit", "mean_delta_probability",
    }  # fmt: skip
    deltas = [effect["mean_delta_logit"] for effect in classes]
    assert deltas == sorted(deltas) and classes[0]["class_name"] == CLASS_NAMES[classes[0]["class_index"]]
    assert 0.0 <= result["predictions_changed"] <= 1.0
    assert result["accuracy_before"] is not None and result["accuracy_after"] is not None  # labels name classes
    downstream = result["downstream"]
    assert downstream and {unit["layer"] for unit in downstream} == {"fc"}
    assert set(downstream[0]) >= {"layer", "unit", "label", "mean_delta_activation"} and downstream[0]["label"]
    agreement = result["label_effect_agreement"]
    assert set(agreement) >= {"cosine", "z", "p_value"} and 0.0 < agreement["p_value"] <= 1.0

    page = atlas.client(None).get(body["url"])
    assert page.status_code == 200 and "Classes most hurt" in page.text and 'id="downstream"' in page.text
    assert 'hx-trigger="every 1s"' not in page.text  # finished: no polling


def test_an_identical_request_reuses_the_result_and_another_factor_does_not(atlas: Atlas) -> None:
    first = ask(atlas, {"layer": "layer4", "units": [7, 3, 7], "mode": "scale", "factor": 2}).json()
    again = ask(atlas, {"layer": "layer4", "units": [3, 7], "mode": "scale", "factor": 2.0}).json()
    assert again == first
    other = ask(atlas, {"layer": "layer4", "units": [3, 7], "mode": "scale", "factor": 0.5}).json()
    assert other["id"] != first["id"]
    with Session(atlas.engine) as session:
        for job_id in (first["job_id"], other["job_id"]):
            queue.cancel(atlas.engine, job_id)
        assert session.get(Job, first["job_id"]).kind == "intervention"
    assert atlas.client().get(first["url"].replace("/interventions", "/api/v1/interventions")).json()["status"] == (
        "cancelled"
    )
    assert ask(atlas, {"layer": "layer4", "units": [3, 7], "mode": "scale", "factor": 2}).json()["id"] != first["id"]
    queue.cancel(
        atlas.engine, ask(atlas, {"layer": "layer4", "units": [3, 7], "mode": "scale", "factor": 2}).json()["job_id"]
    )


def test_a_no_op_intervention_reproduces_the_recorded_outputs(atlas: Atlas) -> None:
    created = ask(atlas, {"layer": "layer3", "units": [0], "mode": "scale", "factor": 1}).json()
    assert atlas.work_once() == 1
    result = atlas.client().get(f"/api/v1/interventions/{created['id']}").json()
    # Same model, images, preprocessing and batches as the probe pass: only the stored float16 rounding remains.
    assert max(abs(effect["mean_delta_logit"]) for effect in result["classes"]) < 1e-2
    assert result["predictions_changed"] == 0.0 and result["accuracy_before"] == result["accuracy_after"]
    assert result["label_effect_agreement"] is None  # amplifying or keeping a unit is no test of its label


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"layer": "layer9", "units": [1], "mode": "zero"}, "layer3, layer4, fc"),
        ({"layer": "layer4", "units": [512], "mode": "zero"}, "0..511"),
        ({"layer": "layer4", "units": [-1], "mode": "zero"}, "0..511"),
        ({"layer": "layer4", "units": [1], "mode": "scale", "factor": 1e30}, "|factor| <= 1000"),
        ({"layer": "layer4", "units": [1], "mode": "scale", "factor": "NaN"}, "factor"),
        ('{"layer": "layer4", "units": [1], "mode": "scale", "factor": NaN}', "factor"),
        ({"layer": "layer4", "units": list(range(10_000)), "mode": "zero"}, "256"),
        ({"layer": "layer4", "units": [1], "mode": "ablate"}, "zero, mean, scale"),
        ({"layer": "layer4", "units": [1], "mode": "zero", "factor": 2}, "scale"),
        ({"layer": "layer4", "units": [], "mode": "zero"}, "0..511"),
    ],
)
def test_hostile_requests_get_422_naming_the_fix_and_store_nothing(atlas: Atlas, body: Any, named: str) -> None:
    before = atlas.counts()
    answer = ask(atlas, body)
    assert answer.status_code == 422, answer.text
    assert named in str(answer.json()), answer.json()
    assert atlas.counts() == before


def test_anonymous_gets_401_and_a_viewer_403_and_nothing_is_stored(atlas: Atlas) -> None:
    before = atlas.counts()
    body = {"layer": "layer4", "units": [1], "mode": "zero"}
    assert ask(atlas, body, name=None).status_code == 401
    assert ask(atlas, body, name="vic").status_code == 403
    sweep = atlas.client("vic").post(f"/api/v1/runs/{atlas.run_id}/sweeps", json={"layer": "layer4"})
    assert sweep.status_code == 403
    assert atlas.counts() == before


def test_a_killed_workers_intervention_is_requeued_and_runs_once(atlas: Atlas) -> None:
    created = ask(atlas, {"layer": "layer4", "units": [9], "mode": "mean"}).json()
    claimed = queue.claim_next(atlas.engine, "dead-host:1:abc")  # the worker that took it was killed …
    assert claimed is not None and claimed.id == created["job_id"]
    with write_session(atlas.engine) as session:  # … and sent no heartbeat since
        stale = utcnow() - timedelta(seconds=60)
        session.execute(update(Job).where(Job.id == claimed.id).values(heartbeat_at=stale))
    assert atlas.work_once() == 1  # requeues it, then runs it
    job = queue.get_job(atlas.engine, created["job_id"])
    assert (job.status, job.attempts) == ("succeeded", 2)
    assert "interrupted" in job.history[0]["note"]
    result = atlas.client().get(f"/api/v1/interventions/{created['id']}").json()
    assert result["status"] == "succeeded" and result["n_images"] == 24
    assert queue.finish(atlas.engine, job.id, "dead-host:1:abc", None) is False  # the dead worker cannot finish it


def test_a_queued_intervention_is_cancelled_and_never_runs(atlas: Atlas) -> None:
    created = ask(atlas, {"layer": "layer4", "units": [11], "mode": "zero"}).json()
    cancelled = atlas.client().post(f"/api/v1/jobs/{created['job_id']}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert atlas.work_once() == 0
    assert atlas.client().get(f"/api/v1/interventions/{created['id']}").json()["status"] == "cancelled"


def test_a_running_intervention_stops_when_cancelled(atlas: Atlas, monkeypatch: pytest.MonkeyPatch) -> None:
    import app.jobs.interventions as interventions
    import app.jobs.queue.worker as worker

    # Every progress report reaches the database, so the one after the cancel is seen however fast the job runs.
    monkeypatch.setattr(worker, "PROGRESS_WRITE_INTERVAL_S", 0.0)
    created = ask(atlas, {"layer": "layer4", "units": [12], "mode": "zero"}).json()
    real = interventions.compute_intervention

    def cancel_then_run(*args: Any, **kwargs: Any) -> Any:
        queue.cancel(atlas.engine, created["job_id"])  # while running: the next progress report stops it
        return real(*args, **kwargs)

    monkeypatch.setattr(interventions, "compute_intervention", cancel_then_run)
    assert atlas.work_once() == 1
    assert queue.get_job(atlas.engine, created["job_id"]).status == "cancelled"
    result = atlas.client().get(f"/api/v1/interventions/{created['id']}").json()
    assert (result["status"], result["classes"]) == ("cancelled", None)


def test_the_neuron_panel_shows_results_to_all_and_buttons_to_editors(atlas: Atlas) -> None:
    path = f"/runs/{atlas.run_id}/layers/layer4/neurons/5/interventions"
    anonymous = atlas.client(None).get(path, headers=HX)
    assert anonymous.status_code == 200 and 'id="intervention-list"' in anonymous.text
    assert 'id="ablate"' not in anonymous.text and 'id="amplify"' not in anonymous.text
    assert 'id="ablate"' not in atlas.client("vic").get(path, headers=HX).text
    editor = atlas.client().get(path, headers=HX).text
    assert 'id="ablate"' in editor and 'id="set-mean"' in editor and 'id="amplify"' in editor
    listed = atlas.client(None).get("/api/v1" + path).json()["items"]
    assert listed and listed[0]["status"] == "succeeded" and listed[0]["units"] == [5]
    neuron_page = atlas.client(None).get(f"/runs/{atlas.run_id}/layers/layer4/neurons/5").text
    assert f'hx-get="/runs/{atlas.run_id}/layers/layer4/neurons/5/interventions"' in neuron_page


def test_a_sweep_stores_each_units_agreement_and_cost(atlas: Atlas) -> None:
    admin = atlas.client("admin")
    queued = admin.post(f"/api/v1/runs/{atlas.run_id}/sweeps", json={"layer": "layer4", "units": [0, 1, 2]})
    assert queued.status_code == 202, queued.text
    assert queued.json()["units"] == 3
    refused = admin.post(f"/api/v1/runs/{atlas.run_id}/sweeps", json={"layer": "layer4", "units": [600]})
    assert refused.status_code == 422 and "0..511" in refused.json()["detail"]
    assert atlas.work_once() == 1
    assert queue.get_job(atlas.engine, queued.json()["job_id"]).status == "succeeded"
    client = atlas.client(None)
    swept = client.get(f"/api/v1/runs/{atlas.run_id}/layers/layer4/sweep").json()["items"]
    assert sorted(unit["unit"] for unit in swept) == [0, 1, 2]
    zs = [unit["label_effect_z"] for unit in swept]
    assert zs == sorted(zs, reverse=True)
    assert all(unit["sweep_seconds"] > 0 and unit["n_images"] == 24 and unit["label"] for unit in swept)
    assert all(unit["explained_r"] is None or -1 <= unit["explained_r"] <= 1 for unit in swept)
    by_unit = client.get(f"/api/v1/runs/{atlas.run_id}/layers/layer4/sweep", params={"sort": "unit"}).json()["items"]
    assert [unit["unit"] for unit in by_unit] == [0, 1, 2]
    agreeing = client.get(f"/api/v1/runs/{atlas.run_id}/layers/layer4/sweep", params={"max_p": 0.0}).json()["items"]
    assert agreeing == []
    (summary,) = client.get(f"/api/v1/runs/{atlas.run_id}/sweeps").json()["items"]
    assert (summary["layer"], summary["n_swept"], summary["n_units"]) == ("layer4", 3, 512)
    assert sum(bin_["count"] for bin_ in summary["histogram"]) == 3 and summary["seconds_per_unit"] > 0
    panel = client.get(f"/runs/{atlas.run_id}/layers/layer4/sweep", headers=HX).text
    assert 'id="sweep-table"' in panel and 'id="sweep-sort"' in panel
    assert 'id="run-sweeps"' in client.get(f"/runs/{atlas.run_id}/sweeps", headers=HX).text


def test_the_cli_sweeps_a_layer_and_prints_the_cost_per_unit(
    atlas: Atlas, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEURON_ATLAS_DATA_DIR", str(atlas.settings.data_dir))
    sweep = ["interventions", "sweep", str(atlas.run_id), "--quiet"]
    assert cli([*sweep, "--layer", "layer4", "--units", "1,3-4"]) == 0
    printed = capsys.readouterr().out
    assert "s per unit" in printed and "layer4" in printed
    with Session(atlas.engine) as session:
        units = session.scalars(select(UnitSweep.unit).where(UnitSweep.layer == "layer4").order_by(UnitSweep.unit))
        assert list(units) == [0, 1, 2, 3, 4]  # unit 1 replaced, 3 and 4 added
    assert cli([*sweep, "--layer", "nope"]) == 2
    assert "layer3, layer4, fc" in capsys.readouterr().err


def test_an_unknown_intervention_is_404(atlas: Atlas) -> None:
    assert atlas.client(None).get("/api/v1/interventions/999999").status_code == 404


def test_a_changed_probe_folder_fails_the_job_naming_the_fix(atlas: Atlas, tmp_path: Path) -> None:
    record = RunRecord.from_json(atlas_run_settings(atlas))
    probe = Path(record.config.probe)
    probe = probe if probe.is_absolute() else atlas.settings.data_dir / probe
    moved = probe.with_name("probe-away")
    probe.rename(moved)
    try:
        created = ask(atlas, {"layer": "layer4", "units": [20], "mode": "zero"}).json()
        assert atlas.work_once() == 1
        result = atlas.client().get(f"/api/v1/interventions/{created['id']}").json()
        assert result["status"] == "failed" and "restore the images" in result["error"]
    finally:
        moved.rename(probe)


def atlas_run_settings(atlas: Atlas) -> dict[str, Any]:
    """Return the stored run's record as JSON."""
    with Session(atlas.engine) as session:
        return session.get(Run, atlas.run_id).settings
