"""One artifacts reader per app: the neuron page's distribution panels, the image view and the concept evidence
read a layer's stored activations from disk once between them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
import torch
from fastapi.testclient import TestClient

import app.read.artifacts.reader
from app.persistence.store.layout import ArtifactsLayout
from tests.support.dashboard_seed import Dashboard, build_dashboard
from tests.support.image_activations import IMAGE, write_activations


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    """Two seeded runs; the newer keeps every layer's activations."""
    seeded = build_dashboard(tmp_path_factory.mktemp("reader") / "data")
    write_activations(seeded.newer)
    yield seeded
    seeded.engine.dispose()


def test_every_page_reads_a_layer_once_through_the_apps_one_reader(
    dashboard: Dashboard, monkeypatch: pytest.MonkeyPatch
) -> None:
    loads: Counter[str] = Counter()
    load = app.read.artifacts.reader.load_layer_activations

    def counted(layout: ArtifactsLayout, layer: str, n_images: int | None = None) -> torch.Tensor:
        loads[layer] += 1
        return load(layout, layer, n_images)

    monkeypatch.setattr(app.read.artifacts.reader, "load_layer_activations", counted)
    web = dashboard.app()
    state = web.state
    reader = state.artifacts_reader
    assert state.concept_searcher.reader is reader
    assert state.neuron_distributions.reader is reader and state.image_views.reader is reader
    run = dashboard.newer.run_id
    with TestClient(web, headers=dashboard.admin_headers) as client:
        assert client.get(f"/api/v1/runs/{run}/images/{IMAGE}").status_code == 200  # every layer
        assert client.get(f"/api/v1/runs/{run}/layers/conv1/neurons/3/distribution").status_code == 200
        evidence = client.get(f"/api/v1/runs/{run}/layers/conv1/neurons/3/concept-evidence")
        assert evidence.status_code == 200 and evidence.json()["hit_threshold"] is not None
    assert loads == {layer.name: 1 for layer in dashboard.newer.layers}
