"""A neuron's distribution evidence through the real app: the JSON endpoint, the neuron page's histogram, bands
and similar neurons, a dead neuron, and a run stored before activations were kept."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from dissect_core.analysis.distributions import RANDOM_BAND
from tests.support.dashboard_seed import N_IMAGES, Dashboard, build_dashboard
from tests.support.distribution_seed import (
    DEAD_UNIT,
    DOUBLE_UNIT,
    OTHER_LAYER,
    OTHER_UNIT,
    RAMP_UNIT,
    write_seeded_activations,
)


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    """The two seeded runs; only the newer keeps activations (the older was stored before they were kept)."""
    seeded = build_dashboard(tmp_path_factory.mktemp("distribution") / "data")
    write_seeded_activations(seeded.newer)
    yield seeded
    seeded.engine.dispose()


@pytest.fixture(scope="module")
def client(dashboard: Dashboard) -> Iterator[TestClient]:
    """A client on the app over the seeded data."""
    with TestClient(dashboard.app()) as test_client:
        yield test_client


def api(dashboard: Dashboard, unit: int, layer: str = "conv1", run_id: int | None = None) -> str:
    run = dashboard.newer.run_id if run_id is None else run_id
    return f"/api/v1/runs/{run}/layers/{layer}/neurons/{unit}/distribution"


def test_json_has_histogram_bands_and_similar_neurons(client: TestClient, dashboard: Dashboard) -> None:
    answer = client.get(api(dashboard, RAMP_UNIT))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["n_images"] == N_IMAGES and body["constant"] is False and body["unavailable"] is None
    assert sum(body["histogram"]["counts"]) == N_IMAGES and len(body["histogram"]["counts"]) == 40
    assert body["histogram"]["low"] == pytest.approx(0.0) and body["histogram"]["high"] == pytest.approx(9.5, rel=1e-3)
    bands = body["bands"]
    assert [band["name"] for band in bands] == ["top 1%", "1–5%", "5–20%", "20–50%", RANDOM_BAND]
    # 96 images: ranks [0, 1), [1, 5), [5, 20), [20, 48); image i ramps, so rank r is image 95 - r.
    assert [(band["start"], band["stop"]) for band in bands[:4]] == [(0, 1), (1, 5), (5, 20), (20, 48)]
    assert [image["image_index"] for image in bands[0]["images"]] == [95]
    for band in bands[:4]:
        indices = [image["image_index"] for image in band["images"]]
        assert all(N_IMAGES - band["stop"] <= index < N_IMAGES - band["start"] for index in indices)
        assert indices == sorted(indices, reverse=True)
    assert all(len(band["images"]) == 6 for band in bands[2:])
    image = bands[0]["images"][0]
    assert image["view_url"].startswith("/media/") and image["image_url"] == f"/runs/{dashboard.newer.run_id}/images/95"
    assert image["activation"] == pytest.approx(9.5, rel=1e-3)
    assert len(body["top_activations"]) >= 5
    same = body["similar_in_layer"]
    assert len(same) == 10 and same[0]["unit"] == DOUBLE_UNIT and same[0]["r"] == pytest.approx(1.0, abs=1e-3)
    assert same[0]["label"] and same[0]["url"].endswith(f"/layers/conv1/neurons/{DOUBLE_UNIT}")
    assert RAMP_UNIT not in [row["unit"] for row in same] and DEAD_UNIT not in [row["unit"] for row in same]
    assert [row["r"] for row in same] == sorted((row["r"] for row in same), reverse=True)
    other = body["similar_in_other_layers"]
    assert len(other) == 10 and (other[0]["layer"], other[0]["unit"]) == (OTHER_LAYER, OTHER_UNIT)
    assert other[0]["r"] > 0.9 and all(row["layer"] != "conv1" for row in other)


def test_bands_are_the_same_on_every_request_and_differ_per_neuron(client: TestClient, dashboard: Dashboard) -> None:
    first = client.get(api(dashboard, 5, OTHER_LAYER)).json()["bands"]
    assert first == client.get(api(dashboard, 5, OTHER_LAYER)).json()["bands"]
    assert first[-1] != client.get(api(dashboard, 6, OTHER_LAYER)).json()["bands"][-1]


def test_a_dead_neuron_has_one_bar_and_no_similar_neurons(client: TestClient, dashboard: Dashboard) -> None:
    body = client.get(api(dashboard, DEAD_UNIT)).json()
    assert body["constant"] is True and body["similar_in_layer"] == [] and body["similar_in_other_layers"] == []
    assert sorted(body["histogram"]["counts"])[-1] == N_IMAGES
    html = client.get(f"/runs/{dashboard.newer.run_id}/layers/conv1/neurons/{DEAD_UNIT}/distribution").text
    assert 'id="similar-undefined"' in html


def test_the_neuron_page_loads_its_distribution_panels_after_it_shows(client: TestClient, dashboard: Dashboard) -> None:
    run = dashboard.newer.run_id
    permalink = f"/runs/{run}/layers/conv1/neurons/{RAMP_UNIT}"
    html = client.get(permalink).text
    assert f'hx-get="{permalink}/distribution" hx-trigger="load"' in html and "activation-histogram" not in html
    assert f'<a href="{permalink}/distribution">' in html  # what a browser without JavaScript follows
    fragment = client.get(f"{permalink}/distribution", headers={"HX-Request": "true"}).text
    assert fragment.lstrip().startswith('<section class="distribution" id="distribution">')
    assert "<html" not in fragment and "activation-histogram" in fragment


def test_neuron_page_shows_the_histogram_bands_and_similar_neurons(client: TestClient, dashboard: Dashboard) -> None:
    run = dashboard.newer.run_id
    html = client.get(f"/runs/{run}/layers/conv1/neurons/{RAMP_UNIT}/distribution").text
    assert "<h1>" in html or "<h1 " in html  # the whole neuron page, the panels in place
    svg = html[
        html.index('<svg class="chart activation-histogram"') : html.index("</svg>", html.index("activation-histogram"))
    ]
    assert 'role="img"' in svg and '<title id="activation-histogram-title">' in svg
    assert f"over {N_IMAGES} probe images" in svg
    assert svg.count('class="band-edge"') == 4 and svg.count('class="top-mark"') >= 5
    assert svg.count('class="band-mark"') == 1 + 4 + 6 * 3
    assert 'id="band-5"' in html and "Crop boxes and heatmaps exist only for the top images" in html
    assert f'href="/runs/{run}/images/95"' in html
    table = html[html.index('id="similar-in-layer"') : html.index("</table>", html.index('id="similar-in-layer"'))]
    assert f'href="/runs/{run}/layers/conv1/neurons/{DOUBLE_UNIT}"' in table and "1.00" in table
    assert f'href="/runs/{run}/layers/{OTHER_LAYER}/neurons/{OTHER_UNIT}"' in html
    assert re.search(r"<script", svg) is None


def test_a_run_without_activations_says_so_in_place_of_the_panels(client: TestClient, dashboard: Dashboard) -> None:
    older = dashboard.older.run_id
    answer = client.get(api(dashboard, 0, run_id=older))
    assert answer.status_code == 200
    body = answer.json()
    detail = body["unavailable"]
    assert "conv1.pt" in detail and "dissect the model again" in detail
    assert body["histogram"] is None and body["bands"] == [] and body["similar_in_layer"] == []
    html = client.get(f"/runs/{older}/layers/conv1/neurons/0/distribution").text
    notice = re.search(r'id="distribution-unavailable">([^<]*)<', html)
    assert notice is not None and "histogram, bands and similar neurons cannot be shown" in notice.group(1)
    assert str(dashboard.settings.data_dir) not in html and str(dashboard.settings.data_dir) not in detail
    assert "activation-histogram" not in html


def test_an_unknown_unit_is_not_found(client: TestClient, dashboard: Dashboard) -> None:
    answer = client.get(api(dashboard, 64))
    assert answer.status_code == 404 and "no unit 64" in answer.json()["detail"]


def test_a_warm_distribution_of_a_2048_unit_layer_is_fast(client: TestClient, dashboard: Dashboard) -> None:
    app = client.app
    distributions = app.state.neuron_distributions  # type: ignore[attr-defined]
    cache = app.state.read_cache  # type: ignore[attr-defined]
    with app.state.sessions() as session:  # type: ignore[attr-defined]
        run = cache.run(session, dashboard.newer.run_id)
        detail = cache.layer_index(session, run.id, OTHER_LAYER).detail(run, 3)
        distributions.distribution(session, run, detail)  # loads and standardises the layers once
        started = time.perf_counter()
        for _ in range(5):
            distributions.distribution(session, run, detail)
        assert (time.perf_counter() - started) / 5 < 0.05


def test_the_concept_page_shows_the_distribution_too(client: TestClient, dashboard: Dashboard) -> None:
    html = client.get(f"/runs/{dashboard.newer.run_id}/layers/conv1/neurons/{RAMP_UNIT}/concept?q=striped").text
    assert 'class="chart activation-histogram"' in html and 'id="similar-in-layer"' in html
