"""What a stored run found about its model's wiring, read from its artifacts folder: the model's outputs on the
probe images, the connections between dissected layers and the paper's weight finding. A run stored before they
were kept lacks the files (None or []); a damaged file raises WiringUnavailable naming it and the fix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open

from app.core.errors import AtlasError
from app.persistence.store.layout import ArtifactsLayout
from app.read.artifacts.tensors import damaged_artifact
from dissect_core.analysis.connections import LayerConnections
from dissect_core.analysis.outputs import ModelOutputs
from dissect_core.analysis.weight_agreement import WeightConceptAgreement

NO_WIRING = "its predictions, class pages and connections cannot be shown"
RUN = "This run"
CONNECTION_KINDS = ("weight", "attribution")


class WiringUnavailable(AtlasError):
    """A stored outputs, connections or weight-finding file is damaged; the message names it and the fix."""


def _damaged(path: Path, problem: str) -> AtlasError:
    return damaged_artifact(path, RUN, problem, NO_WIRING, WiringUnavailable)


def _read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Return a safetensors file's tensors and metadata, or raise WiringUnavailable when it cannot be read."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            return {key: handle.get_tensor(key) for key in handle.keys()}, dict(handle.metadata() or {})  # noqa: SIM118
    except Exception as reason:  # truncated or overwritten: its message may name server paths, so it is not shown
        raise _damaged(path, f"it cannot be read: {type(reason).__name__}") from None


def _read_json_list(path: Path) -> list[Any]:
    """Return a JSON file's list, or raise WiringUnavailable when it is not one."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as reason:
        raise _damaged(path, f"it cannot be read: {type(reason).__name__}") from None
    if not isinstance(value, list):
        raise _damaged(path, f"it holds a {type(value).__name__}, not a list")
    return value


def load_outputs(layout: ArtifactsLayout) -> ModelOutputs | None:
    """Return the run's model outputs (float32), or None for a run stored before they were kept."""
    path = layout.outputs
    if not path.is_file():
        return None
    tensors, metadata = _read_safetensors(path)
    logits = tensors.get("logits")
    if logits is None or logits.dim() != 2:
        raise _damaged(path, "its logits are missing or not [images, classes]")
    inputs = tensors.get("classifier_inputs")
    weight = tensors.get("classifier_weight")
    bias = tensors.get("classifier_bias")
    if inputs is not None and (inputs.dim() != 2 or inputs.shape[0] != logits.shape[0]):
        raise _damaged(path, f"classifier inputs {tuple(inputs.shape)} do not match logits {tuple(logits.shape)}")
    if weight is not None and (weight.dim() != 2 or weight.shape[0] != logits.shape[1]):
        raise _damaged(path, f"classifier weight {tuple(weight.shape)} does not match logits {tuple(logits.shape)}")
    if weight is not None and inputs is not None and weight.shape[1] != inputs.shape[1]:
        raise _damaged(path, f"classifier weight {tuple(weight.shape)} does not take inputs {tuple(inputs.shape)}")
    return ModelOutputs(
        logits=logits.float(),
        classifier_layer=metadata.get("classifier_layer"),
        classifier_inputs=None if inputs is None else inputs.float(),
        classifier_weight=None if weight is None else weight.float(),
        classifier_bias=None if bias is None else bias.float(),
        feeding_layer=metadata.get("feeding_layer"),
    )


def _connection(layout: ArtifactsLayout, entry: Any) -> LayerConnections:
    """Return one indexed pair's connections, or raise WiringUnavailable when its entry or weights are damaged."""
    index = layout.connections_index
    try:
        from_layer, to_layer, kind = str(entry["from_layer"]), str(entry["to_layer"]), entry["kind"]
        n_images, folded_affine, note = entry["n_images"], entry["folded_affine"], str(entry["note"])
    except (KeyError, TypeError):
        raise _damaged(index, "an entry lacks from_layer, to_layer, kind, n_images, folded_affine or note") from None
    if kind not in CONNECTION_KINDS or not isinstance(folded_affine, bool) or not isinstance(n_images, int | None):
        raise _damaged(index, f"the entry {from_layer} → {to_layer} has a bad kind, n_images or folded_affine")
    path = layout.connections(from_layer, to_layer)
    if not path.is_file():
        raise _damaged(index, f"it lists {from_layer} → {to_layer}, whose {path.name} is missing")
    weights = _read_safetensors(path)[0].get("weights")
    if weights is None or weights.dim() != 2:
        raise _damaged(path, "its weights are missing or not [downstream units, upstream units]")
    return LayerConnections(from_layer, to_layer, kind, weights.float(), n_images, folded_affine, note)


def load_connections(layout: ArtifactsLayout) -> list[LayerConnections]:
    """Return the run's connections between dissected layers ([] for a run stored without them)."""
    if not layout.connections_index.is_file():
        return []
    return [_connection(layout, entry) for entry in _read_json_list(layout.connections_index)]


def load_agreement(layout: ArtifactsLayout) -> list[WeightConceptAgreement]:
    """Return the run's weight finding per weight-joined pair ([] for a run stored without it)."""
    path = layout.agreement
    if not path.is_file():
        return []
    try:
        return [
            WeightConceptAgreement(
                from_layer=str(entry["from_layer"]),
                to_layer=str(entry["to_layer"]),
                pearson_r=float(entry["pearson_r"]),
                p_value=float(entry["p_value"]),
                top_unit_r=float(entry["top_unit_r"]),
                all_pairs_mean=float(entry["all_pairs_mean"]),
                curve=[(int(k), float(mean)) for k, mean in entry["curve"]],
            )
            for entry in _read_json_list(path)
        ]
    except (KeyError, TypeError, ValueError):
        raise _damaged(path, "an entry lacks a field or holds a non-number") from None
