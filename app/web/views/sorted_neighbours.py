"""A neuron page's previous and next neurons in the order of the grid it was reached from (`?sort=&q=`)."""

from __future__ import annotations

from urllib.parse import urlencode

from sqlalchemy.orm import Session

from app.core.urls import neuron_url
from app.read.caches import ReadCache
from app.read.schemas.neurons import NeuronDetail
from app.read.schemas.runs import GRID_SORT, NeuronSort
from app.web.views.paging import grid_params


def neighbour_links(
    session: Session, cache: ReadCache, neuron: NeuronDetail, sort: NeuronSort = GRID_SORT, q: str = ""
) -> dict[str, str | None]:
    """Return `previous_url` and `next_url` of a neuron in the grid order `sort`/`q` (the grid's default order when
    none is named), each carrying that order on, so previous/next keep following it."""
    q = q.strip()
    if sort == "unit" and not q:
        previous, following = neuron.previous_unit, neuron.next_unit
    else:
        index = cache.layer_index(session, neuron.run_id, neuron.layer)
        previous, following = index.neighbours(neuron.unit, sort, q)
    params = grid_params(sort, q)
    suffix = f"?{urlencode(params)}" if params else ""

    def link(unit: int | None) -> str | None:
        return None if unit is None else neuron_url(neuron.run_id, neuron.layer, unit) + suffix

    return {"previous_url": link(previous), "next_url": link(following), "grid_order": suffix}
