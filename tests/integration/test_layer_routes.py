"""Every page and API route under a layer answers for layer names with dots (`blocks.3`, `layer4.1.conv2`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from app.web.main import ROUTERS
from tests.support.dashboard_seed import Dashboard, LayerSpec, seed_run

DOTTED_LAYERS = (LayerSpec("blocks.3", "vit", 16), LayerSpec("layer4.1.conv2", "conv", 16))
MODEL = "dottednet"
#: Values for the path parameters besides the run and the layer, and for the required query parameters.
PATH = {"unit": 2, "rank": 1, "file_name": "crop.jpg", "model_name": MODEL}
QUERY = {"q": "fur"}


def layer_routes() -> list[APIRoute]:
    """Return the app's GET routes whose path names a layer, pages and API alike."""
    return [
        route
        for router in ROUTERS
        for route in router.routes
        if isinstance(route, APIRoute) and "GET" in (route.methods or ()) and "{layer" in route.path
    ]


@pytest.fixture(scope="module")
def dotted(dashboard: Dashboard) -> Iterator[int]:
    """The id of a run whose layers' names hold dots."""
    yield seed_run(dashboard.engine, dashboard.settings, model_name=MODEL, layers=DOTTED_LAYERS).run_id


def test_layer_routes_take_one_path_segment() -> None:
    assert len(layer_routes()) >= 12  # the layer, its neurons, concepts, one neuron, its panels and top images
    assert not [route.path for route in layer_routes() if ":path}" in route.path]


@pytest.mark.parametrize("layer", [spec.name for spec in DOTTED_LAYERS])
@pytest.mark.parametrize("route", layer_routes(), ids=lambda route: f"{sorted(route.methods)[0]} {route.path}")
def test_a_dotted_layer_name_routes(client: TestClient, dotted: int, route: APIRoute, layer: str) -> None:
    path = route.path.format(run_id=dotted, layer=layer, **PATH)
    required = [param.name for param in route.dependant.query_params if param.field_info.is_required()]
    response = client.get(path, params={name: QUERY[name] for name in required}, follow_redirects=False)
    if "{model_name}" in route.path:
        assert response.status_code == 307, response.text
        assert response.headers["location"].endswith(f"/runs/{dotted}/layers/{layer}/neurons/{PATH['unit']}")
    else:
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("image/") or layer in response.text
