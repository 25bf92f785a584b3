"""Limits and clean-up: quotas, de-duplication, garbage collection, deleting runs, clear faults (a read-only
database, a killed store), paths relative to the data folder."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.jobs.dissections import StoredDissection
from app.jobs.queue import jobs as queue
from app.jobs.queue.worker import run_worker
from app.jobs.uploads.checkpoints import safe_filename
from app.persistence.cleanup import find_removable
from app.persistence.db import create_db_engine, write_session
from app.persistence.models import CatalogConceptSet, CatalogProbeSet, Job, JobState, Run, User, utcnow
from app.persistence.store import store_run
from app.persistence.writable import start_problem
from app.web.main import create_app
from dissect_core.config import DissectConfig
from tests.integration.test_api import checkpoint_bytes, stored_checkpoints, upload
from tests.integration.upload_helpers import png_bytes, post_probe_set, zip_bytes
from tests.support.dashboard_seed import (
    Dashboard,
    TinyNet,
    add_account,
    build_dashboard,
    fake_encoder_loader,
    tiny_catalog,
)
from tests.support.fakes import fake_result


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[Dashboard]:
    """A seeded dashboard of this test's own, its older run owned by the editor `ed`."""
    seeded = build_dashboard(tmp_path / "data")
    yield seeded
    seeded.engine.dispose()


def client_as(dashboard: Dashboard, name: str, role: str, **limits: object) -> TestClient:
    """Return a client authenticated as a new account, on an app with the given limits."""
    token = add_account(dashboard.engine, name, role)
    settings = replace(dashboard.settings, **limits)  # type: ignore[arg-type]
    app = create_app(settings, encoder_loader=fake_encoder_loader(dashboard.encoder), catalog=tiny_catalog())
    return TestClient(app, headers={"Authorization": f"Bearer {token}"})


def give_run(dashboard: Dashboard, run_id: int, name: str) -> None:
    """Make the named account the run's owner."""
    with write_session(dashboard.engine) as session:
        owner = session.query(User).filter_by(name=name).one()
        session.execute(update(Run).where(Run.id == run_id).values(owner_id=owner.id))


def test_identical_relabel_returns_the_same_job_and_a_flood_gets_429(fresh: Dashboard) -> None:
    with client_as(fresh, "ed", "editor", max_queued_jobs=2) as client:
        give_run(fresh, fresh.older.run_id, "ed")
        base = f"/api/v1/runs/{fresh.older.run_id}"
        assert client.post(f"{base}/typed-concepts", data={"text": "zebra"}).status_code == 201
        first = client.post(f"{base}/relabel").json()["job_id"]
        assert client.post(f"{base}/relabel").json()["job_id"] == first  # identical: the queued job again
        assert client.post(f"{base}/typed-concepts", data={"text": "tiger"}).status_code == 201
        second = client.post(f"{base}/relabel").json()["job_id"]
        assert second != first
        assert client.post(f"{base}/typed-concepts", data={"text": "lion"}).status_code == 201
        flood = client.post(f"{base}/relabel")
    assert flood.status_code == 429
    detail = flood.json()["detail"]
    assert "limit of 2" in detail and "NEURON_ATLAS_MAX_QUEUED_JOBS" in detail and "cancel" in detail


def test_typed_concepts_over_the_per_run_limit_get_429(fresh: Dashboard) -> None:
    with client_as(fresh, "ed", "editor", max_typed_concepts=2) as client:
        give_run(fresh, fresh.older.run_id, "ed")
        url = f"/api/v1/runs/{fresh.older.run_id}/typed-concepts"
        assert [client.post(url, data={"text": text}).status_code for text in ("a", "b")] == [201, 201]
        over = client.post(url, data={"text": "c"})
        assert client.post(url, data={"text": "a"}).status_code == 201  # one already kept costs nothing
    assert over.status_code == 429 and "limit of 2 per run" in over.json()["detail"]
    assert "NEURON_ATLAS_MAX_TYPED_CONCEPTS" in over.json()["detail"]


def test_the_same_checkpoint_uploaded_twice_is_stored_once(fresh: Dashboard) -> None:
    content = checkpoint_bytes(TinyNet().state_dict())
    with TestClient(fresh.app(), headers=fresh.admin_headers) as client:
        first = upload(client, content, filename="one.pt")
        second = upload(client, content, filename="two.pt", model_name="another")
    assert first.status_code == second.status_code == 201, second.text
    assert len(stored_checkpoints(fresh)) == 1
    with Session(fresh.engine) as session:
        params = [session.get(Job, created.json()["job_id"]).params for created in (first, second)]
    assert params[0]["checkpoint"] == params[1]["checkpoint"] and not Path(params[0]["checkpoint"]).is_absolute()


def test_uploads_over_the_hourly_limit_get_429(fresh: Dashboard) -> None:
    with client_as(fresh, "ed", "editor", max_uploads_per_hour=1) as client:
        assert upload(client, checkpoint_bytes(TinyNet().state_dict())).status_code == 201
        over = upload(client, checkpoint_bytes(TinyNet().state_dict()), model_name="again")
    assert over.status_code == 429 and "limit of 1 per hour" in over.json()["detail"]


def test_an_upload_over_a_limit_is_refused_before_its_body_is_read(fresh: Dashboard) -> None:
    with client_as(fresh, "ed", "editor", max_uploads_per_hour=1) as client:
        assert upload(client, checkpoint_bytes(TinyNet().state_dict())).status_code == 201
        junk = client.post(
            "/api/v1/uploads", content=b"not a form at all", headers={"Content-Type": "multipart/form-data; boundary=x"}
        )
    assert junk.status_code == 429 and "limit of 1 per hour" in junk.json()["detail"]


def test_gc_removes_only_unreferenced_files(fresh: Dashboard, capsys: pytest.CaptureFixture[str]) -> None:
    from app.cli.main import main

    settings = fresh.settings
    with TestClient(fresh.app(), headers=fresh.admin_headers) as client:
        live = upload(client, checkpoint_bytes(TinyNet().state_dict()), filename="live.pt").json()["job_id"]
        dead = upload(client, checkpoint_bytes(TinyNet().state_dict()), filename="dead.pt")  # other random weights
    with write_session(fresh.engine) as session:
        failed = session.get(Job, dead.json()["job_id"])
        assert failed is not None
        failed.status = JobState.FAILED.value
        dead_checkpoint = settings.data_dir / failed.params["checkpoint"]
        live_checkpoint = settings.data_dir / session.get(Job, live).params["checkpoint"]  # type: ignore[union-attr]
    orphan = settings.artifacts_dir / "0123abcd"
    orphan.mkdir()
    (orphan / "image_embeddings.pt").write_bytes(b"x" * 1000)
    removable = find_removable(fresh.engine, settings)
    assert set(removable.paths) == {orphan, dead_checkpoint} and removable.bytes_freed >= 1000
    env = {"NEURON_ATLAS_DATA_DIR": str(settings.data_dir), "NEURON_ATLAS_DATABASE_URL": settings.database_url}
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        assert main(["gc", "--dry-run"]) == 0
        assert orphan.is_dir()
        assert main(["gc"]) == 0
    out = capsys.readouterr().out
    assert f"would remove {orphan}" in out and f"removed {orphan}" in out and "bytes" in out
    assert not orphan.exists() and not dead_checkpoint.exists() and live_checkpoint.is_file()
    assert fresh.older.artifacts_dir.is_dir() and fresh.newer.artifacts_dir.is_dir()


def test_runs_are_deleted_by_their_owner_or_an_admin_only(fresh: Dashboard) -> None:
    with client_as(fresh, "ed", "editor") as ed, client_as(fresh, "eve", "editor") as eve:
        give_run(fresh, fresh.older.run_id, "ed")
        refused = eve.delete(f"/api/v1/runs/{fresh.older.run_id}")
        assert refused.status_code == 403 and "belongs to ed" in refused.json()["detail"]
        assert ed.delete(f"/api/v1/runs/{fresh.older.run_id}").status_code == 204
        assert ed.get(f"/api/v1/runs/{fresh.older.run_id}").status_code == 404
    with TestClient(fresh.app(), headers=fresh.admin_headers) as admin:
        assert admin.delete(f"/api/v1/runs/{fresh.newer.run_id}").status_code == 204
        assert admin.get("/api/v1/runs").json()["items"] == []
    assert fresh.older.artifacts_dir.is_dir()  # its files wait for gc


def test_a_read_only_database_answers_writes_with_503_and_the_reason(fresh: Dashboard) -> None:
    database = fresh.settings.data_dir / "atlas.db"
    read_only = replace(fresh.settings, database_url=f"sqlite:///file:{database}?mode=ro&uri=true")
    assert "readonly database" in (start_problem(read_only) or "")
    app = create_app(read_only, encoder_loader=fake_encoder_loader(fresh.encoder), catalog=tiny_catalog())
    with TestClient(app, headers=fresh.admin_headers) as client:
        assert client.get("/api/v1/runs").status_code == 200
        response = client.post(f"/api/v1/runs/{fresh.older.run_id}/typed-concepts", data={"text": "zebra"})
    assert response.status_code == 503, response.text
    assert "readonly database" in response.json()["detail"] and "writable" in response.json()["detail"]


def test_a_killed_store_leaves_no_orphans_after_the_next_worker_start(fresh: Dashboard) -> None:
    settings = replace(fresh.settings, heartbeat_interval_s=0.2, stale_timeout_s=1.0)
    partial = settings.artifacts_dir / ".partial-deadbeef"
    renamed = settings.artifacts_dir / "deadbeef"  # renamed, but the run's rows never committed
    for folder in (partial, renamed):
        folder.mkdir()
        (folder / "image_embeddings.pt").write_bytes(b"x")
    with write_session(fresh.engine) as session:  # the killed worker's job, silent since
        job = queue.enqueue(session, {"model": "x"})
        job.status, job.worker_id, job.attempts = JobState.RUNNING.value, "killed", 1
        job.heartbeat_at = utcnow() - timedelta(seconds=5)
    run_worker(settings, once=True, handle_signals=False, poll_interval=0.01)  # its params fail: a second note
    assert not partial.exists() and not renamed.exists()
    assert fresh.older.artifacts_dir.is_dir() and fresh.newer.artifacts_dir.is_dir()
    with Session(fresh.engine) as session:
        history = session.get(Job, job.id).history  # type: ignore[union-attr]
    assert "interrupted" in history[0]["note"] and history[0]["status"] == "queued"  # the requeue note is kept
    assert len(history) == 2  # then the second attempt's own outcome


def test_a_moved_data_folder_still_serves_concept_search(fresh: Dashboard, tmp_path: Path) -> None:
    with write_session(fresh.engine) as session:  # as stored now (and as migration 0004 converts)
        for run in session.query(Run):
            run.artifacts_dir = Path(run.artifacts_dir).relative_to(fresh.settings.data_dir).as_posix()
    fresh.engine.dispose()
    moved = tmp_path / "restored"
    shutil.move(fresh.settings.data_dir, moved)
    settings = Settings.for_data_dir(moved, allowed_hosts=fresh.settings.allowed_hosts)
    app = create_app(settings, encoder_loader=fake_encoder_loader(fresh.encoder), catalog=tiny_catalog())
    with TestClient(app) as client:
        found = client.get(f"/api/v1/runs/{fresh.newer.run_id}/layers/fc/concepts", params={"q": "sky"})
    assert found.status_code == 200, found.text
    assert found.json()["items"]


def fake_pipeline(
    settings: Settings,
    config: DissectConfig,
    *_: Any,
    engine: Any,
    before_commit: Any,
    target_model_id: int | None = None,
) -> StoredDissection:
    """Stand in for the pipeline: a small run over the probe folder's images, stored as the real one would be."""
    paths = sorted(str(path) for path in Path(config.probe).glob("*.png"))
    layers = (("conv", "conv", 4, (4, 4)), ("fc", "linear", 3, None))
    result = fake_result(paths, layers=layers, config=config)
    run_id = store_run(engine, settings, result, target_model_id=target_model_id, before_commit=before_commit)
    return StoredDissection(run_id=run_id, result=result)


def test_a_run_made_before_the_data_folder_moved_still_relabels_and_searches(fresh: Dashboard, tmp_path: Path) -> None:
    images = [(f"p{index}.png", png_bytes(color=(30 * index, 90, 9))) for index in range(4)]
    with TestClient(fresh.app(), headers=fresh.admin_headers) as client:
        assert post_probe_set(client, "pets", zip_bytes(images)).status_code == 201
        words = client.post("/api/v1/concept-sets", data={"name": "words", "concepts": "sky\nfur\n"})
        assert words.status_code == 201, words.text
        created = upload(client, checkpoint_bytes(TinyNet().state_dict()), probe="pets", concepts="words")
        assert created.status_code == 201, created.text
    assert run_worker(fresh.settings, once=True, executor=fake_pipeline, handle_signals=False) == 1
    with Session(fresh.engine) as session:
        run = session.scalars(select(Run).order_by(Run.id.desc())).first()
        assert run is not None and session.get(Job, created.json()["job_id"]).run_id == run.id  # type: ignore[union-attr]
        run_id, stored = run.id, dict(run.settings)
        folders = (
            session.scalars(select(CatalogProbeSet.folder)).all()
            + session.scalars(select(CatalogConceptSet.file)).all()
        )
    for key in ("probe", "concepts", "checkpoint"):
        assert not Path(stored[key]).is_absolute(), (key, stored[key])
    assert folders and not any(Path(folder).is_absolute() for folder in folders)
    fresh.engine.dispose()
    moved = tmp_path / "restored"
    shutil.copytree(fresh.settings.data_dir, moved)  # restored from a backup elsewhere; the original is gone
    shutil.rmtree(fresh.settings.data_dir)
    settings = Settings.for_data_dir(moved, allowed_hosts=fresh.settings.allowed_hosts)
    app = create_app(settings, encoder_loader=fake_encoder_loader(fresh.encoder), catalog=tiny_catalog())
    with TestClient(app, headers=fresh.admin_headers) as client:
        found = client.get(f"/api/v1/runs/{run_id}/layers/fc/concepts", params={"q": "sky"})
        assert found.status_code == 200 and found.json()["items"], found.text
        assert client.get(f"/api/v1/runs/{run_id}").json()["settings"]["probe"] == "pets"
        assert client.post(f"/api/v1/runs/{run_id}/typed-concepts", data={"text": "zebra"}).status_code == 201
        relabel = client.post(f"/api/v1/runs/{run_id}/relabel")
        assert relabel.status_code == 201, relabel.text
        again = upload(client, checkpoint_bytes(TinyNet().state_dict()), probe="pets", model_name="again")
        assert again.status_code == 201, again.text  # the catalogued names resolve in the new place too
    assert run_worker(settings, once=True, executor=fake_pipeline, handle_signals=False) == 1
    with Session(create_db_engine(settings.database_url)) as session:
        job = session.get(Job, relabel.json()["job_id"])
        assert job is not None and job.status == JobState.SUCCEEDED.value, job and job.error
        relabelled = session.get(Run, job.run_id)
        assert relabelled is not None and relabelled.settings["probe"] == stored["probe"]


def test_a_long_file_name_keeps_its_suffix() -> None:
    name = safe_filename("x" * 300 + ".PTH")
    assert len(name) == 120 and name.endswith(".PTH")
    assert safe_filename("dir/" + "é" * 200 + ".safetensors").endswith(".safetensors")


def test_a_deleted_runs_cached_pages_are_forgotten(fresh: Dashboard) -> None:
    run_id = fresh.older.run_id
    pages = [f"/runs/{run_id}/layers/conv1/neurons/0", f"/api/v1/runs/{run_id}/layers/conv1/neurons/0"]
    with TestClient(fresh.app(), headers=fresh.admin_headers) as admin:
        assert all(admin.get(page).status_code == 200 for page in pages)  # now kept for replay
        assert admin.delete(f"/api/v1/runs/{run_id}").status_code == 204
        assert [admin.get(page).status_code for page in pages] == [404, 404]
        assert admin.get(f"/api/v1/runs/{fresh.newer.run_id}").status_code == 200
