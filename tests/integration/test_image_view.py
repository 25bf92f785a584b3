"""The image view through the real app: per layer the units a constructed image drives most, its 404 and its JSON."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.support.dashboard_seed import N_IMAGES, Dashboard, build_dashboard
from tests.support.image_activations import IMAGE, LOUD, rare_units, write_activations


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    """Two seeded runs; the newer keeps activations, the older was stored before activations were kept."""
    seeded = build_dashboard(tmp_path_factory.mktemp("image-view") / "data")
    write_activations(seeded.newer)
    yield seeded
    seeded.engine.dispose()


def test_each_layer_lists_the_units_the_image_drives(client: TestClient, dashboard: Dashboard) -> None:
    run = dashboard.newer
    view = client.get(f"/api/v1/runs/{run.run_id}/images/{IMAGE}").json()
    assert view["image_index"] == IMAGE and view["n_images"] == N_IMAGES and view["file_name"] == f"{IMAGE}.jpg"
    assert view["previous_image"] == IMAGE - 1 and view["next_image"] == IMAGE + 1
    assert view["view_url"].startswith("/media/") and view["permalink"] == f"/runs/{run.run_id}/images/{IMAGE}"
    assert [layer["layer"] for layer in view["layers"]] == [layer.name for layer in run.layers]
    for layer in view["layers"]:
        assert layer["unavailable"] is None
        loud = [unit["unit"] for unit in layer["by_activation"]]
        assert loud == list(LOUD), layer["layer"]
        expected = set(rare_units(layer["n_units"]))  # fc has 10 units: 2 rare ones, then loud ones
        rare = layer["by_unusualness"][: len(expected)]
        assert len(layer["by_unusualness"]) == 8 and {unit["unit"] for unit in rare} == expected, layer["layer"]
        assert all(unit["percentile"] == pytest.approx(100 * (N_IMAGES - 0.5) / N_IMAGES) for unit in rare)
        assert all(unit["z_score"] > 9 and unit["activation"] == pytest.approx(1.0) for unit in rare)
        assert [unit["z_score"] for unit in rare] == sorted((unit["z_score"] for unit in rare), reverse=True)
        first = layer["by_activation"][0]
        assert first["activation"] == pytest.approx(20.0, abs=0.05) and abs(first["z_score"]) < 4
        assert first["neuron_url"] == f"/runs/{run.run_id}/layers/{layer['layer']}/neurons/5"
        assert first["label"] == "dotted"  # the seeded label of unit 5


def test_the_page_shows_the_image_and_links_its_units(client: TestClient, dashboard: Dashboard) -> None:
    run = dashboard.newer
    html = client.get(f"/runs/{run.run_id}/images/{IMAGE}").text
    assert f"probe image {IMAGE} of {N_IMAGES}" in html and f"{IMAGE}.jpg" in html
    for neighbour in (IMAGE - 1, IMAGE + 1):
        assert f'href="/runs/{run.run_id}/images/{neighbour}"' in html
    assert f'href="/runs/{run.run_id}/layers/blocks.3/neurons/5"' in html
    assert "Top 8 by activation" in html and "by how unusual" in html
    assert str(dashboard.settings.data_dir) not in html and "probe/17.jpg" not in html


def test_the_first_and_last_images_have_one_neighbour(client: TestClient, dashboard: Dashboard) -> None:
    run = dashboard.newer
    first = client.get(f"/api/v1/runs/{run.run_id}/images/0").json()
    last = client.get(f"/api/v1/runs/{run.run_id}/images/{N_IMAGES - 1}").json()
    assert first["previous_image"] is None and first["next_image"] == 1
    assert last["previous_image"] == N_IMAGES - 2 and last["next_image"] is None


@pytest.mark.parametrize("prefix", ["", "/api/v1"])
def test_an_index_out_of_range_is_a_404_naming_the_range(client: TestClient, dashboard: Dashboard, prefix: str) -> None:
    response = client.get(f"{prefix}/runs/{dashboard.newer.run_id}/images/{N_IMAGES}")
    assert response.status_code == 404
    assert f"probe images 0–{N_IMAGES - 1}" in response.text and f"no image {N_IMAGES}" in response.text


def test_a_run_stored_before_activations_shows_the_image_and_why(client: TestClient, dashboard: Dashboard) -> None:
    run = dashboard.older
    view = client.get(f"/api/v1/runs/{run.run_id}/images/3").json()
    assert view["view_url"] and all(layer["by_activation"] == [] for layer in view["layers"])
    assert all("dissect the model again" in layer["unavailable"] for layer in view["layers"])
    html = client.get(f"/runs/{run.run_id}/images/3").text
    assert '<img src="/media/' in html and "dissect the model again" in html
    assert str(run.artifacts_dir) not in html


def test_grid_cards_and_neuron_pages_link_each_top_image_to_its_view(client: TestClient, dashboard: Dashboard) -> None:
    run = dashboard.newer
    neuron = client.get(f"/api/v1/runs/{run.run_id}/layers/conv1/neurons/3").json()
    first_image = neuron["top_images"][0]["image_index"]
    page = client.get(f"/runs/{run.run_id}/layers/conv1/neurons/3").text
    assert f'href="/runs/{run.run_id}/images/{first_image}"' in page
    grid = client.get(f"/runs/{run.run_id}/layers/conv1").text
    assert f'href="/runs/{run.run_id}/images/{first_image}"' in grid
