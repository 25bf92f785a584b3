"""A unit of a stored layer as other pages link to it: its summary (label, reliability, crops) by unit number."""

from __future__ import annotations

from app.read.layers.index import LayerIndex
from app.read.schemas.neurons import NeuronSummary


def unit_summary(index: LayerIndex, unit: int) -> NeuronSummary | None:
    """Return a unit's grid summary from its layer's index, or None when the unit is not labelled."""
    neurons = index.neurons
    if 0 <= unit < len(neurons) and neurons[unit].unit == unit:  # units are stored 0..K-1: a direct look-up
        return neurons[unit].summary
    return next((neuron.summary for neuron in neurons if neuron.unit == unit), None)


def crop_urls(summary: NeuronSummary | None) -> list[str]:
    """Return the crops of a unit's top images (none for an unlabelled unit)."""
    return [image.crop_url for image in summary.top_images] if summary is not None else []
