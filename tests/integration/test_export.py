"""A run's export through the real app: each format parsed back equals the stored run, old runs included."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.persistence.models import Layer, Neuron
from app.read.runs.export import COLUMNS
from dissect_core.results import EVALUATION_FIELDS
from tests.support.dashboard_seed import Dashboard, LayerSpec, seed_run

FLOATS = ("score", "explained_r", "p_value", "stability", "explanation_r", "ground_truth_r")


@pytest.fixture(scope="module")
def evaluated_run(dashboard: Dashboard) -> int:
    """An evaluated run (a conv and a linear layer, so ground_truth_r is both set and null)."""
    layers = (LayerSpec("conv1", "conv", 30), LayerSpec("fc", "linear", 10))
    return seed_run(dashboard.engine, dashboard.settings, model_name="evalnet", layers=layers, evaluated=True).run_id


def stored_rows(dashboard: Dashboard, run_id: int) -> list[dict[str, Any]]:
    """Return the run's neurons as the database holds them, in forward layer order then by unit."""
    columns = [getattr(Neuron, name) for name in COLUMNS if name != "layer"]
    query = (
        select(Layer.name, *columns)
        .join(Layer, Neuron.layer_id == Layer.id)
        .where(Layer.run_id == run_id)
        .order_by(Layer.position, Neuron.unit)
    )
    with Session(dashboard.engine) as session:
        return [dict(zip(COLUMNS, row, strict=True)) for row in session.execute(query)]


def parse_csv_row(row: dict[str, str]) -> dict[str, Any]:
    """Return a CSV row with its cells as the stored types: numbers, booleans, JSON lists, None for empty."""
    parsed: dict[str, Any] = {}
    for column, cell in row.items():
        if cell == "":
            parsed[column] = None
        elif column in FLOATS:
            parsed[column] = float(cell)
        elif column == "unit":
            parsed[column] = int(cell)
        elif column == "reliable":
            parsed[column] = {"True": True, "False": False}[cell]
        elif column in ("runners_up", "explanation"):
            parsed[column] = json.loads(cell)
        else:
            parsed[column] = cell
    return parsed


def download(client: TestClient, run_id: int, export_format: str) -> bytes:
    answer = client.get(f"/api/v1/runs/{run_id}/export", params={"format": export_format})
    assert answer.status_code == 200, answer.text
    suffix = "parquet" if export_format == "parquet" else export_format
    assert answer.headers["content-disposition"] == f'attachment; filename="run-{run_id}-labels.{suffix}"'
    return answer.content


@pytest.mark.parametrize("which", ["evaluated", "old"])
def test_csv_export_equals_the_stored_run(
    client: TestClient, dashboard: Dashboard, evaluated_run: int, which: str
) -> None:
    run_id = evaluated_run if which == "evaluated" else dashboard.newer.run_id
    text = download(client, run_id, "csv").decode("utf-8")
    reader = csv.DictReader(io.StringIO(text))
    assert tuple(reader.fieldnames or ()) == COLUMNS
    assert [parse_csv_row(row) for row in reader] == stored_rows(dashboard, run_id)


@pytest.mark.parametrize("which", ["evaluated", "old"])
def test_json_export_equals_the_stored_run(
    client: TestClient, dashboard: Dashboard, evaluated_run: int, which: str
) -> None:
    run_id = evaluated_run if which == "evaluated" else dashboard.newer.run_id
    document = json.loads(download(client, run_id, "json"))
    assert document["run"]["id"] == run_id
    assert document["neurons"] == stored_rows(dashboard, run_id)


@pytest.mark.parametrize("which", ["evaluated", "old"])
def test_parquet_export_equals_the_stored_run(
    client: TestClient, dashboard: Dashboard, evaluated_run: int, which: str
) -> None:
    run_id = evaluated_run if which == "evaluated" else dashboard.newer.run_id
    table = pq.read_table(io.BytesIO(download(client, run_id, "parquet")))
    assert tuple(table.column_names) == COLUMNS
    assert table.to_pylist() == stored_rows(dashboard, run_id)


def test_a_large_layer_is_exported_in_several_row_groups(client: TestClient, dashboard: Dashboard) -> None:
    parquet = pq.ParquetFile(io.BytesIO(download(client, dashboard.newer.run_id, "parquet")))
    assert parquet.metadata.num_rows == 64 + 2048 + 10
    assert parquet.metadata.num_row_groups > len(dashboard.newer.layers)  # blocks.3's 2,048 units in two batches


def test_old_runs_export_null_evaluations(client: TestClient, dashboard: Dashboard) -> None:
    neurons = json.loads(download(client, dashboard.older.run_id, "json"))["neurons"]
    assert neurons and all(neuron[name] is None for neuron in neurons for name in EVALUATION_FIELDS)


def test_export_of_an_unknown_run_or_format_is_refused(client: TestClient) -> None:
    assert client.get("/api/v1/runs/999999/export").status_code == 404
    assert client.get("/api/v1/runs/1/export", params={"format": "xlsx"}).status_code == 422


def test_run_page_links_every_export_format(client: TestClient, dashboard: Dashboard) -> None:
    page = client.get(f"/runs/{dashboard.newer.run_id}").text
    for export_format in ("csv", "json", "parquet"):
        assert f"/api/v1/runs/{dashboard.newer.run_id}/export?format={export_format}" in page
