"""A run's sweeps as pages show them: a layer's swept units sorted and filtered, and each layer's distribution of
label–effect agreement beside the labels' r."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.errors import NotFound
from app.core.urls import layer_url, neuron_url
from app.persistence.models import Layer, Neuron, UnitSweep
from app.read.runs.queries import get_run
from app.read.schemas.interventions import LayerSweepSummary, SweepBin, UnitSweepView

#: The sweep table's sorts: value -> (title, sort key).
SWEEP_SORTS: dict[str, tuple[str, Callable[[UnitSweepView], Any]]] = {
    "-z": ("agreement z, highest first", lambda unit: (-unit.label_effect_z, unit.unit)),
    "z": ("agreement z, lowest first", lambda unit: (unit.label_effect_z, unit.unit)),
    "p": ("p, lowest first", lambda unit: (unit.label_effect_p, -unit.label_effect_z, unit.unit)),
    "-cosine": ("cosine, highest first", lambda unit: (-unit.label_effect_cosine, unit.unit)),
    "-changed": ("predictions changed, most first", lambda unit: (-unit.predictions_changed, unit.unit)),
    "-r": ("label r, highest first", lambda unit: (unit.explained_r is None, -(unit.explained_r or 0.0), unit.unit)),
    "unit": ("unit", lambda unit: unit.unit),
}
#: The p a unit's agreement must reach to count as agreeing.
AGREEING_P = 0.05
#: The histogram's z edges (the ends catch everything beyond them).
Z_EDGES = (-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0)


def _view(row: UnitSweep, explained_r: float | None) -> UnitSweepView:
    return UnitSweepView(
        layer=row.layer,
        unit=row.unit,
        label=row.label,
        url=neuron_url(row.run_id, row.layer, row.unit),
        label_effect_cosine=row.label_effect_cosine,
        label_effect_z=row.label_effect_z,
        label_effect_p=row.label_effect_p,
        predictions_changed=row.predictions_changed,
        n_images=row.n_images,
        sweep_seconds=row.sweep_seconds,
        explained_r=explained_r,
    )


def _swept(session: Session, run_id: int, layer: str | None = None) -> list[UnitSweepView]:
    """Return the run's swept units (of one layer, or all) with their labels' r, by layer and unit."""
    query = (
        select(UnitSweep, Neuron.explained_r)
        .outerjoin(Layer, (Layer.run_id == UnitSweep.run_id) & (Layer.name == UnitSweep.layer))
        .outerjoin(Neuron, (Neuron.layer_id == Layer.id) & (Neuron.unit == UnitSweep.unit))
        .where(UnitSweep.run_id == run_id)
        .order_by(UnitSweep.layer, UnitSweep.unit)
    )
    if layer is not None:
        query = query.where(UnitSweep.layer == layer)
    return [_view(row, explained_r) for row, explained_r in session.execute(query).tuples()]


def layer_sweep(
    session: Session, run_id: int, layer: str, *, sort: str = "-z", max_p: float | None = None
) -> list[UnitSweepView]:
    """Return a layer's swept units in the `sort` order (one of SWEEP_SORTS), those with p at most `max_p` only
    when given; raise NotFound for a layer the run did not dissect."""
    get_run(session, run_id)
    if session.scalar(select(Layer.id).where(Layer.run_id == run_id, Layer.name == layer)) is None:
        raise NotFound(f"Run {run_id} has no layer '{layer}'; its layers are listed on its page.")
    units = [unit for unit in _swept(session, run_id, layer) if max_p is None or unit.label_effect_p <= max_p]
    return sorted(units, key=SWEEP_SORTS[sort][1])


def _ranks(values: Sequence[float]) -> list[float]:
    """Return the ranks of the values (ties get their mean rank)."""
    order = sorted(range(len(values)), key=lambda index: values[index])
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for position in range(start, end + 1):
            ranks[order[position]] = (start + end) / 2
        start = end + 1
    return ranks


def spearman(first: Sequence[float], second: Sequence[float]) -> float | None:
    """Return Spearman's rank correlation of two equally long sequences (None for fewer than 3 pairs or no
    spread)."""
    if len(first) < 3:
        return None
    try:
        return statistics.correlation(_ranks(first), _ranks(second))
    except statistics.StatisticsError:
        return None


def _histogram(zs: Sequence[float]) -> list[SweepBin]:
    lows = (float("-inf"), *Z_EDGES)
    highs = (*Z_EDGES, float("inf"))
    return [
        SweepBin(low=max(low, Z_EDGES[0] - 1), high=min(high, Z_EDGES[-1] + 1), count=sum(low <= z < high for z in zs))
        for low, high in zip(lows, highs, strict=True)
    ]


def sweep_summaries(session: Session, run_id: int) -> list[LayerSweepSummary]:
    """Return, per swept layer of the run (forward order), its distribution of label–effect agreement."""
    get_run(session, run_id)
    layers = session.execute(
        select(Layer.name, Layer.n_units).where(Layer.run_id == run_id).order_by(Layer.position)
    ).tuples()
    swept = _swept(session, run_id)
    summaries = []
    for name, n_units in layers:
        units = [unit for unit in swept if unit.layer == name]
        if not units:
            continue
        zs = [unit.label_effect_z for unit in units]
        with_r = [unit for unit in units if unit.explained_r is not None]
        summaries.append(
            LayerSweepSummary(
                layer=name,
                url=layer_url(run_id, name),
                n_swept=len(units),
                n_units=n_units,
                n_agreeing=sum(unit.label_effect_p <= AGREEING_P for unit in units),
                median_z=statistics.median(zs),
                histogram=_histogram(zs),
                spearman_z_r=spearman(
                    [unit.label_effect_z for unit in with_r], [unit.explained_r or 0.0 for unit in with_r]
                ),
                seconds_per_unit=statistics.fmean(unit.sweep_seconds for unit in units),
            )
        )
    return summaries
