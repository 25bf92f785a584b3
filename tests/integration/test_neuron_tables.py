"""The neuron page's tables written after a run is stored: the panels read from them answer exactly what the
activations give on a first request, without reading the activations; a run stored before them still computes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from app.jobs.runs.neuron_tables import write_neuron_tables
from app.persistence.store.layout import ArtifactsLayout
from app.read.artifacts.reader import ArtifactsReader
from tests.support.dashboard_seed import Dashboard, build_dashboard
from tests.support.distribution_seed import DEAD_UNIT, RAMP_UNIT, write_seeded_activations

UNITS = [("conv1", RAMP_UNIT), ("conv1", DEAD_UNIT), ("blocks.3", 5), ("fc", 3)]


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    """The two seeded runs; the newer keeps activations, and no tables yet."""
    seeded = build_dashboard(tmp_path_factory.mktemp("neuron-tables") / "data")
    write_seeded_activations(seeded.newer)
    yield seeded
    seeded.engine.dispose()


def panels(dashboard: Dashboard) -> dict[tuple[str, int], dict]:
    """Return the distribution JSON of UNITS from a fresh app (nothing cached)."""
    run_id = dashboard.newer.run_id
    with TestClient(dashboard.app()) as client:
        return {
            (layer, unit): client.get(f"/api/v1/runs/{run_id}/layers/{layer}/neurons/{unit}/distribution").json()
            for layer, unit in UNITS
        }


def test_stored_tables_answer_what_the_activations_give_without_reading_them(
    dashboard: Dashboard, monkeypatch: pytest.MonkeyPatch
) -> None:
    computed = panels(dashboard)  # a run stored before tables were kept: built from its activations
    assert computed[("conv1", RAMP_UNIT)]["similar_in_layer"] and computed[("conv1", DEAD_UNIT)]["constant"]

    written = write_neuron_tables(dashboard.settings, dashboard.engine, dashboard.newer.run_id)
    layout = ArtifactsLayout(dashboard.newer.artifacts_dir)
    assert written == ["conv1", "blocks.3", "fc"]
    assert all(layout.distribution_tables(name).is_file() for name in written)

    def no_activations(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("a stored run's panels must not read its activations")

    monkeypatch.setattr(ArtifactsReader, "activation_rows", no_activations)
    assert panels(dashboard) == computed


def test_a_run_without_activations_gets_no_tables_and_still_says_why(dashboard: Dashboard) -> None:
    assert write_neuron_tables(dashboard.settings, dashboard.engine, dashboard.older.run_id) == []
    with TestClient(dashboard.app()) as client:
        body = client.get(f"/api/v1/runs/{dashboard.older.run_id}/layers/conv1/neurons/0/distribution").json()
    assert "dissect the model again" in body["unavailable"]


def test_a_damaged_tables_file_is_built_again(dashboard: Dashboard) -> None:
    write_neuron_tables(dashboard.settings, dashboard.engine, dashboard.newer.run_id)
    expected = panels(dashboard)
    ArtifactsLayout(dashboard.newer.artifacts_dir).distribution_tables("conv1").write_bytes(b"not a tensor file")
    assert panels(dashboard) == expected
