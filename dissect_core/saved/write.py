"""Writing a result: the CLI's result files (results.csv, results.json, settings.json) and the self-contained saved
folder (those, plus the artifacts, the views and a manifest; laid out in dissect_core.saved.layout)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch

import dissect_core
from dissect_core.errors import DissectError
from dissect_core.neuron_rows import RunProvenance, result_rows, write_csv
from dissect_core.results import DissectionResult
from dissect_core.results_json import results_json
from dissect_core.saved import layout
from dissect_core.saved.codec import to_json
from dissect_core.tensor_files import save_safetensors

#: Threads drawing views: PIL's resize and JPEG encoding release the GIL.
VIEW_THREADS = 8


def write_result_files(result: DissectionResult, out: Path, run_id: int | None = None) -> list[Path]:
    """Write results.csv, results.json and settings.json into `out`; return their paths. The neuron rows name
    the run `run_id` when it was stored (the web export's rows, with the same columns)."""
    out.mkdir(parents=True, exist_ok=True)
    provenance = RunProvenance.of_record(result.record, run_id)
    csv_path = out / layout.RESULTS_CSV
    with open(csv_path, "w", newline="", encoding="utf-8") as handle:
        write_csv(handle, result_rows(result, provenance))
    json_path = out / layout.RESULTS_JSON
    json_path.write_text(json.dumps(results_json(result, provenance), indent=1), encoding="utf-8")
    settings_path = out / layout.SETTINGS_JSON
    settings_path.write_text(json.dumps(result.record.to_json(), indent=2), encoding="utf-8")
    return [csv_path, json_path, settings_path]


def save_result(result: DissectionResult, folder: str | Path) -> Path:
    """Write the result as a self-contained saved folder (`load_saved` reads it, `neuron-atlas push` uploads it);
    return the folder. It appears complete or not at all; an earlier save in it is replaced."""
    target = Path(folder).expanduser()
    _check_replaceable(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{target.name}-partial-", dir=target.parent))
    try:
        write_result_files(result, partial)
        (partial / layout.RUN_JSON).write_text(json.dumps(run_json(result)), encoding="utf-8")
        tensors = {key: (value, value.dtype) for key, value in result_tensors(result).items()}
        save_safetensors(partial / layout.TENSORS, tensors, metadata={"format": layout.FORMAT})
        _write_views(result, partial)
        (partial / layout.MANIFEST).write_text(json.dumps(manifest(result, partial), indent=1), encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        partial.rename(target)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return target


def _check_replaceable(target: Path) -> None:
    """Raise unless `target` is absent, empty, or an earlier saved folder (nothing else in it is overwritten)."""
    if not target.exists():
        return
    if not target.is_dir():
        raise DissectError(f"{target} is a file; save the run into a new or empty folder")
    present = {path.relative_to(target).as_posix() for path in target.rglob("*") if not path.is_dir()}
    if not present:
        return
    listed: set[str] = set()
    if (target / layout.MANIFEST).is_file():
        try:
            listed = set(json.loads((target / layout.MANIFEST).read_text(encoding="utf-8"))["files"])
        except (ValueError, KeyError, TypeError):
            listed = set()
    others = sorted(present - listed - {layout.MANIFEST})
    if others or not listed:
        raise DissectError(
            f"{target} holds files that are not an earlier saved run ({', '.join(others[:3]) or 'no manifest'}); "
            "save the run into a new or empty folder"
        )


def run_json(result: DissectionResult) -> dict[str, Any]:
    """Return what rebuilds the result besides its tensors and record: ids, paths, concepts, layers' fields."""
    return {
        "image_ids": list(result.image_ids),
        "image_paths": list(result.image_paths),
        "concepts": list(result.concepts),
        "layers": [
            {
                "name": layer.name,
                "kind": layer.kind,
                "evaluation": to_json(layer.evaluation),
                "neurons": to_json(layer.neurons),
                "top_images": to_json(layer.top_images),
            }
            for layer in result.layers
        ],
        "outputs": None
        if result.outputs is None
        else {"classifier_layer": result.outputs.classifier_layer, "feeding_layer": result.outputs.feeding_layer},
        "connections": [
            {key: value for key, value in to_json(connection).items() if key != "weights"}
            for connection in result.connections
        ],
        "weight_concept_agreement": to_json(result.weight_concept_agreement),
    }


def result_tensors(result: DissectionResult) -> dict[str, torch.Tensor]:
    """Return every tensor of the result by its key in tensors.safetensors (in its own dtype; the result's own
    tensors, not copies: `save_safetensors` streams them a part at a time)."""
    tensors: dict[str, torch.Tensor | None] = {
        "image_embeddings": result.image_embeddings,
        "log_normalisers": result.log_normalisers,
        "carry_cosines": result.carry_cosines,
        "reference_spreads": result.reference_spreads,
    }
    for position, layer in enumerate(result.layers):
        tensors[layout.tensor_key("layer", position, "activations")] = layer.activations
        tensors[layout.tensor_key("layer", position, "top_indices")] = layer.top_indices
        tensors[layout.tensor_key("layer", position, "top_maps")] = layer.top_maps
    if result.outputs is not None:
        for name in ("logits", "classifier_inputs", "classifier_weight", "classifier_bias"):
            tensors[layout.tensor_key("outputs", name)] = getattr(result.outputs, name)
    for position, connection in enumerate(result.connections):
        tensors[layout.tensor_key("connection", position, "weights")] = connection.weights
    return {key: value for key, value in tensors.items() if value is not None}


def _write_views(result: DissectionResult, folder: Path) -> None:
    """Write each probe image's view (what the model saw, crop x crop) as images/<index>.jpg."""
    from dissect_core.data.probe import load_view

    view = result.record.resolved.view
    if view is None:
        raise DissectError("the result's record gives no view (resolved.view); it predates saving, dissect it again")
    (folder / layout.IMAGES).mkdir()

    def draw(index: int) -> None:
        path = result.image_paths[index]
        try:
            image = load_view(path, *view)
        except (OSError, ValueError) as error:
            raise DissectError(
                f"probe image {path} can no longer be read ({error}); restore it and save again"
            ) from None
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="JPEG", quality=layout.VIEW_JPEG_QUALITY)
        (folder / layout.view_name(index)).write_bytes(buffer.getvalue())

    with ThreadPoolExecutor(max_workers=min(VIEW_THREADS, os.cpu_count() or 1)) as pool:
        list(pool.map(draw, range(len(result.image_paths))))


def manifest(result: DissectionResult, folder: Path) -> dict[str, Any]:
    """Return the manifest of a saved folder's files (every file in it but the manifest)."""
    files = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            files[path.relative_to(folder).as_posix()] = {
                "bytes": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
            }
    return {
        "format": layout.FORMAT,
        "format_version": layout.FORMAT_VERSION,
        "code_version": dissect_core.__version__,
        "n_images": len(result.image_ids),
        "n_concepts": len(result.concepts),
        "layers": [{"name": layer.name, "n_units": layer.n_units} for layer in result.layers],
        "files": files,
    }
