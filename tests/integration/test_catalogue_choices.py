"""Web requests name, never point: probe sets, concept sets and encoders are chosen from a catalogue by name,
uploads get model names of their own, and web users never see a server path; the command line keeps its
paths. Each hostile request goes through the real app and must leave nothing behind."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.jobs.dissections import StoredDissection
from app.jobs.queue import jobs as queue
from app.jobs.queue.worker import run_worker
from app.jobs.uploads.defaults import default_encoder
from app.persistence.db import write_session
from app.persistence.models import Job, TargetModel
from app.persistence.store import store_run
from dissect_core.config import DEFAULT_OFFLINE_ENCODER
from tests.integration.upload_helpers import (
    bounded_client,
    cli,
    nothing_stored,
    png_bytes,
    refused,
    three_images,
    upload,
    zip_bytes,
)
from tests.support.dashboard_seed import Dashboard, build_dashboard
from tests.support.fakes import fake_result, make_images


@pytest.fixture(scope="module")
def probe_folder(dashboard: Dashboard, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A server folder of four images, registered by the operator as `street`."""
    folder = tmp_path_factory.mktemp("server-images")
    make_images(folder, 4)
    assert cli(dashboard, "probe-sets", "add", "street", str(folder)) == 0
    return folder


# --- hostile fields of the checkpoint upload -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"concepts": "/etc/passwd"}, ["Concept set '/etc/passwd' does not exist", "not by path", "20k"]),
        ({"probe": "/"}, ["Probe set '/' does not exist", "not by path", "cifar100"]),
        ({"probe": "/etc"}, ["Probe set '/etc' does not exist"]),
        (
            {"encoder": "ViT-B-16:/tmp/weights.pt"},
            ["Encoder 'ViT-B-16:/tmp/weights.pt' is not offered", "/api/v1/encoders"],
        ),
        ({"encoder": "/tmp/weights.pt"}, ["is not offered", "never as a file"]),
    ],
)
def test_upload_fields_name_never_point(
    client: TestClient, dashboard: Dashboard, fields: dict[str, str], words: list[str]
) -> None:
    with nothing_stored(dashboard):
        print(fields, "->", refused(upload(client, **fields), 422, *words))


def test_an_existing_server_folder_or_file_is_still_refused(
    client: TestClient, dashboard: Dashboard, probe_folder: Path, tmp_path: Path
) -> None:
    concepts = tmp_path / "words.txt"
    concepts.write_text("secret\nlines\n")
    with nothing_stored(dashboard):
        exists = refused(upload(client, probe=str(probe_folder)), 422, "does not exist", "street")
        missing = refused(upload(client, probe=f"{probe_folder}-nope"), 422, "does not exist")
        assert exists.replace(str(probe_folder), "X") == missing.replace(f"{probe_folder}-nope", "X")  # no oracle
        refused(upload(client, concepts=str(concepts)), 422, "does not exist")
        refused(upload(client, concepts=str(dashboard.settings.data_dir / "atlas.db")), 422, "does not exist")


def test_a_registered_folder_is_chosen_by_name(client: TestClient, dashboard: Dashboard, probe_folder: Path) -> None:
    response = upload(client, probe="street", model_name="street-net")
    assert response.status_code == 201, response.text
    with Session(dashboard.engine) as session:
        params = session.get(Job, response.json()["job_id"]).params
    assert params["probe"] == str(probe_folder.resolve()) and params["model_name"] == "street-net"
    assert params["model"] == "tinynet"
    job = client.get(response.json()["api_url"]).json()
    assert job["model"] == "street-net" and str(probe_folder) not in str(job)


def test_the_upload_form_offers_selects_of_names(client: TestClient, probe_folder: Path) -> None:
    html = client.get("/upload").text
    assert '<select id="probe" name="probe"' in html and '<option value="street"' in html
    assert '<select id="concepts" name="concepts"' in html and '<option value="20k" selected>' in html
    # Both encoders are offered; the one preselected is CLIP where its weights are cached, else offline ConSE.
    assert '<select id="encoder" name="encoder"' in html and 'value="ViT-B-16:openai"' in html
    assert f'value="{DEFAULT_OFFLINE_ENCODER}"' in html
    chosen = default_encoder(["ViT-B-16:openai", DEFAULT_OFFLINE_ENCODER])
    assert f'<option value="{chosen}" selected>' in html
    assert 'name="model_name"' in html and str(probe_folder) not in html


def test_encoders_come_from_the_settings(dashboard: Dashboard) -> None:
    with bounded_client(dashboard, encoders=("conse:efficientnet_lite2+minilm",)) as client:
        assert client.get("/api/v1/encoders").json()["items"] == ["conse:efficientnet_lite2+minilm"]
        with nothing_stored(dashboard):
            refused(upload(client), 422, "'ViT-B-16:openai' is not offered", "conse:efficientnet_lite2+minilm")
        assert upload(client, encoder="conse:efficientnet_lite2+minilm", model_name="conse-net").status_code == 201


def test_default_encoders_list_conse_and_open_clip(client: TestClient) -> None:
    listed = client.get("/api/v1/encoders").json()["items"]
    assert "conse:efficientnet_lite0+minilm" in listed and "ViT-B-16:openai" in listed and len(listed) > 50


# --- names that cannot be hijacked ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model_name", "words"),
    [
        ("efficientnet_lite0", ["'efficientnet_lite0' is an architecture's name", "e.g. 'efficientnet_lite0-2'"]),
        ("resnet18", ["'resnet18' is an architecture's name"]),
        ("tinynet", ["'tinynet' is an architecture's name"]),
        ("TinyNet", ["'tinynet' is an architecture's name"]),
        ("../x", ["cannot name a model"]),
        ("mine.pt", ["ends like a TorchScript file"]),
    ],
)
def test_an_upload_cannot_take_a_built_in_or_dissected_name(
    client: TestClient, dashboard: Dashboard, model_name: str, words: list[str]
) -> None:
    with nothing_stored(dashboard):
        print(model_name, "->", refused(upload(client, model_name=model_name), 422, *words))


def test_two_uploads_never_share_a_name(client: TestClient, dashboard: Dashboard) -> None:
    first = upload(client, filename="shared.pt")
    assert first.status_code == 201, first.text
    with nothing_stored(dashboard):
        print("shared ->", refused(upload(client, filename="shared.pt"), 422, "'shared' is taken", "e.g. 'shared-2'"))
        refused(upload(client, model_name="SHARED"), 422, "'shared' is taken")
    with Session(dashboard.engine) as session:
        model = session.scalars(select(TargetModel).where(TargetModel.uploaded_name == "shared")).one()
    assert model.name == "shared" and model.architecture == "tinynet" and model.weights == "none"


def fake_pipeline(
    settings: Settings,
    config: Any,
    progress: Any = None,
    should_stop: Any = None,
    *,
    engine: Any,
    before_commit: Any,
    target_model_id: int | None = None,
) -> StoredDissection:
    """Stand in for the pipeline: a small run over the probe folder's images, stored as the real one would be."""
    paths = sorted(str(path) for path in Path(config.probe).glob("*.png"))
    result = fake_result(paths, config=config)
    run_id = store_run(engine, settings, result, target_model_id=target_model_id, before_commit=before_commit)
    return StoredDissection(run_id=run_id, result=result)


def test_model_permalinks_resolve_by_the_unique_name_to_the_latest_succeeded_run(tmp_path: Path) -> None:
    dashboard = build_dashboard(tmp_path / "data")
    folder = tmp_path / "images"
    make_images(folder, 4)
    with write_session(dashboard.engine) as session:
        from app.jobs.catalogue.sets import register_probe_folder

        register_probe_folder(session, dashboard.settings, "imgs", folder)
    with TestClient(dashboard.app(), headers=dashboard.admin_headers) as client:
        created = upload(client, probe="imgs", model_name="mine", layers=["conv", "fc"])
        assert created.status_code == 201, created.text
        assert run_worker(dashboard.settings, once=True, executor=fake_pipeline, handle_signals=False) == 1
        job = client.get(created.json()["api_url"]).json()
        assert job["status"] == "succeeded", job
        # The upload's run is the newest run of architecture tinynet, yet tinynet's permalink keeps its own runs.
        reference = client.get("/api/v1/models/tinynet/layers/fc/neurons/1", follow_redirects=False)
        assert reference.headers["location"] == f"/api/v1/runs/{dashboard.newer.run_id}/layers/fc/neurons/1"
        mine = client.get("/api/v1/models/mine/layers/fc/neurons/1", follow_redirects=False)
        assert mine.headers["location"] == f"/api/v1/runs/{job['run_id']}/layers/fc/neurons/1"
        run = client.get(f"/api/v1/runs/{job['run_id']}").json()
        assert run["model_name"] == "mine" and run["architecture"] == "tinynet" and run["probe_set"] == "imgs"
        assert run["settings"]["probe"] == "imgs" and run["settings"]["checkpoint"] == "tiny.pt"
        for text in (client.get(f"/api/v1/runs/{job['run_id']}").text, client.get(f"/runs/{job['run_id']}").text):
            assert str(tmp_path) not in text
        # A run whose job did not succeed is never the one a permalink gives.
        with write_session(dashboard.engine) as session:
            session.add(Job(params={}, status="failed", run_id=dashboard.newer.run_id))
        fallback = client.get("/api/v1/models/tinynet/layers/fc/neurons/1", follow_redirects=False)
        assert fallback.headers["location"] == f"/api/v1/runs/{dashboard.older.run_id}/layers/fc/neurons/1"
    with Session(dashboard.engine) as session:
        assert session.scalar(select(func.count()).where(TargetModel.uploaded_name == "mine")) == 1
        assert session.scalar(select(func.count()).where(TargetModel.name == "mine")) == 1
    dashboard.engine.dispose()


# --- no server paths shown -----------------------------------------------------------------------------------


def test_run_pages_and_api_show_no_server_paths(client: TestClient, dashboard: Dashboard) -> None:
    data_dir = str(dashboard.settings.data_dir)
    run_id = dashboard.newer.run_id
    for path in (
        f"/api/v1/runs/{run_id}",
        f"/runs/{run_id}",
        "/api/v1/runs",
        "/",
        f"/runs/{run_id}/layers/fc/neurons/1",
    ):
        assert data_dir not in client.get(path).text, path
    assert client.get(f"/api/v1/runs/{run_id}").json()["settings"]["probe"] == "probe"


def test_job_errors_name_the_catalogue_not_the_server(
    client: TestClient, dashboard: Dashboard, probe_folder: Path
) -> None:
    with write_session(dashboard.engine) as session:
        job_id = queue.enqueue(session, {"model": "tinynet", "layers": ["fc"], "probe": str(probe_folder)}).id
    claimed = queue.claim_next(dashboard.engine, "test-worker")
    while claimed is not None and claimed.id != job_id:
        queue.cancel(dashboard.engine, claimed.id)
        claimed = queue.claim_next(dashboard.engine, "test-worker")
    message = (
        f"probe image {probe_folder}/image_001.png can no longer be read; checkpoint "
        f"{dashboard.settings.data_dir}/checkpoints/ab/tiny.pt too"
    )
    queue.fail(dashboard.engine, job_id, "test-worker", message)
    job = client.get(f"/api/v1/jobs/{job_id}").json()
    assert job["error"] == "probe image street/image_001.png can no longer be read; checkpoint tiny.pt too"
    page = client.get(f"/jobs/{job_id}").text + client.get("/").text
    assert str(probe_folder) not in page and str(dashboard.settings.data_dir) not in page


def test_concept_search_errors_show_no_server_paths(client: TestClient, dashboard: Dashboard) -> None:
    top = dashboard.older.artifacts_dir / "top_indices" / "fc.pt"
    top.rename(top.with_suffix(".moved"))
    try:
        response = client.get(f"/api/v1/runs/{dashboard.older.run_id}/layers/fc/concepts", params={"q": "sky"})
    finally:
        top.with_suffix(".moved").rename(top)
    detail = refused(response, 422, "fc.pt")
    assert str(dashboard.settings.data_dir) not in detail


# --- the command line keeps its paths ------------------------------------------------------------------------


def test_probe_sets_command_adds_lists_and_removes(dashboard: Dashboard, tmp_path: Path, capsys: Any) -> None:
    folder = tmp_path / "cli-images"
    make_images(folder, 3)
    assert cli(dashboard, "probe-sets", "add", "cli-set", str(folder)) == 0
    assert cli(dashboard, "probe-sets", "list") == 0
    listed = capsys.readouterr().out
    assert "cli-set" in listed and str(folder) in listed and "cifar100" in listed
    assert cli(dashboard, "probe-sets", "add", "cli-set", str(folder)) == 2
    assert cli(dashboard, "probe-sets", "add", "other", str(folder)) == 2
    assert "already the probe set 'cli-set'" in capsys.readouterr().err
    assert cli(dashboard, "probe-sets", "remove", "cli-set") == 0
    assert folder.is_dir() and cli(dashboard, "probe-sets", "remove", "cli-set") == 2


# --- both databases ------------------------------------------------------------------------------------------


def test_catalogue_rows_and_model_names_on_both_databases(settings: Settings, engine: Any, tmp_path: Path) -> None:
    from app.core.errors import AtlasError
    from app.jobs.catalogue.sets import register_probe_folder, store_uploaded_concept_set, store_uploaded_probe_set
    from app.jobs.uploads.model_names import reserve_model_name
    from app.read.catalogue.sets import list_probe_sets, public_names
    from dissect_core.config import DissectConfig

    folder = tmp_path / "images"
    make_images(folder, 3)
    with write_session(engine) as session:
        register_probe_folder(session, settings, "imgs", folder)
    pets = store_uploaded_probe_set(engine, settings, "pets", io.BytesIO(zip_bytes(three_images())))
    words = store_uploaded_concept_set(engine, settings, "words", b"a\nb\n")
    with Session(engine) as session:
        assert [view.name for view in list_probe_sets(session)] == ["cifar100", "imgs", "pets"]
        assert public_names(session) == {str(folder.resolve()): "imgs", pets.folder: "pets", words.file: "words"}
    config = DissectConfig(
        model="tinynet", layers=("fc",), probe="cifar100", weights="none", checkpoint="/x/a.pt", model_name="mine"
    )
    with write_session(engine) as session:
        reserve_model_name(session, config, "0" * 64, None)
    with pytest.raises(AtlasError, match="just taken"), write_session(engine) as session:
        reserve_model_name(session, config, "1" * 64, None)


def test_the_catalogue_pages_add_sets_or_say_why_not(client: TestClient, dashboard: Dashboard) -> None:
    archive = zip_bytes([("p/one.png", png_bytes(color=(9, 9, 9)))])
    added = client.post(
        "/probe-sets", data={"name": "from-page"}, files={"archive": ("p.zip", archive)}, follow_redirects=False
    )
    assert added.status_code == 303 and added.headers["location"] == "/probe-sets"
    page = client.get("/probe-sets").text
    assert (
        "from-page" in page and 'enctype="multipart/form-data"' in page and str(dashboard.settings.data_dir) not in page
    )
    with nothing_stored(dashboard):
        bad = zip_bytes([("../up.png", png_bytes())])
        refused_page = client.post("/probe-sets", data={"name": "bad-page"}, files={"archive": ("b.zip", bad)})
    assert refused_page.status_code == 400 and "Not added." in refused_page.text and "climbs out" in refused_page.text
    listed = client.post(
        "/concept-sets", data={"name": "page-words", "concepts": "alpha\nbeta"}, follow_redirects=False
    )
    assert listed.status_code == 303 and "page-words" in client.get("/concept-sets").text
    with nothing_stored(dashboard):
        taken = client.post("/concept-sets", data={"name": "page-words", "concepts": "gamma"})
    assert taken.status_code == 422 and "is taken" in taken.text and "Not added." in taken.text


def test_bounds_and_encoders_come_from_the_environment(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "NEURON_ATLAS_DATA_DIR": str(tmp_path),
            "NEURON_ATLAS_ENCODERS": "ViT-B-16:openai, conse:efficientnet_lite2+minilm,",
            "NEURON_ATLAS_PROBE_MAX_FILES": "100",
            "NEURON_ATLAS_PROBE_MAX_MB": "10",
            "NEURON_ATLAS_PROBE_MAX_PIXELS": "1000000",
            "NEURON_ATLAS_CONCEPTS_MAX_LINES": "5",
            "NEURON_ATLAS_CONCEPTS_MAX_KB": "3",
        }
    )
    assert settings.encoders == ("ViT-B-16:openai", "conse:efficientnet_lite2+minilm")
    assert (settings.probe_max_files, settings.probe_max_bytes, settings.probe_max_pixels) == (100, 10 << 20, 10**6)
    assert (settings.concepts_max_lines, settings.concepts_max_bytes) == (5, 3 << 10)
    defaults = Settings.from_env({"NEURON_ATLAS_DATA_DIR": str(tmp_path)})
    assert defaults.encoders is None and defaults.probe_max_bytes == 2 << 30
