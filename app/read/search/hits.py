"""A unit as search answers show it, built from its layer's in-memory index (label, verdict, r, crops)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app.core.urls import neuron_url
from app.read.classes.names import unit_class_name
from app.read.layers.index import LayerIndex
from app.read.neurons.unit_links import crop_urls, unit_summary


def unit_hit_fields(
    index: LayerIndex, layer_position: int, unit: int, class_names: Sequence[str] | None, concept: str
) -> dict[str, Any]:
    """Return the UnitHit fields of a unit of the index's layer; its page link carries `concept`."""
    summary = unit_summary(index, unit)
    return {
        "layer": index.layer,
        "layer_position": layer_position,
        "unit": unit,
        "label": summary.label if summary else "",
        "label_score": summary.score if summary else 0.0,
        "verdict": summary.verdict if summary else None,
        "reliable": summary.reliable if summary else None,
        "explained_r": summary.explained_r if summary else None,
        "class_name": unit_class_name(class_names, index.n_units, unit),
        "crop_urls": crop_urls(summary),
        "url": neuron_url(index.run_id, index.layer, unit, concept=concept),
    }
