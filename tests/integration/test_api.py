"""The JSON API through the real app on a seeded SQLite file: listing, paging, concept search, uploads, media."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import torch
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.persistence.db import write_session
from app.persistence.models import Job, Run, TypedConcept
from tests.support.dashboard_seed import Dashboard, LayerSpec, TinyNet, seed_run

LAYER = "blocks.3"


def neurons_url(run_id: int, layer: str = LAYER) -> str:
    return f"/api/v1/runs/{run_id}/layers/{layer}/neurons"


def count_jobs(dashboard: Dashboard) -> int:
    with Session(dashboard.engine) as session:
        return session.scalar(select(func.count()).select_from(Job)) or 0


def stored_checkpoints(dashboard: Dashboard) -> list[Path]:
    folder = dashboard.settings.data_dir / "checkpoints"
    return sorted(path for path in folder.rglob("*") if path.is_file()) if folder.exists() else []


def checkpoint_bytes(state_dict: dict[str, torch.Tensor] | object) -> bytes:
    buffer = io.BytesIO()
    torch.save(state_dict, buffer)
    return buffer.getvalue()


def upload(client: TestClient, content: bytes, *, filename: str = "tiny.pt", **fields: object) -> httpx.Response:
    data = {"architecture": "tinynet", "layers": ["conv", "fc"], "probe": "cifar100", "concepts": "20k"}
    data.update(fields)  # type: ignore[arg-type]
    return client.post("/api/v1/uploads", data=data, files={"checkpoint": (filename, content)})


# --- runs, layers, neurons ---------------------------------------------------------------------------------


def test_runs_are_listed_newest_first_with_counts(client: TestClient, dashboard: Dashboard) -> None:
    listing = client.get("/api/v1/runs").json()
    runs = listing["items"]
    assert (listing["total"], listing["offset"], listing["next"]) == (2, 0, None)
    assert [run["id"] for run in runs] == [dashboard.newer.run_id, dashboard.older.run_id]
    assert runs[0]["n_layers"] == 3 and runs[0]["n_neurons"] == 64 + 2048 + 10
    assert runs[0]["model_name"] == "tinynet" and "soft_wpmi" in runs[0]["settings_summary"]


def test_run_detail_and_layers_keep_forward_order(client: TestClient, dashboard: Dashboard) -> None:
    run = client.get(f"/api/v1/runs/{dashboard.newer.run_id}").json()
    assert [layer["name"] for layer in run["layers"]] == ["conv1", "blocks.3", "fc"]
    assert run["settings"]["similarity"] == "soft_wpmi"
    layers = client.get(f"/api/v1/runs/{dashboard.newer.run_id}/layers").json()["items"]
    assert [(layer["name"], layer["n_units"]) for layer in layers] == [("conv1", 64), ("blocks.3", 2048), ("fc", 10)]
    layer = client.get(f"/api/v1/runs/{dashboard.newer.run_id}/layers/{LAYER}").json()
    assert layer == {"name": LAYER, "position": 1, "kind": "vit", "n_units": 2048, "evaluation": None}


def test_neurons_page_through_a_2048_unit_layer(client: TestClient, dashboard: Dashboard) -> None:
    url = neurons_url(dashboard.newer.run_id)
    first = client.get(url).json()
    assert first["total"] == 2048 and first["limit"] == 96 and len(first["items"]) == 96
    assert [neuron["unit"] for neuron in first["items"][:3]] == [0, 1, 2]
    assert len(first["items"][0]["top_images"]) == 5
    last = client.get(url, params={"offset": 2000, "limit": 96}).json()
    assert [neuron["unit"] for neuron in last["items"]] == list(range(2000, 2048))
    units = []
    page: str | None = f"{url}?limit=500&sort=-score"
    while page is not None:  # `next` walks every page with the same query
        listing = client.get(page).json()
        assert listing["sort"] == "-score" and listing["limit"] == 500
        units += [neuron["unit"] for neuron in listing["items"]]
        page = listing["next"]
    assert sorted(units) == list(range(2048))


@pytest.mark.parametrize(
    ("sort", "key", "descending"),
    [("score", "score", False), ("-score", "score", True), ("label", "label", False), ("-unit", "unit", True)],
)
def test_neurons_sort(client: TestClient, dashboard: Dashboard, sort: str, key: str, descending: bool) -> None:
    neurons = client.get(neurons_url(dashboard.newer.run_id), params={"sort": sort, "limit": 500}).json()["items"]
    values = [neuron[key] for neuron in neurons]
    assert values == sorted(values, reverse=descending)
    if key != "unit":
        assert values[0] != values[-1]


def test_neurons_filter_by_label_text_or_unit_number(client: TestClient, dashboard: Dashboard) -> None:
    url = neurons_url(dashboard.newer.run_id)
    striped = client.get(url, params={"q": "STRIP", "limit": 500}).json()
    assert striped["total"] == 2048 // 8
    assert {neuron["label"] for neuron in striped["items"]} == {"striped"}
    by_unit = client.get(url, params={"q": "#1234"}).json()
    assert [neuron["unit"] for neuron in by_unit["items"]] == [1234]
    nothing = client.get(url, params={"q": "100%_"}).json()
    assert nothing["total"] == 0 and nothing["items"] == []


def test_low_confidence_is_the_bottom_quartile(client: TestClient, dashboard: Dashboard) -> None:
    page = client.get(neurons_url(dashboard.newer.run_id), params={"limit": 500, "sort": "score"}).json()
    cut = page["stats"]["low_confidence_below"]
    low = [neuron for neuron in page["items"] if neuron["low_confidence"]]
    assert all(neuron["score"] < cut for neuron in low)
    assert 0.2 * 2048 < len(low) <= 0.25 * 2048 + 1
    assert all(0.0 <= neuron["score_fraction"] <= 1.0 for neuron in page["items"])


def test_bad_neuron_list_parameters_say_what_is_allowed(client: TestClient, dashboard: Dashboard) -> None:
    url = neurons_url(dashboard.newer.run_id)
    assert client.get(url, params={"limit": 5000}).status_code == 422
    response = client.get(url, params={"sort": "colour"})
    assert response.status_code == 422 and "unit" in response.text


def test_neuron_detail_has_runners_up_images_and_neighbours(client: TestClient, dashboard: Dashboard) -> None:
    run_id = dashboard.newer.run_id
    neuron = client.get(f"/api/v1/runs/{run_id}/layers/{LAYER}/neurons/7").json()
    assert neuron["unit"] == 7 and neuron["layer"] == LAYER and neuron["model_name"] == "tinynet"
    assert len(neuron["runners_up"]) == 4 and neuron["runners_up"][0]["concept"]
    assert neuron["previous_unit"] == 6 and neuron["next_unit"] == 8
    assert neuron["permalink"] == f"/runs/{run_id}/layers/{LAYER}/neurons/7"
    image = neuron["top_images"][0]
    assert image["view_url"].startswith("/media/") and image["crop_url"].startswith("/media/")
    assert 0 <= image["box"][0] < image["box"][2] <= 1
    first = client.get(f"/api/v1/runs/{run_id}/layers/{LAYER}/neurons/0").json()
    assert first["previous_unit"] is None
    fc = client.get(f"/api/v1/runs/{run_id}/layers/fc/neurons/9").json()
    assert fc["next_unit"] is None and fc["top_images"][0]["heatmap_url"] is None


def test_model_permalink_redirects_to_the_latest_run(client: TestClient, dashboard: Dashboard) -> None:
    response = client.get("/api/v1/models/tinynet/layers/conv1/neurons/3", follow_redirects=False)
    assert response.status_code == 307
    assert response.headers["location"] == f"/api/v1/runs/{dashboard.newer.run_id}/layers/conv1/neurons/3"
    assert client.get(response.headers["location"]).json()["unit"] == 3


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("/api/v1/runs/999", ["no run 999", "newest is run"]),
        ("/api/v1/runs/{run}/layers/blocks.9/neurons", ["no layer 'blocks.9'", "conv1, blocks.3, fc"]),
        ("/api/v1/runs/{run}/layers/fc/neurons/10", ["units 0–9", "no unit 10"]),
        ("/api/v1/models/resnet99/layers/fc/neurons/1", ["resnet99", "models with runs are: tinynet"]),
        ("/api/v1/models/tinynet/layers/head/neurons/1", ["dissected layer 'head'"]),
        ("/api/v1/jobs/4242", ["no job 4242"]),
    ],
)
def test_not_found_answers_name_what_exists(
    client: TestClient, dashboard: Dashboard, path: str, words: list[str]
) -> None:
    response = client.get(path.format(run=dashboard.newer.run_id), follow_redirects=False)
    assert response.status_code == 404
    detail = response.json()["detail"]
    assert all(word in detail for word in words), detail


def test_search_finds_labels_across_layers(client: TestClient, dashboard: Dashboard) -> None:
    url = f"/api/v1/runs/{dashboard.newer.run_id}/search"
    result = client.get(url, params={"q": "sky", "limit": 500}).json()
    assert result["total"] == 64 // 8 + 2048 // 8 + 2
    assert {hit["layer"] for hit in result["items"]} == {"conv1", "blocks.3", "fc"}
    assert result["items"][0]["layer"] == "conv1"
    assert len(client.get(url, params={"q": "sky"}).json()["items"]) == 200
    assert client.get(url).json()["total"] == 0


# --- concept search ------------------------------------------------------------------------------------------


def test_concept_search_ranks_the_matching_neurons_first(client: TestClient, dashboard: Dashboard) -> None:
    url = f"/api/v1/runs/{dashboard.newer.run_id}/layers/{LAYER}/concepts"
    result = client.get(url, params={"q": "  striped ", "limit": 10}).json()
    assert result["concept"] == "striped" and result["n_units"] == 2048
    assert result["items"][0]["unit"] == 3 and result["items"][0]["rank"] == 1
    assert all(hit["unit"] % 8 == 3 for hit in result["items"])
    scores = [hit["score"] for hit in result["items"]]
    assert scores == sorted(scores, reverse=True)
    assert result["items"][0]["label"] == "striped"


def test_concept_search_caches_encoder_and_text_embeddings(client: TestClient, dashboard: Dashboard) -> None:
    url = f"/api/v1/runs/{dashboard.newer.run_id}/layers/conv1/concepts"
    before = len(dashboard.encoder.calls)
    for _ in range(3):
        assert client.get(url, params={"q": "dotted"}).json()["items"][0]["unit"] == 5
    assert len(dashboard.encoder.calls) - before <= 1


def test_neuron_concept_score_and_rank(client: TestClient, dashboard: Dashboard) -> None:
    base = f"/api/v1/runs/{dashboard.newer.run_id}/layers/{LAYER}/neurons"
    best = client.get(f"{base}/3/concept", params={"q": "striped"}).json()
    assert best["rank"] == 1 and best["n_units"] == 2048
    other = client.get(f"{base}/4/concept", params={"q": "striped"}).json()
    assert other["rank"] > 1 and other["score"] < best["score"]


def test_concept_search_rejects_blank_and_explains_missing_artifacts(client: TestClient, dashboard: Dashboard) -> None:
    url = f"/api/v1/runs/{dashboard.newer.run_id}/layers/fc/concepts"
    blank = client.get(url, params={"q": "   "})
    assert blank.status_code == 422 and "Type a concept" in blank.json()["detail"]
    normalisers = dashboard.older.artifacts_dir / "log_normalisers.pt"
    normalisers.rename(normalisers.with_suffix(".moved"))
    try:
        response = client.get(f"/api/v1/runs/{dashboard.older.run_id}/layers/fc/concepts", params={"q": "sky"})
    finally:
        normalisers.with_suffix(".moved").rename(normalisers)
    assert response.status_code == 422 and "log_normalisers.pt" in response.json()["detail"]


def test_typed_concepts_are_kept_once_and_relabel_queues_extended_vocabulary(
    client: TestClient, dashboard: Dashboard
) -> None:
    run_id = dashboard.older.run_id
    url = f"/api/v1/runs/{run_id}/typed-concepts"
    assert client.post(url, data={"text": "zebra  stripes"}).status_code == 201
    assert client.post(url, data={"text": "zebra stripes"}).status_code == 201
    assert [row["text"] for row in client.get(url).json()["items"]] == ["zebra stripes"]
    created = client.post(f"/api/v1/runs/{run_id}/relabel")
    assert created.status_code == 201
    job = client.get(created.json()["api_url"]).json()
    assert job["status"] == "queued" and job["model"] == "tinynet" and job["layers"] == ["conv1", "fc"]
    with Session(dashboard.engine) as session:
        params = session.get(Job, job["id"]).params
    words = (dashboard.settings.data_dir / params["concepts"]).read_text().split("\n")  # stored relative
    assert words[:3] == ["grass", "sky", "fur"] and "zebra stripes" in words
    assert params["encoder"] == "fake:encoder" and params["similarity_params"]["top_k"] == 10


def test_relabel_without_typed_concepts_is_refused(client: TestClient, dashboard: Dashboard) -> None:
    with Session(dashboard.engine) as session:
        typed = session.scalar(select(func.count()).where(TypedConcept.run_id == dashboard.newer.run_id))
    assert typed == 0
    response = client.post(f"/api/v1/runs/{dashboard.newer.run_id}/relabel")
    assert response.status_code == 422 and "no typed concepts" in response.json()["detail"]


# --- jobs ------------------------------------------------------------------------------------------------------


def test_jobs_can_be_read_and_cancelled(client: TestClient, dashboard: Dashboard) -> None:
    created = upload(client, checkpoint_bytes(TinyNet().state_dict())).json()
    job = client.get(f"/api/v1/jobs/{created['job_id']}").json()
    assert job["status"] == "queued" and job["finished"] is False
    assert any(item["id"] == job["id"] for item in client.get("/api/v1/jobs").json()["items"])
    cancelled = client.post(f"/api/v1/jobs/{job['id']}/cancel").json()
    assert cancelled["status"] == "cancelled" and cancelled["finished"] is True
    again = client.post(f"/api/v1/jobs/{job['id']}/cancel")
    assert again.status_code == 200  # cancelling a cancelled job is a no-op
    assert client.post("/api/v1/jobs/9999/cancel").status_code == 404


# --- uploads -------------------------------------------------------------------------------------------------


def test_upload_of_a_fitting_checkpoint_queues_a_job(client: TestClient, dashboard: Dashboard) -> None:
    response = upload(client, checkpoint_bytes({"state_dict": TinyNet().state_dict()}), filename="my net.pt")
    assert response.status_code == 201, response.text
    body = response.json()
    assert response.headers["location"] == body["api_url"] == f"/api/v1/jobs/{body['job_id']}"
    with Session(dashboard.engine) as session:
        params = session.get(Job, body["job_id"]).params
    assert params["model"] == "tinynet" and params["layers"] == ["conv", "fc"] and params["weights"] == "none"
    checkpoint = dashboard.settings.data_dir / params["checkpoint"]  # stored relative to the data folder
    assert checkpoint.is_file() and checkpoint.name == "my_net.pt"
    assert not list((dashboard.settings.data_dir / "checkpoints").glob(".upload-*"))


@pytest.mark.parametrize(
    ("content", "filename", "fields", "status", "words"),
    [
        (b"not a checkpoint at all", "junk.pt", {}, 400, ["weights_only=True", "'junk.pt'"]),
        (checkpoint_bytes(TinyNet(width=6).state_dict()), "wide.pt", {}, 422, ["does not fit tinynet", "Wrong shapes"]),
        (
            checkpoint_bytes({"conv.weight": torch.zeros(4, 3, 3, 3), "head.bias": torch.zeros(3)}),
            "partial.pt",
            {},
            422,
            ["Missing keys (3)", "Unexpected keys (1): head.bias"],
        ),
        (checkpoint_bytes([1, 2, 3]), "list.pt", {}, 400, ["not a state dict"]),
        (b"weights", "model.onnx", {}, 400, ["not a checkpoint", ".safetensors"]),
        (b"", "empty.pt", {}, 400, ["empty"]),
        (
            checkpoint_bytes(TinyNet().state_dict()),
            "tiny.pt",
            {"architecture": "resnet999"},
            422,
            ["Unknown architecture"],
        ),
        (checkpoint_bytes(TinyNet().state_dict()), "tiny.pt", {"layers": ["nope"]}, 422, ["no layer 'nope'"]),
        (checkpoint_bytes(TinyNet().state_dict()), "tiny.pt", {"probe": "/no/such/folder"}, 422, ["does not exist"]),
    ],
)
def test_bad_uploads_are_explained_and_nothing_is_stored(
    client: TestClient,
    dashboard: Dashboard,
    content: bytes,
    filename: str,
    fields: dict[str, object],
    status: int,
    words: list[str],
) -> None:
    jobs_before, files_before = count_jobs(dashboard), stored_checkpoints(dashboard)
    response = upload(client, content, filename=filename, **fields)
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert all(word in detail for word in words), detail
    assert count_jobs(dashboard) == jobs_before
    assert stored_checkpoints(dashboard) == files_before


def test_upload_over_the_size_limit_is_refused(dashboard: Dashboard) -> None:
    from dataclasses import replace

    from app.web.main import create_app
    from tests.support.dashboard_seed import fake_encoder_loader, tiny_catalog

    small = replace(dashboard.settings, upload_limit_bytes=1024)
    app = create_app(small, encoder_loader=fake_encoder_loader(), catalog=tiny_catalog())
    with TestClient(app, headers=dashboard.admin_headers) as small_client:
        jobs_before, files_before = count_jobs(dashboard), stored_checkpoints(dashboard)
        response = upload(small_client, checkpoint_bytes(TinyNet(width=64).state_dict()))
    assert response.status_code == 400 and "upload limit" in response.json()["detail"].lower()
    assert count_jobs(dashboard) == jobs_before and stored_checkpoints(dashboard) == files_before


def test_architecture_layers_as_json_or_htmx_fragment(client: TestClient) -> None:
    layers = client.get("/api/v1/architectures/tinynet/layers")
    assert [layer["name"] for layer in layers.json()["items"]] == ["conv", "pool", "fc"]
    assert "HX-Request" in layers.headers["vary"]
    fragment = client.get("/api/v1/architectures/tinynet/layers", headers={"HX-Request": "true"})
    assert fragment.headers["content-type"].startswith("text/html")
    assert 'name="layers" value="conv"' in fragment.text and "<html" not in fragment.text
    assert client.get("/api/v1/architectures").json()["items"] == ["tinynet"]
    assert client.get("/api/v1/architectures/resnet999/layers").status_code == 422


# --- media and docs ------------------------------------------------------------------------------------------


def test_media_is_served_with_immutable_cache_headers(client: TestClient, dashboard: Dashboard) -> None:
    path = dashboard.newer.media_files[0]
    response = client.get(f"/media/{path}")
    assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert response.content == (dashboard.settings.media_dir / path).read_bytes()


@pytest.mark.parametrize(
    "path",
    [
        "/media/%2e%2e/atlas.db",
        "/media/..%2fatlas.db",
        "/media/ab/..%2f..%2fatlas.db",
        "/media/%2fetc%2fpasswd",
        "/media/..%5catlas.db",
        "/media/ab/.hidden.jpg",
        "/media/ab/missing.jpg",
    ],
)
def test_media_rejects_traversal_and_missing_files(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert "SQLite" not in response.text


def test_media_does_not_follow_links_out_of_the_media_dir(client: TestClient, dashboard: Dashboard) -> None:
    link = dashboard.settings.media_dir / "zz" / "escape.jpg"
    link.parent.mkdir(exist_ok=True)
    link.symlink_to(dashboard.settings.data_dir / "atlas.db")
    assert client.get("/media/zz/escape.jpg").status_code == 404


def test_docs_work_offline_and_list_every_api_route(client: TestClient) -> None:
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert "cdn" not in docs.text.lower() and "https://" not in docs.text
    schema = client.get("/openapi.json").json()
    for path in (
        "/api/v1/runs",
        "/api/v1/runs/{run_id}/layers/{layer}/neurons",
        "/api/v1/uploads",
        "/api/v1/jobs/{job_id}",
    ):
        assert path in schema["paths"] and path in docs.text
    assert "multipart/form-data" in schema["paths"]["/api/v1/uploads"]["post"]["requestBody"]["content"]


def test_concept_search_applies_the_runs_prompt_template(client: TestClient, dashboard: Dashboard) -> None:
    seeded = seed_run(
        dashboard.engine, dashboard.settings, model_name="promptnet", layers=(LayerSpec("fc", "linear", 10),)
    )
    with write_session(dashboard.engine) as session:
        run = session.get(Run, seeded.run_id)
        run.settings = {**run.settings, "prompt_template": "a photo of {}"}
    response = client.get(f"/api/v1/runs/{seeded.run_id}/layers/fc/concepts", params={"q": "fur"})
    assert response.status_code == 200 and response.json()["concept"] == "fur"
    assert ["a photo of fur"] in dashboard.encoder.calls


def test_immutable_answers_are_cached_but_typed_concepts_stay_live(client: TestClient, dashboard: Dashboard) -> None:
    url = f"/api/v1/runs/{dashboard.newer.run_id}/layers/fc/neurons/2"
    first, second = client.get(url), client.get(url)
    assert first.content == second.content and second.headers["vary"] == "HX-Request"
    layer_page = client.get(f"/runs/{dashboard.newer.run_id}/layers/fc").text
    assert f'hx-get="/runs/{dashboard.newer.run_id}/typed-concepts" hx-trigger="load' in layer_page


def test_grid_images_in_the_neuron_list_carry_only_the_card_fields(client: TestClient, dashboard: Dashboard) -> None:
    """The grid reuses each neuron's full top images; the list must still serialise them as GridImage."""
    neuron = client.get(neurons_url(dashboard.newer.run_id), params={"limit": 1}).json()["items"][0]
    assert len(neuron["top_images"]) == 5
    assert set(neuron["top_images"][0]) == {"rank", "image_index", "activation", "crop_url"}


def test_run_search_and_layer_filter_apply_the_same_rule(client: TestClient, dashboard: Dashboard) -> None:
    run_id = dashboard.newer.run_id
    for q in ("sky", "SKY", "#3", "3"):  # each matches fewer than the 500 one page holds
        hits = client.get(f"/api/v1/runs/{run_id}/search", params={"q": q, "limit": 500}).json()["items"]
        from_search = {(hit["layer"], hit["unit"]) for hit in hits}
        from_layers = set()
        for layer in client.get(f"/api/v1/runs/{run_id}/layers").json()["items"]:
            page = client.get(f"/api/v1/runs/{run_id}/layers/{layer['name']}/neurons", params={"q": q, "limit": 500})
            from_layers |= {(layer["name"], neuron["unit"]) for neuron in page.json()["items"]}
        assert from_search == from_layers and from_search, q


def test_a_chunked_upload_is_cut_off_at_the_limit(dashboard: Dashboard) -> None:
    """A body without a Content-Length (chunked) is counted as it arrives and refused once past the limit."""
    from dataclasses import replace

    from app.web.main import create_app
    from tests.support.dashboard_seed import fake_encoder_loader, tiny_catalog

    small = replace(dashboard.settings, upload_limit_bytes=1 << 20)
    app = create_app(small, encoder_loader=fake_encoder_loader(), catalog=tiny_catalog())
    boundary = "atlasboundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="checkpoint"; filename="big.pt"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()

    def body() -> Iterator[bytes]:
        yield head
        for _ in range(8):  # 8 MB of file, no Content-Length
            yield b"\0" * (1 << 20)
        yield f"\r\n--{boundary}--\r\n".encode()

    headers = {**dashboard.admin_headers, "Content-Type": f"multipart/form-data; boundary={boundary}"}
    with TestClient(app) as small_client:
        jobs_before, files_before = count_jobs(dashboard), stored_checkpoints(dashboard)
        response = small_client.post("/api/v1/uploads", content=body(), headers=headers)
    assert response.status_code == 400 and "while it was arriving" in response.json()["detail"], response.text
    assert count_jobs(dashboard) == jobs_before and stored_checkpoints(dashboard) == files_before


def test_times_read_the_same_when_created_and_when_listed(client: TestClient, dashboard: Dashboard) -> None:
    url = f"/api/v1/runs/{dashboard.newer.run_id}/typed-concepts"
    created = client.post(url, data={"text": "timestamp check"})
    assert created.status_code == 201
    listed = next(row for row in client.get(url).json()["items"] if row["text"] == "timestamp check")
    assert listed["created_at"] == created.json()["created_at"] and listed["created_at"].endswith("Z")
    job = client.post(f"/api/v1/runs/{dashboard.newer.run_id}/relabel").json()
    assert client.get(job["api_url"]).json()["created_at"].endswith("Z")
    assert all(row["created_at"].endswith("Z") for row in client.get("/api/v1/jobs").json()["items"])
    assert all(run["created_at"].endswith("Z") for run in client.get("/api/v1/runs").json()["items"])
