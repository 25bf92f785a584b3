"""Storing what a run found about its model's wiring: its outputs on the probe images, the connections between its
dissected layers and the paper's weight finding (files named by `ArtifactsLayout`). The JSON fields are the
dataclasses' own (dissect_core.analysis), so the reader builds them back field by field."""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import torch

from app.persistence.store.layout import ArtifactsLayout
from dissect_core.analysis.connections import LayerConnections
from dissect_core.analysis.outputs import ModelOutputs
from dissect_core.analysis.weight_agreement import WeightConceptAgreement
from dissect_core.tensor_files import save_safetensors

#: The metadata keys of outputs.safetensors naming the classifier and the dissected layer feeding it.
OUTPUTS_METADATA = ("classifier_layer", "feeding_layer")


def save_outputs(layout: ArtifactsLayout, outputs: ModelOutputs) -> None:
    """Store the logits and classifier inputs (float16), the classifier's weight and bias (float32) and its names,
    streamed a part of rows at a time (a run's [images, classes] matrices are never copied whole)."""
    tensors = {"logits": (outputs.logits, torch.float16)}
    if outputs.classifier_inputs is not None:
        tensors["classifier_inputs"] = (outputs.classifier_inputs, torch.float16)
    if outputs.classifier_weight is not None:
        tensors["classifier_weight"] = (outputs.classifier_weight, torch.float32)
    if outputs.classifier_bias is not None:
        tensors["classifier_bias"] = (outputs.classifier_bias, torch.float32)
    metadata = {key: getattr(outputs, key) for key in OUTPUTS_METADATA if getattr(outputs, key) is not None}
    save_safetensors(layout.outputs, tensors, metadata=metadata)


def save_connections(layout: ArtifactsLayout, connections: list[LayerConnections]) -> None:
    """Store each pair's signed weights (float32) and the index of pairs with how each was computed."""
    index = []
    for connection in connections:
        save_safetensors(
            layout.connections(connection.from_layer, connection.to_layer),
            {"weights": (connection.weights, torch.float32)},
        )
        index.append({f.name: getattr(connection, f.name) for f in fields(connection) if f.name != "weights"})
    _write_json(layout.connections_index, index)


def save_agreement(layout: ArtifactsLayout, agreement: list[WeightConceptAgreement]) -> None:
    """Store the paper's weight finding for each weight-joined pair."""
    _write_json(layout.agreement, [asdict(pair) for pair in agreement])


def _write_json(path: Path, value: Any) -> None:
    """Write `value` as indented JSON, creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2), encoding="utf-8")
