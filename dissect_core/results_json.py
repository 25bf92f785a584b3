"""results.json: a dissection's record, and per layer its evaluation and its neuron rows with their top images."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from dissect_core.neuron_rows import RunProvenance, neuron_row
from dissect_core.results import DissectionResult


def results_json(result: DissectionResult, run: RunProvenance) -> dict[str, Any]:
    """Return a JSON-ready dict: the run's record, then every layer's neurons as rows (`NeuronRow.to_json`) plus each
    neuron's top images with their peak boxes and probe paths."""
    return {
        "settings": result.record.to_json(),
        "n_images": len(result.image_ids),
        "skipped_images": list(result.record.facts.skipped_images),
        "timings_s": result.record.facts.timings_s,
        "layers": [
            {
                "name": layer.name,
                "kind": layer.kind,
                "n_units": layer.n_units,
                "evaluation": asdict(layer.evaluation) if layer.evaluation else None,
                "neurons": [
                    {
                        **neuron_row(run, layer.name, neuron).to_json(),
                        "top_images": [{**asdict(top), "path": result.image_paths[top.image_index]} for top in tops],
                    }
                    for neuron, tops in zip(layer.neurons, layer.top_images, strict=True)
                ],
            }
            for layer in result.layers
        ],
    }
