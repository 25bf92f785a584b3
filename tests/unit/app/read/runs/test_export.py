"""The export encodings on hand-made rows: empty exports stay valid, lists become JSON cells."""

from __future__ import annotations

import csv
import io
import json

import pyarrow.parquet as pq

from app.read.runs.export import PARQUET_SCHEMA, csv_chunks, json_chunks, parquet_file
from dissect_core.neuron_rows import NEURON_ROW_COLUMNS, NeuronRow

ROW = NeuronRow.from_json(
    {
        "run_id": 1,
        "model": "resnet18",
        "weights": "DEFAULT",
        "encoder": "ViT-B-16:openai",
        "probe_set": "cifar100",
        "layer": "fc",
        "unit": 3,
        "label": 'say "cheese", please',
        "score": 1.25,
        "runners_up": [{"concept": "dog", "score": 1.0}],
        "explained_r": None,
        "p_value": None,
        "reliable": None,
        "stability": None,
        "explanation": None,
        "explanation_r": None,
        "ground_truth_r": None,
    }
)


def test_an_empty_export_is_a_header_or_an_empty_list() -> None:
    assert "".join(csv_chunks(iter([]))) == ",".join(NEURON_ROW_COLUMNS) + "\r\n"
    assert json.loads("".join(json_chunks({"run": {"id": 1}}, iter([])))) == {"run": {"id": 1}, "neurons": []}
    assert pq.read_table(parquet_file(iter([]))).num_rows == 0


def test_the_parquet_columns_are_the_rows() -> None:
    assert tuple(PARQUET_SCHEMA.names) == NEURON_ROW_COLUMNS


def test_batches_join_into_one_document() -> None:
    batches = [[ROW], [NeuronRow.from_json({**ROW.to_json(), "unit": 4})]]
    document = json.loads("".join(json_chunks({}, iter(batches))))
    assert document["neurons"] == [ROW.to_json(), {**ROW.to_json(), "unit": 4}]
    rows = list(csv.DictReader(io.StringIO("".join(csv_chunks(iter(batches))))))
    assert [row["unit"] for row in rows] == ["3", "4"]
    assert rows[0]["label"] == ROW.label
    assert json.loads(rows[0]["runners_up"]) == ROW.to_json()["runners_up"]
    assert rows[0]["explained_r"] == ""
    assert pq.read_table(parquet_file(iter(batches))).to_pylist() == [
        row.to_json() for batch in batches for row in batch
    ]
