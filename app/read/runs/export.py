"""A run's neurons as rows (dissect_core.neuron_rows), read from the database in batches, in CSV, JSON and Parquet."""

from __future__ import annotations

import io
import json
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from typing import IO, Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.core.redact import redact_paths
from app.persistence.models import Layer, Neuron
from app.read.catalogue.sets import public_names
from app.read.runs.queries import get_run
from dissect_core.neuron_rows import (
    NEURON_COLUMNS,
    NEURON_ROW_COLUMNS,
    NeuronRow,
    RunProvenance,
    run_values,
    write_csv,
)
from dissect_core.run_record import RunRecord

ExportFormat = Literal["csv", "json", "parquet"]
#: An export's rows, a batch at a time.
RowBatches = Iterator[list[NeuronRow]]
#: Each format's media type and file suffix.
MEDIA_TYPES: dict[str, str] = {
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
    "parquet": "application/vnd.apache.parquet",
}
#: Neurons read from the database per query (and rows per Parquet row group).
BATCH_SIZE = 2000
#: A Parquet export that stays in memory up to this size before spilling to a temporary file.
SPOOL_BYTES = 32 * 1024 * 1024

_CONCEPT_SCORES = pa.list_(pa.struct([("concept", pa.string()), ("score", pa.float64())]))
_WEIGHTED_CONCEPTS = pa.list_(pa.struct([("concept", pa.string()), ("weight", pa.float64())]))
_PARQUET_TYPES = {
    "run_id": pa.int64(),
    "model": pa.string(),
    "weights": pa.string(),
    "encoder": pa.string(),
    "probe_set": pa.string(),
    "layer": pa.string(),
    "unit": pa.int64(),
    "label": pa.string(),
    "score": pa.float64(),
    "runners_up": _CONCEPT_SCORES,
    "explained_r": pa.float64(),
    "p_value": pa.float64(),
    "reliable": pa.bool_(),
    "stability": pa.float64(),
    "explanation": _WEIGHTED_CONCEPTS,
    "explanation_r": pa.float64(),
    "ground_truth_r": pa.float64(),
    "verdict": pa.string(),
    "verdict_reasons": pa.list_(pa.string()),
    "coverage_source": pa.string(),
    "n_carrying": pa.int64(),
    "coverage_judgeable": pa.bool_(),
    "encoder_blind": pa.bool_(),
    "clarity": pa.float64(),
    "polysemanticity": pa.float64(),
    "redundancy": pa.float64(),
}
#: The Parquet columns: the neuron rows' (dissect_core.neuron_rows), in their order.
PARQUET_SCHEMA = pa.schema([(name, _PARQUET_TYPES[name]) for name in NEURON_ROW_COLUMNS])
#: The `neurons` columns named as a row's neuron columns (all of them but the layer's name).
_NEURON_COLUMNS = tuple(getattr(Neuron, name) for name in NEURON_COLUMNS if name != "layer")


def export_filename(run_id: int, export_format: ExportFormat) -> str:
    """Return the file name an export of the run downloads as."""
    return f"run-{run_id}-labels.{export_format}"


def run_provenance(session: Session, run_id: int) -> RunProvenance:
    """Return the provenance every exported row of the run carries, as web users may read it: a catalogued probe
    set by its catalogue name, no server path."""
    run = get_run(session, run_id)
    record = RunRecord.from_json(run.settings)
    names = public_names(session)
    provenance = RunProvenance.of_record(record, run.id)
    return replace(
        provenance,
        encoder=redact_paths(provenance.encoder, names),
        probe_set=names.get(record.config.probe, provenance.probe_set),
    )


def _layer_names(session: Session, run_id: int) -> list[tuple[int, str]]:
    query = select(Layer.id, Layer.name).where(Layer.run_id == run_id).order_by(Layer.position)
    return [(layer_id, name) for layer_id, name in session.execute(query).tuples()]


def _layer_batches(session: Session, run: RunProvenance, layer_id: int, layer_name: str, size: int) -> RowBatches:
    """Yield one layer's neurons in unit order, `size` at a time (keyset paging: each batch one indexed query)."""
    provenance = run_values(run)
    after = -1
    while True:
        query = (
            select(*_NEURON_COLUMNS)
            .where(Neuron.layer_id == layer_id, Neuron.unit > after)
            .order_by(Neuron.unit)
            .limit(size)
        )
        rows = session.execute(query).all()
        if not rows:
            return
        yield [NeuronRow.from_json({**provenance, "layer": layer_name, **row._asdict()}) for row in rows]
        after = rows[-1].unit


def export_batches(sessions: sessionmaker[Session], run_id: int, size: int = BATCH_SIZE) -> RowBatches:
    """Yield the run's neurons as rows, layer by layer in forward order then by unit, `size` rows at a time.

    It opens its own session, so a streamed answer keeps reading after the request's session is gone.
    """
    with sessions() as session:
        run = run_provenance(session, run_id)
        for layer_id, name in _layer_names(session, run_id):
            yield from _layer_batches(session, run, layer_id, name, size)


def csv_chunks(batches: RowBatches) -> Iterator[str]:
    """Yield a CSV document (`write_csv`'s: a header, then one line per row), one chunk per batch."""
    buffer = io.StringIO()
    write_csv(buffer, ())  # the header alone: a run without neurons still exports one
    for batch in batches:
        write_csv(buffer, batch, header=False)
        yield _take(buffer)
    yield _take(buffer)


def _take(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


def json_chunks(header: dict[str, Any], batches: RowBatches) -> Iterator[str]:
    """Yield a JSON document, the header's fields plus `neurons` (every row), one chunk per batch."""
    opening = json.dumps({**header, "neurons": []})
    yield opening[:-2]  # the header's object, left open inside the empty `neurons` list
    first = True
    for batch in batches:
        lines = ",\n".join(json.dumps(row.to_json()) for row in batch)
        yield ("\n" if first else ",\n") + lines
        first = False
    yield "\n]}"


def parquet_file(batches: RowBatches) -> IO[bytes]:
    """Return a spooled file, rewound, holding a Parquet table of the rows with one row group per batch."""
    spooled: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 (the caller closes it)
    with pq.ParquetWriter(spooled, PARQUET_SCHEMA) as writer:
        for batch in batches:
            writer.write_table(pa.Table.from_pylist([row.to_json() for row in batch], schema=PARQUET_SCHEMA))
    spooled.seek(0)
    return spooled


def file_chunks(file: IO[bytes], chunk_size: int = 1 << 16) -> Iterator[bytes]:
    """Yield a file's bytes in chunks, closing it at the end."""
    with file:
        while chunk := file.read(chunk_size):
            yield chunk
