"""One row shape for a run's neurons: results.csv, results.json, the database's neuron columns and every export.

A row says which run it came from (`RunProvenance`), then the neuron's label, score, runners-up and evaluation.
Its encodings: JSON (`NeuronRow.to_json`, lists as lists of dicts) and CSV (`write_csv`: lists as JSON text in one
cell, every text cell made safe to open in a spreadsheet).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, fields
from pathlib import PurePath
from typing import Any, TextIO

from dissect_core.names import is_torchscript_name
from dissect_core.results import (
    EVALUATION_FIELDS,
    ConceptScore,
    DissectionResult,
    NeuronEvaluation,
    NeuronLabel,
    WeightedConcept,
)
from dissect_core.run_record import RunRecord

#: What a spreadsheet reads as the start of a formula (OWASP, CSV injection): a text cell starting so is escaped.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class RunProvenance:
    """Which run a row came from: its id (None for a run not stored), model name, weights, encoder and probe set.

    `weights` is the record's `facts.weights` (`run_record.weights_provenance`): `sha256:<hex>` of a checkpoint or
    TorchScript file, `none@SEED` for random weights, else the weights' name; None where the run did not say.
    """

    run_id: int | None
    model: str
    weights: str | None
    encoder: str
    probe_set: str

    @classmethod
    def of_record(cls, record: RunRecord, run_id: int | None = None) -> RunProvenance:
        """Return the provenance of the run a record describes (`run_id` where it is stored)."""
        config = record.config
        # A TorchScript file is named by its file name, as the app names its model row.
        own_name = PurePath(config.model).name if is_torchscript_name(config.model) else config.model
        return cls(
            run_id=run_id,
            model=config.model_name or own_name,
            weights=record.facts.weights,
            encoder=config.encoder,
            probe_set=probe_set_name(config.probe),
        )


def run_values(run: RunProvenance) -> dict[str, Any]:
    """Return the provenance as a row's first columns (RUN_COLUMNS) and their values."""
    return {name: getattr(run, name) for name in RUN_COLUMNS}


def probe_set_name(probe: str) -> str:
    """Return a probe set's name as the library gives it: a folder's last part, or a built-in's name."""
    return PurePath(probe).name or probe


@dataclass(frozen=True)
class NeuronRow:
    """One neuron of a run, as every file and export of the run writes it (columns: NEURON_ROW_COLUMNS).

    The evaluation fields are None for a neuron that was not evaluated, and an r is None where it is undefined
    (the correlation of a constant); `explanation` is the weighted concepts, heaviest first. `verdict` is the
    label's grade (`dissect_core.evaluation.verdict`) and `verdict_reasons` its reasons; `reliable` is whether the
    grade is the top one. The coverage fields say how many probe images carry the label's concept, by which
    source (`labels` or `encoder`), whether the neuron can be judged on it and whether the encoder is blind to it;
    `clarity`, `polysemanticity` and `redundancy` are the label-free scores of its top images. Fields a stored
    run predates are None.
    """

    run_id: int | None
    model: str
    weights: str | None
    encoder: str
    probe_set: str
    layer: str
    unit: int
    label: str
    score: float
    runners_up: tuple[ConceptScore, ...]
    explained_r: float | None
    p_value: float | None
    reliable: bool | None
    stability: float | None
    explanation: tuple[WeightedConcept, ...] | None
    explanation_r: float | None
    ground_truth_r: float | None
    verdict: str | None
    verdict_reasons: tuple[str, ...] | None
    coverage_source: str | None
    n_carrying: int | None
    coverage_judgeable: bool | None
    encoder_blind: bool | None
    clarity: float | None
    polysemanticity: float | None
    redundancy: float | None

    def to_json(self) -> dict[str, Any]:
        """Return the row as JSON values in column order: runners-up and explanation as lists of dicts."""
        # Dicts written out rather than dataclasses.asdict, which took most of an export's time.
        values = {name: getattr(self, name) for name in NEURON_ROW_COLUMNS}
        values["runners_up"] = [{"concept": alt.concept, "score": alt.score} for alt in self.runners_up]
        if self.explanation is not None:
            values["explanation"] = [{"concept": term.concept, "weight": term.weight} for term in self.explanation]
        if self.verdict_reasons is not None:
            values["verdict_reasons"] = list(self.verdict_reasons)
        return values

    @classmethod
    def from_json(cls, values: Mapping[str, Any]) -> NeuronRow:
        """Return the row `to_json` gave (or the database's columns of the same names gave) as a NeuronRow."""
        explanation = values["explanation"]
        reasons = values.get("verdict_reasons")
        # A row written before the grade columns existed has none of them: they are None.
        columns: dict[str, Any] = {
            name: values.get(name) if name in GRADE_FIELDS else values[name]
            for name in NEURON_ROW_COLUMNS
            if name not in _LISTS
        }
        return cls(
            **columns,
            runners_up=tuple(ConceptScore(**alt) for alt in values["runners_up"]),
            explanation=None if explanation is None else tuple(WeightedConcept(**term) for term in explanation),
            verdict_reasons=None if reasons is None else tuple(reasons),
        )

    def csv_cells(self) -> list[object]:
        """Return the row's CSV cells in column order: lists as JSON text, None as empty, text spreadsheet-safe."""
        return [_csv_cell(value) for value in self.to_json().values()]


#: The columns of every neuron row, in order: the run's provenance, then the neuron.
NEURON_ROW_COLUMNS = tuple(spec.name for spec in fields(NeuronRow))
#: The columns that name the run, then those that describe the neuron itself.
RUN_COLUMNS = tuple(spec.name for spec in fields(RunProvenance))
NEURON_COLUMNS = NEURON_ROW_COLUMNS[len(RUN_COLUMNS) :]
#: The verdict, coverage and label-free columns, after the evaluation's (EVALUATION_FIELDS).
GRADE_FIELDS = NEURON_ROW_COLUMNS[NEURON_ROW_COLUMNS.index("ground_truth_r") + 1 :]
#: The columns JSON holds as lists.
_LISTS = ("runners_up", "explanation", "verdict_reasons")


def neuron_fields(neuron: NeuronLabel) -> dict[str, Any]:
    """Return a neuron's own row values from `unit` on, as JSON: lists of dicts, None where not evaluated."""
    return {
        "unit": int(neuron.unit),
        "label": neuron.label,
        "score": finite_or_zero(neuron.score),
        "runners_up": [{"concept": alt.concept, "score": finite_or_zero(alt.score)} for alt in neuron.runners_up],
        **_evaluation_fields(neuron.evaluation),
        "reliable": None if neuron.evaluation is None else neuron.verdict is not None and neuron.verdict.reliable,
        **_grade_fields(neuron),
    }


def _grade_fields(neuron: NeuronLabel) -> dict[str, Any]:
    """Return the verdict, coverage and label-free fields of a neuron row (None where not computed)."""
    verdict, coverage = neuron.verdict, neuron.coverage
    return {
        "verdict": None if verdict is None else verdict.verdict,
        "verdict_reasons": None if verdict is None else list(verdict.reasons),
        "coverage_source": None if coverage is None else coverage.source,
        "n_carrying": None if coverage is None else coverage.n_carrying,
        "coverage_judgeable": None if coverage is None else coverage.judgeable,
        "encoder_blind": None if coverage is None else coverage.encoder_blind,
        "clarity": finite_or_none(neuron.clarity),
        "polysemanticity": finite_or_none(neuron.polysemanticity),
        "redundancy": finite_or_none(neuron.redundancy),
    }


def _evaluation_fields(evaluation: NeuronEvaluation | None) -> dict[str, Any]:
    if evaluation is None:
        return dict.fromkeys(EVALUATION_FIELDS)
    return {
        "explained_r": finite_or_none(evaluation.explained_r),
        "p_value": finite_or_none(evaluation.p_value),
        "stability": finite_or_none(evaluation.stability),
        "explanation": [
            {"concept": term.concept, "weight": finite_or_zero(term.weight)} for term in evaluation.explanation
        ],
        "explanation_r": finite_or_none(evaluation.explanation_r),
        "ground_truth_r": finite_or_none(evaluation.ground_truth_r),
    }


def neuron_row(run: RunProvenance, layer: str, neuron: NeuronLabel) -> NeuronRow:
    """Return one neuron of the named layer of a run as a row."""
    return NeuronRow.from_json({**run_values(run), "layer": layer, **neuron_fields(neuron)})


def result_rows(result: DissectionResult, run: RunProvenance) -> Iterator[NeuronRow]:
    """Yield a dissection's neurons as rows, layer by layer in the result's order, each layer's in its order."""
    for layer in result.layers:
        for neuron in layer.neurons:
            yield neuron_row(run, layer.name, neuron)


def write_csv(handle: TextIO, rows: Iterable[NeuronRow], *, header: bool = True) -> None:
    """Write the rows as CSV (after the NEURON_ROW_COLUMNS header unless `header` is False), one line each."""
    # RFC 4180's line ends: a cell holding a carriage return or a newline is then always quoted.
    writer = csv.writer(handle, lineterminator="\r\n")
    if header:
        writer.writerow(NEURON_ROW_COLUMNS)
    writer.writerows(row.csv_cells() for row in rows)


def spreadsheet_safe(text: str) -> str:
    """Return `text` with a leading apostrophe when a spreadsheet would read it as a formula, else unchanged."""
    return f"'{text}" if text.startswith(FORMULA_PREFIXES) else text


def _csv_cell(value: object) -> object:
    # Numbers and booleans stay as they are: a negative score is a number, never a formula.
    if value is None:
        return ""
    if isinstance(value, list):
        return spreadsheet_safe(json.dumps(value))
    return spreadsheet_safe(value) if isinstance(value, str) else value


def finite_or_zero(value: float) -> float:
    """Return `value` as a float, or 0 where it is NaN or infinite (for values every row has, such as a score)."""
    number = float(value)
    return number if math.isfinite(number) else 0.0


def finite_or_none(value: float | None) -> float | None:
    """Return `value` as a float, or None where it is None, NaN or infinite (JSON has neither)."""
    # A correlation of a constant is undefined (NaN): None, never a made-up 0.
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None
