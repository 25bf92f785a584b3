"""A run's labels as export rows, read from the database in batches, and their CSV, JSON and Parquet encodings."""

from __future__ import annotations

import csv
import io
import json
import tempfile
from collections.abc import Iterator
from typing import IO, Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.persistence.models import Layer, Neuron
from dissect_core.results import EVALUATION_FIELDS

ExportFormat = Literal["csv", "json", "parquet"]
#: Each format's media type and file suffix.
MEDIA_TYPES: dict[str, str] = {
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
    "parquet": "application/vnd.apache.parquet",
}
#: Neurons read from the database per query (and rows per Parquet row group).
BATCH_SIZE = 2000
#: The columns of every export row, in order; `runners_up` and `explanation` are lists of dicts.
COLUMNS = ("layer", "unit", "label", "score", "runners_up", *EVALUATION_FIELDS)
#: A Parquet export that stays in memory up to this size before spilling to a temporary file.
SPOOL_BYTES = 32 * 1024 * 1024

_CONCEPT_SCORES = pa.list_(pa.struct([("concept", pa.string()), ("score", pa.float64())]))
_WEIGHTED_CONCEPTS = pa.list_(pa.struct([("concept", pa.string()), ("weight", pa.float64())]))
PARQUET_SCHEMA = pa.schema(
    [
        ("layer", pa.string()),
        ("unit", pa.int64()),
        ("label", pa.string()),
        ("score", pa.float64()),
        ("runners_up", _CONCEPT_SCORES),
        ("explained_r", pa.float64()),
        ("p_value", pa.float64()),
        ("reliable", pa.bool_()),
        ("stability", pa.float64()),
        ("explanation", _WEIGHTED_CONCEPTS),
        ("explanation_r", pa.float64()),
        ("ground_truth_r", pa.float64()),
    ]
)
_NEURON_COLUMNS = (
    Neuron.unit,
    Neuron.label,
    Neuron.score,
    Neuron.runners_up,
    *(getattr(Neuron, name) for name in EVALUATION_FIELDS),
)


def export_filename(run_id: int, export_format: ExportFormat) -> str:
    """Return the file name an export of the run downloads as."""
    return f"run-{run_id}-labels.{export_format}"


def _layer_names(session: Session, run_id: int) -> list[tuple[int, str]]:
    query = select(Layer.id, Layer.name).where(Layer.run_id == run_id).order_by(Layer.position)
    return [(layer_id, name) for layer_id, name in session.execute(query).tuples()]


def _layer_batches(session: Session, layer_id: int, layer_name: str, size: int) -> Iterator[list[dict[str, Any]]]:
    """Yield one layer's neurons in unit order, `size` at a time (keyset paging: each batch one indexed query)."""
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
        yield [{"layer": layer_name, **row._asdict()} for row in rows]
        after = rows[-1].unit


def export_batches(
    sessions: sessionmaker[Session], run_id: int, size: int = BATCH_SIZE
) -> Iterator[list[dict[str, Any]]]:
    """Yield the run's neurons as export rows (COLUMNS), layer by layer in forward order, `size` rows at a time.

    It opens its own session, so a streamed answer keeps reading after the request's session is gone.
    """
    with sessions() as session:
        for layer_id, name in _layer_names(session, run_id):
            yield from _layer_batches(session, layer_id, name, size)


def _csv_cell(value: object) -> object:
    """Return a CSV cell: lists as JSON, None as empty."""
    if value is None:
        return ""
    return json.dumps(value) if isinstance(value, list) else value


def csv_chunks(batches: Iterator[list[dict[str, Any]]]) -> Iterator[str]:
    """Yield a CSV document (a header, then one line per row; lists as JSON cells), one chunk per batch."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for batch in batches:
        writer.writerows([_csv_cell(row[column]) for column in COLUMNS] for row in batch)
        yield _take(buffer)
    yield _take(buffer)


def _take(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


def json_chunks(header: dict[str, Any], batches: Iterator[list[dict[str, Any]]]) -> Iterator[str]:
    """Yield a JSON document, the header's fields plus `neurons` (every row), one chunk per batch."""
    opening = json.dumps({**header, "neurons": []})
    yield opening[:-2]  # the header's object, left open inside the empty `neurons` list
    first = True
    for batch in batches:
        lines = ",\n".join(json.dumps(row) for row in batch)
        yield ("\n" if first else ",\n") + lines
        first = False
    yield "\n]}"


def parquet_file(batches: Iterator[list[dict[str, Any]]]) -> IO[bytes]:
    """Return a spooled file, rewound, holding a Parquet table of the rows with one row group per batch."""
    spooled: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 (the caller closes it)
    with pq.ParquetWriter(spooled, PARQUET_SCHEMA) as writer:
        for batch in batches:
            writer.write_table(pa.Table.from_pylist(batch, schema=PARQUET_SCHEMA))
    spooled.seek(0)
    return spooled


def file_chunks(file: IO[bytes], chunk_size: int = 1 << 16) -> Iterator[bytes]:
    """Yield a file's bytes in chunks, closing it at the end."""
    with file:
        while chunk := file.read(chunk_size):
            yield chunk
