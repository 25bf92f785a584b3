"""Issue #25, the API's conventions: one envelope (`items`, `total`, `offset`, `limit`, `next`) for every JSON list,
paging that walks all 1,280 units of a layer ranked by a concept (once capped at 500), CORS for the origins
NEURON_ATLAS_CORS_ORIGINS lists (off by default), and request/response examples in /openapi.json and /docs."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from fastapi.testclient import TestClient
from markupsafe import escape

from app.core.config import Settings
from app.web.main import create_app
from tests.support.dashboard_seed import Dashboard, LayerSpec, fake_encoder_loader, seed_run, tiny_catalog

WIDE = LayerSpec("conv_head", "conv", 1280)
NOTEBOOK = "https://notebooks.example.org"


@pytest.fixture(scope="module")
def wide_run(dashboard: Dashboard) -> int:
    """A run whose one layer has 1,280 units, like EfficientNet's conv_head."""
    return seed_run(dashboard.engine, dashboard.settings, model_name="widenet", layers=(WIDE,)).run_id


def app_client(dashboard: Dashboard, settings: Settings) -> TestClient:
    app = create_app(settings, encoder_loader=fake_encoder_loader(dashboard.encoder), catalog=tiny_catalog())
    return TestClient(app, headers=dashboard.admin_headers)


def walk(client: TestClient, url: str) -> Iterator[dict[str, Any]]:
    """Yield every page of a list, following `next` from `url`."""
    next_url: str | None = url
    while next_url is not None:
        answer = client.get(next_url)
        assert answer.status_code == 200, answer.text
        page = answer.json()
        yield page
        next_url = page["next"]


def test_a_concept_ranking_pages_through_all_1280_units_of_a_layer(
    client: TestClient, dashboard: Dashboard, wide_run: int
) -> None:
    url = f"/api/v1/runs/{wide_run}/layers/{WIDE.name}/concepts?q=striped&limit=500"
    pages = list(walk(client, url))

    assert [len(page["items"]) for page in pages] == [500, 500, 280]
    assert {page["total"] for page in pages} == {1280}
    assert [page["offset"] for page in pages] == [0, 500, 1000]
    hits = [hit for page in pages for hit in page["items"]]
    assert sorted(hit["unit"] for hit in hits) == list(range(1280))
    assert [hit["rank"] for hit in hits] == list(range(1, 1281))
    scores = [hit["score"] for hit in hits]
    assert scores == sorted(scores, reverse=True)
    assert client.get(url.replace("limit=500", "limit=501")).status_code == 422  # a page holds at most 500


def test_a_layers_neurons_page_through_all_1280_units(client: TestClient, wide_run: int) -> None:
    pages = list(walk(client, f"/api/v1/runs/{wide_run}/layers/{WIDE.name}/neurons?limit=500&sort=-score"))

    assert sorted(neuron["unit"] for page in pages for neuron in page["items"]) == list(range(1280))
    assert pages[-1]["next"] is None and all("sort=-score" in page["next"] for page in pages[:-1])


def test_every_json_list_answers_the_one_envelope(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    bare, enveloped = [], []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            answer = operation.get("responses", {}).get("200", {}).get("content", {}).get("application/json", {})
            shape = answer.get("schema", {})
            if shape.get("type") == "array":
                bare.append(f"{method.upper()} {path}")
            if "$ref" in shape:
                properties = schema["components"]["schemas"][shape["$ref"].rsplit("/", 1)[1]]["properties"]
                if {"items", "total", "offset", "limit", "next"} <= set(properties):
                    enveloped.append(path)
    assert bare == []
    for path in ("/api/v1/runs", "/api/v1/jobs", "/api/v1/runs/{run_id}/layers/{layer}/neurons", "/api/v1/encoders"):
        assert path in enveloped, path


@pytest.mark.parametrize(
    ("path", "method", "status"),
    [
        ("/api/v1/runs", "get", "200"),
        ("/api/v1/runs/{run_id}/layers/{layer}/neurons", "get", "200"),
        ("/api/v1/runs/{run_id}/layers/{layer}/neurons/{unit}", "get", "200"),
        ("/api/v1/runs/{run_id}/layers/{layer}/concepts", "get", "200"),
        ("/api/v1/runs", "post", "201"),
    ],
)
def test_the_main_operations_carry_examples_that_docs_shows(
    client: TestClient, path: str, method: str, status: str
) -> None:
    operation = client.get("/openapi.json").json()["paths"][path][method]
    examples = operation["responses"][status]["content"]["application/json"]["examples"]

    assert examples and all(example["value"] for example in examples.values())
    docs = client.get("/docs").text
    assert all(f"{status} answer: {escape(example['summary'])}" in docs for example in examples.values())


def test_the_push_request_body_has_an_example(client: TestClient) -> None:
    body = client.get("/openapi.json").json()["paths"]["/api/v1/runs"]["post"]["requestBody"]
    assert body["content"]["multipart/form-data"]["examples"]
    assert "example request: tar -czf run.tar.gz" in client.get("/docs").text


def test_cors_is_off_by_default(client: TestClient, dashboard: Dashboard) -> None:
    answer = client.get("/api/v1/runs", headers={"Origin": NOTEBOOK})
    assert answer.status_code == 200 and "access-control-allow-origin" not in answer.headers


def test_cors_answers_a_listed_origin_and_no_other(dashboard: Dashboard) -> None:
    settings = replace(dashboard.settings, cors_origins=(NOTEBOOK,))
    with app_client(dashboard, settings) as client:
        listed = client.get("/api/v1/runs", headers={"Origin": NOTEBOOK})
        other = client.get("/api/v1/runs", headers={"Origin": "https://elsewhere.example.com"})
        preflight = client.options(
            "/api/v1/runs",
            headers={
                "Origin": NOTEBOOK,
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "Authorization",
            },
        )
        write = client.options("/api/v1/runs", headers={"Origin": NOTEBOOK, "Access-Control-Request-Method": "POST"})
    assert listed.headers["access-control-allow-origin"] == NOTEBOOK
    assert "access-control-allow-credentials" not in listed.headers  # never with the session cookie
    assert "access-control-allow-origin" not in other.headers
    assert preflight.status_code == 200 and preflight.headers["access-control-allow-origin"] == NOTEBOOK
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
    assert write.status_code == 400  # reads only: a page elsewhere cannot push


def test_cors_origins_are_read_from_the_environment_and_checked(tmp_path) -> None:
    env = {"NEURON_ATLAS_DATA_DIR": str(tmp_path), "NEURON_ATLAS_CORS_ORIGINS": f"{NOTEBOOK}, http://localhost:8888"}
    assert Settings.from_env(env).cors_origins == (NOTEBOOK, "http://localhost:8888")
    assert Settings.from_env({"NEURON_ATLAS_DATA_DIR": str(tmp_path)}).cors_origins == ()
    from app.core.errors import AtlasError

    with pytest.raises(AtlasError, match="not an origin"):
        Settings.from_env({**env, "NEURON_ATLAS_CORS_ORIGINS": "notebooks.example.org/path"})
