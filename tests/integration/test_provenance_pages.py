"""Which weights a run used, everywhere (#26): the runs list and run detail API, the home table, the run page, the
compare page and the JSON export."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.support.dashboard_seed import Dashboard

RANDOM = {"kind": "random", "name": None, "seed": 0, "sha256": None, "file_name": None}


def test_the_api_the_pages_and_the_export_name_the_weights(client: TestClient, dashboard: Dashboard) -> None:
    run_id, other_id = dashboard.newer.run_id, dashboard.older.run_id
    listed = client.get("/api/v1/runs").json()["items"]
    assert all(run["weights"] == RANDOM and run["weights_label"] == "random (none@0)" for run in listed)
    detail = client.get(f"/api/v1/runs/{run_id}").json()
    assert detail["weights"] == RANDOM and detail["weights_label"] == "random (none@0)"
    assert 'class="small muted run-weights"' in client.get("/").text
    assert '<span id="run-weights" title="">random (none@0)</span>' in client.get(f"/runs/{run_id}").text
    compare = client.get(f"/runs/{run_id}/compare?other={other_id}").text
    assert f"weights: #{run_id} random (none@0) → #{other_id} random (none@0)" in compare
    exported = client.get(f"/api/v1/runs/{run_id}/export?format=json").json()
    assert exported["run"]["weights"] == RANDOM
