"""A run's neurons as a pandas DataFrame: one row per neuron, in the one row shape (dissect_core.neuron_rows)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING

from dissect_core.neuron_rows import NEURON_ROW_COLUMNS, NeuronRow

if TYPE_CHECKING:
    import pandas as pd

#: The columns that hold lists; a frame holds them as JSON text, as results.csv does, so it round-trips Parquet.
LIST_COLUMNS = ("runners_up", "explanation", "verdict_reasons")


def neuron_frame(rows: Iterable[NeuronRow]) -> pd.DataFrame:
    """Return the rows as a DataFrame with the NEURON_ROW_COLUMNS, lists as JSON text, missing values as None/NaN."""
    import pandas as pd

    records = []
    for row in rows:
        values = row.to_json()
        for column in LIST_COLUMNS:
            if values[column] is not None:
                values[column] = json.dumps(values[column])
        records.append(values)
    return pd.DataFrame.from_records(records, columns=list(NEURON_ROW_COLUMNS))
