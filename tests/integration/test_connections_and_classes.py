"""A neuron's inputs and outputs, class pages, "why this prediction" and the weight finding, through the real app
on a run whose outputs and connections were stored through the writer (tests/support/wiring_seed.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from fastapi.testclient import TestClient

from tests.support.dashboard_seed import N_IMAGES, Dashboard, build_dashboard, seeded_label
from tests.support.wiring_seed import (
    ATTRIBUTION_IMAGES,
    CLASS_NAMES,
    CURVE,
    STRONG_UNIT,
    classifier_inputs,
    classifier_weight,
    write_wiring,
)

N_CLASSES = len(CLASS_NAMES)
LINK_FIELDS = {"layer", "unit", "label", "reliable", "verdict", "weight", "kind", "class_index", "class_name"}


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    """The two seeded runs; the newer has outputs, connections, a weight finding and class names."""
    seeded = build_dashboard(tmp_path_factory.mktemp("wiring") / "data")
    write_wiring(seeded.newer, seeded.engine)
    yield seeded
    seeded.engine.dispose()


def api(dashboard: Dashboard, path: str, run_id: int | None = None) -> str:
    return f"/api/v1/runs/{dashboard.newer.run_id if run_id is None else run_id}{path}"


def test_a_class_unit_lists_what_feeds_it_by_weight(client: TestClient, dashboard: Dashboard) -> None:
    body = client.get(api(dashboard, "/layers/fc/neurons/2/connections")).json()
    assert body["outputs"] == []
    inputs = body["inputs"]
    assert len(inputs) == 20 and set(inputs[0]) >= LINK_FIELDS
    weights = classifier_weight()[2]
    assert (inputs[0]["layer"], inputs[0]["unit"], inputs[0]["kind"]) == ("blocks.3", STRONG_UNIT, "weight")
    assert inputs[0]["weight"] == pytest.approx(float(weights[STRONG_UNIT]))
    assert inputs[0]["label"] == seeded_label(STRONG_UNIT, False) and inputs[0]["class_name"] is None
    expected = weights.abs().argsort(descending=True, stable=True)[:20].tolist()
    assert [link["unit"] for link in inputs] == expected
    assert [link["weight"] for link in inputs] == pytest.approx(weights[expected].tolist())


def test_an_upstream_unit_lists_the_classes_it_feeds_and_its_attributed_inputs(
    client: TestClient, dashboard: Dashboard
) -> None:
    body = client.get(api(dashboard, f"/layers/blocks.3/neurons/{STRONG_UNIT}/connections")).json()
    outputs = body["outputs"]
    assert [link["class_index"] for link in outputs] == list(range(N_CLASSES))[::-1]  # weight 2 + c/10: 9 first
    assert [link["class_name"] for link in outputs] == list(CLASS_NAMES)[::-1]
    assert all(link["layer"] == "fc" and link["kind"] == "weight" for link in outputs)
    assert outputs[0]["weight"] == pytest.approx(2.9)
    inputs = body["inputs"]
    assert len(inputs) == 20 and all(link["kind"] == "attribution" and link["layer"] == "conv1" for link in inputs)
    assert all(link["n_images"] == ATTRIBUTION_IMAGES for link in inputs)
    assert [abs(link["weight"]) for link in inputs] == sorted((abs(link["weight"]) for link in inputs), reverse=True)


def test_a_negative_link_keeps_its_sign(client: TestClient, dashboard: Dashboard) -> None:
    first = client.get(api(dashboard, "/layers/blocks.3/neurons/0/connections")).json()["inputs"][0]
    assert (first["layer"], first["unit"], first["weight"]) == ("conv1", 3, pytest.approx(-5.0))


def test_a_run_without_connections_answers_empty_lists(client: TestClient, dashboard: Dashboard) -> None:
    body = client.get(api(dashboard, "/layers/conv1/neurons/0/connections", dashboard.older.run_id)).json()
    assert body["inputs"] == [] and body["outputs"] == []


def test_class_contributions_are_the_weights_times_the_mean_features_by_hand(
    client: TestClient, dashboard: Dashboard
) -> None:
    weight, inputs = classifier_weight(), classifier_inputs().to(torch.float16).float()
    for class_index in (0, 2, 9):
        body = client.get(api(dashboard, f"/classes/{class_index}")).json()
        predicted = [image for image in range(N_IMAGES) if image % N_CLASSES == class_index]
        assert body["class_index"] == class_index and body["class_name"] == CLASS_NAMES[class_index]
        assert body["n_predicted"] == len(predicted)
        by_hand = [
            float(weight[class_index, unit]) * sum(float(inputs[image, unit]) for image in predicted) / len(predicted)
            for unit in range(weight.shape[1])
        ]
        positive = sum(value for value in by_hand if value > 0)
        units = body["units"]
        assert len(units) == 20 and units[0]["unit"] == STRONG_UNIT and units[0]["layer"] == "blocks.3"
        assert {"layer", "unit", "label", "reliable", "verdict", "contribution", "share"} <= set(units[0])
        for unit in units:
            assert unit["contribution"] == pytest.approx(by_hand[unit["unit"]], rel=1e-4, abs=1e-6)
            assert unit["share"] == pytest.approx(by_hand[unit["unit"]] / positive, rel=1e-4, abs=1e-6)
        assert [unit["unit"] for unit in units] == sorted(range(len(by_hand)), key=lambda j: -by_hand[j])[:20]
        assert {image["image_index"] for image in body["predicted_images"]} == set(predicted)


def test_the_class_list_counts_predictions_names_the_top_unit_and_searches(
    client: TestClient, dashboard: Dashboard
) -> None:
    body = client.get(api(dashboard, "/classes")).json()
    assert [item["class_name"] for item in body["items"]] == list(CLASS_NAMES)
    assert sum(item["n_predicted"] for item in body["items"]) == N_IMAGES
    assert all(item["top_unit"]["unit"] == STRONG_UNIT for item in body["items"])
    found = client.get(api(dashboard, "/classes"), params={"q": "DENIM"}).json()["items"]
    assert [item["class_index"] for item in found] == [2]


def test_a_run_without_classifier_outputs_is_a_404_saying_to_dissect_again(
    client: TestClient, dashboard: Dashboard
) -> None:
    for prefix in ("/api/v1", ""):
        for path in ("/classes", "/classes/0"):
            answer = client.get(f"{prefix}/runs/{dashboard.older.run_id}{path}")
            assert answer.status_code == 404
            assert "no classifier outputs" in answer.text and "dissect the model again" in answer.text
    answer = client.get(api(dashboard, f"/classes/{N_CLASSES}"))
    assert answer.status_code == 404 and f"classes 0–{N_CLASSES - 1}" in answer.text


def test_the_image_view_explains_its_prediction(client: TestClient, dashboard: Dashboard) -> None:
    image = 13
    view = client.get(api(dashboard, f"/images/{image}")).json()
    prediction = view["prediction"]
    assert len(prediction) == 5 and set(prediction[0]) >= {"class_index", "class_name", "probability"}
    assert prediction[0]["class_index"] == image % N_CLASSES and prediction[0]["probability"] > 0.99
    assert prediction[0]["class_name"] == CLASS_NAMES[image % N_CLASSES]
    top = image % N_CLASSES
    by_hand = classifier_weight()[top] * classifier_inputs().to(torch.float16).float()[image]
    why = view["why"]
    assert {"layer", "unit", "label", "contribution"} <= set(why[0]) and why[0]["unit"] == STRONG_UNIT
    assert [unit["unit"] for unit in why] == by_hand.argsort(descending=True, stable=True)[: len(why)].tolist()
    assert why[0]["contribution"] == pytest.approx(float(by_hand[STRONG_UNIT]))
    older = client.get(api(dashboard, f"/images/{image}", dashboard.older.run_id)).json()
    assert older["prediction"] == [] and older["why"] == []


def test_the_run_answers_its_weight_finding(client: TestClient, dashboard: Dashboard) -> None:
    body = client.get(api(dashboard, "")).json()
    assert body["weight_concept_agreement"] == [
        {
            "from_layer": "blocks.3",
            "to_layer": "fc",
            "pearson_r": 0.12,
            "p_value": 0.01,
            "top_unit_r": 0.386,
            "all_pairs_mean": 0.5,
            "curve": [{"k": k, "mean_similarity": mean} for k, mean in CURVE],
        }
    ]
    assert client.get(f"/api/v1/runs/{dashboard.older.run_id}").json()["weight_concept_agreement"] == []


def test_the_pages_show_connections_classes_prediction_and_the_chart(client: TestClient, dashboard: Dashboard) -> None:
    run_id = dashboard.newer.run_id
    neuron = client.get(f"/runs/{run_id}/layers/fc/neurons/2").text
    assert f'hx-get="/runs/{run_id}/layers/fc/neurons/2/connections"' in neuron
    assert f'href="/runs/{run_id}/classes/2"' in neuron  # the class name links its page
    connections = f"/runs/{run_id}/layers/blocks.3/neurons/{STRONG_UNIT}/connections"
    panel = client.get(connections, headers={"HX-Request": "true"})
    assert "Inputs / Outputs" in panel.text and f'href="/runs/{run_id}/classes/9"' in panel.text
    assert f"n={ATTRIBUTION_IMAGES}" in panel.text and "<html" not in panel.text
    full = client.get(connections).text
    assert "<html" in full and "What it feeds" in full
    classes = client.get(f"/runs/{run_id}/classes?q=jean").text
    assert "jean, blue jean, denim" in classes and "goldfinch" not in classes
    page = client.get(f"/runs/{run_id}/classes/0").text
    assert "goldfinch" in page and f'href="/runs/{run_id}/layers/blocks.3/neurons/{STRONG_UNIT}"' in page
    assert f'href="/runs/{run_id}/images/10"' in page
    image = client.get(f"/runs/{run_id}/images/13").text
    assert "Why this prediction" in image and CLASS_NAMES[3] in image
    run_page = client.get(f"/runs/{run_id}").text
    assert f'href="/runs/{run_id}/classes"' in run_page and "agreement-chart" in run_page
    layer = client.get(f"/runs/{run_id}/layers/fc").text
    assert f'href="/runs/{run_id}/classes/4"' in layer and "water ouzel" in layer
    older = client.get(f"/runs/{dashboard.older.run_id}").text
    assert "/classes" not in older and "agreement-chart" not in older
