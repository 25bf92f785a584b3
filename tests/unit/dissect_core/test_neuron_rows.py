"""The one neuron-row shape: its columns, its JSON and CSV encodings, provenance, and spreadsheet-safe CSV text."""

from __future__ import annotations

import csv
import io
import math

import pytest

from dissect_core.analysis.coverage import Coverage
from dissect_core.config import DissectConfig
from dissect_core.evaluation.verdict import grade_label
from dissect_core.neuron_rows import (
    FORMULA_PREFIXES,
    GRADE_FIELDS,
    NEURON_COLUMNS,
    NEURON_ROW_COLUMNS,
    NeuronRow,
    RunProvenance,
    neuron_row,
    spreadsheet_safe,
    write_csv,
)
from dissect_core.results import EVALUATION_FIELDS, ConceptScore, NeuronEvaluation, NeuronLabel, WeightedConcept
from dissect_core.run_record import RunFacts, RunRecord

RUN = RunProvenance(run_id=None, model="resnet18", weights="none@0", encoder="ViT-B-16:openai", probe_set="probe")
EVALUATION = NeuronEvaluation(
    explained_r=0.5,
    p_value=0.01,
    significant=True,
    stability=0.8,
    explanation=(WeightedConcept("dog", 0.9), WeightedConcept("cat", 0.1)),
    explanation_r=0.6,
)


COVERAGE = Coverage(9, "labels", True, False, "the probe set has 9 images labelled 'dog'", ceiling_r=0.8)


def label(name: str = "dog", *, score: float = 0.25, evaluation: NeuronEvaluation | None = EVALUATION) -> NeuronLabel:
    return NeuronLabel(
        unit=3,
        label=name,
        score=score,
        runners_up=(ConceptScore("cat", 0.2),),
        evaluation=evaluation,
        coverage=COVERAGE,
        verdict=None if evaluation is None else grade_label(evaluation, COVERAGE, concept=name),
        clarity=0.4,
        polysemanticity=0.2,
        redundancy=0.7,
    )


def csv_text(rows: list[NeuronRow]) -> str:
    buffer = io.StringIO()
    write_csv(buffer, rows)
    return buffer.getvalue()


def test_the_columns_name_the_run_then_the_neuron() -> None:
    assert (
        "run_id", "model", "weights", "encoder", "probe_set",
        "layer", "unit", "label", "score", "runners_up", *EVALUATION_FIELDS, *GRADE_FIELDS,
    ) == NEURON_ROW_COLUMNS  # fmt: skip
    assert GRADE_FIELDS == (
        "verdict", "verdict_reasons", "coverage_source", "n_carrying", "coverage_judgeable", "encoder_blind",
        "clarity", "polysemanticity", "redundancy",
    )  # fmt: skip
    assert NEURON_ROW_COLUMNS[5:] == NEURON_COLUMNS


def test_json_round_trips_and_keeps_lists_as_lists() -> None:
    row = neuron_row(RUN, "fc", label())
    values = row.to_json()
    assert tuple(values) == NEURON_ROW_COLUMNS
    assert values["runners_up"] == [{"concept": "cat", "score": 0.2}]
    assert values["explanation"] == [{"concept": "dog", "weight": 0.9}, {"concept": "cat", "weight": 0.1}]
    assert values["ground_truth_r"] is None and values["reliable"] is True and values["verdict"] == "explains"
    assert values["verdict_reasons"][:2] == [
        "r 0.50 (25.0% of the variance) is 62% of the 0.80 a perfect detector of 'dog' reaches on these images",
        "chosen by 4 of 5 folds",
    ]
    assert values["coverage_source"] == "labels" and values["n_carrying"] == 9 and values["clarity"] == 0.4
    assert NeuronRow.from_json(values) == row


def test_an_unevaluated_neuron_has_none_for_every_evaluation_field() -> None:
    values = neuron_row(RUN, "fc", label(evaluation=None)).to_json()
    assert all(values[name] is None for name in EVALUATION_FIELDS) and values["verdict"] is None
    assert values["coverage_source"] == "labels" and values["verdict_reasons"] is None
    cells = dict(zip(NEURON_ROW_COLUMNS, neuron_row(RUN, "fc", label(evaluation=None)).csv_cells(), strict=True))
    assert all(cells[name] == "" for name in EVALUATION_FIELDS) and cells["run_id"] == ""


def test_undefined_numbers_are_none_or_zero_never_nan() -> None:
    nan = float("nan")
    evaluation = NeuronEvaluation(nan, nan, False, nan, (WeightedConcept("dog", nan),), math.inf, nan)
    values = neuron_row(RUN, "fc", label(score=nan, evaluation=evaluation)).to_json()
    assert values["score"] == 0.0 and values["explanation"] == [{"concept": "dog", "weight": 0.0}]
    assert [values[name] for name in ("explained_r", "p_value", "stability", "explanation_r", "ground_truth_r")] == [
        None
    ] * 5


@pytest.mark.parametrize("prefix", FORMULA_PREFIXES)
def test_text_a_spreadsheet_would_run_gets_an_apostrophe(prefix: str) -> None:
    assert spreadsheet_safe(f"{prefix}HYPERLINK(1)") == f"'{prefix}HYPERLINK(1)"
    row = neuron_row(RUN, f"{prefix}layer", label(f"{prefix}cmd|' /C calc'!A0"))
    read = next(csv.DictReader(io.StringIO(csv_text([row]))))
    assert read["label"] == f"'{prefix}cmd|' /C calc'!A0" and read["layer"] == f"'{prefix}layer"


def test_safe_text_and_numbers_are_written_as_they_are() -> None:
    assert spreadsheet_safe("dog") == "dog" and spreadsheet_safe("a=b") == "a=b" and spreadsheet_safe("") == ""
    row = neuron_row(RUN, "fc", label(score=-0.5))
    cells = dict(zip(NEURON_ROW_COLUMNS, row.csv_cells(), strict=True))
    assert cells["score"] == -0.5 and cells["unit"] == 3 and cells["reliable"] is True
    read = next(csv.DictReader(io.StringIO(csv_text([row]))))
    assert read["score"] == "-0.5" and read["label"] == "dog" and read["weights"] == "none@0"
    assert read["runners_up"] == '[{"concept": "cat", "score": 0.2}]'


def test_provenance_of_a_record_names_the_model_weights_and_probe_set() -> None:
    config = DissectConfig(model="/models/net.pt", layers=("fc",), probe="/data/probes/birds/", encoder="e:none")
    run = RunProvenance.of_record(RunRecord(config, facts=RunFacts(weights="sha256:ab")), run_id=7)
    assert run == RunProvenance(run_id=7, model="net.pt", weights="sha256:ab", encoder="e:none", probe_set="birds")
    named = DissectConfig(model="resnet18", layers=("fc",), probe="cifar100", model_name="my-net")
    assert RunProvenance.of_record(RunRecord(named)).model == "my-net"
    assert RunProvenance.of_record(RunRecord(named)).probe_set == "cifar100"
