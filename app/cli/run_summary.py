"""A stored run in one line per layer, as `dissect --store` ends: units, the share of labels at each grade and
the mean explained_r, the numbers the run page shows (app.read.runs.overview computes both)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.core.config import Settings
    from app.read.schemas.runs import LayerOverview


def verdict_summary_line(layer: LayerOverview) -> str:
    """Return e.g. `conv_head: 1280 units · explains 3% · weak 41% · no label 56% · mean r 0.06`."""
    parts = [f"{layer.name}: {layer.n_units} units"]
    counts = layer.verdict_counts
    graded = sum(counts.values()) if counts else 0
    if counts and graded:
        parts += [f"{grade} {count / graded:.0%}" for grade, count in counts.items()]
    else:
        parts.append("labels not graded (evaluation skipped: --folds 0)")
    if layer.mean_explained_r is not None:
        parts.append(f"mean r {layer.mean_explained_r:.2f}")
    return " · ".join(parts)


def stored_run_summary(settings: Settings, run_id: int) -> list[str]:
    """Return one `verdict_summary_line` per layer of stored run `run_id`, in forward order."""
    from app.persistence.db import create_db_engine, session_factory
    from app.read.runs.overview import layer_overviews

    engine = create_db_engine(settings.database_url)
    try:
        with session_factory(engine)() as session:
            return [verdict_summary_line(layer) for layer in layer_overviews(session, run_id)]
    finally:
        engine.dispose()
