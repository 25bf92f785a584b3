"""DissectionResult.to_frame: one row per neuron with results.csv's columns and values, round-tripping Parquet."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pandas as pd

from dissect_core.neuron_rows import NEURON_ROW_COLUMNS
from tests.unit.library.saved_helpers import full_result


def test_the_frame_has_a_row_per_neuron_in_the_row_shape(tmp_path: Path) -> None:
    result = full_result(tmp_path / "probe")
    frame = result.to_frame()
    assert list(frame.columns) == list(NEURON_ROW_COLUMNS)
    assert len(frame) == sum(layer.n_units for layer in result.layers)
    assert frame["layer"].tolist() == ["layer1"] * 6 + ["fc"] * 4
    assert frame["unit"].tolist() == [*range(6), *range(4)]
    assert frame["label"].tolist() == [neuron.label for layer in result.layers for neuron in layer.neurons]


def test_the_frame_holds_the_values_results_csv_holds(tmp_path: Path) -> None:
    result = full_result(tmp_path / "probe")
    frame = result.to_frame()
    result.save(tmp_path / "saved")
    with open(tmp_path / "saved" / "results.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    for row, (_, values) in zip(rows, frame.iterrows(), strict=True):
        for column in NEURON_ROW_COLUMNS:
            value = values[column]
            if value is None or (isinstance(value, float) and math.isnan(value)):
                assert row[column] == "", column
            elif column in ("runners_up", "explanation", "verdict_reasons"):
                assert json.loads(row[column]) == json.loads(value), column
            elif isinstance(value, bool):
                assert row[column] == str(value), column
            elif isinstance(value, float):
                assert float(row[column]) == value, column
            else:
                assert row[column] == str(value), column


def test_the_frame_round_trips_parquet(tmp_path: Path) -> None:
    frame = full_result(tmp_path / "probe").to_frame()
    frame.to_parquet(tmp_path / "neurons.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "neurons.parquet"), frame)
