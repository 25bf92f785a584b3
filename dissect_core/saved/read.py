"""Reading a saved folder back into a DissectionResult, strictly: a server calls this on uploads from strangers.

Only the files the manifest names, each named as the layout allows (names, never paths), each of the size and
sha256 the manifest gives; no links, no pickles (tensors only as safetensors, records only as JSON); every layer's
unit count and every tensor's shape consistent with the manifest and with each other; views decoded only once
their header says they are the run's view size. Anything else raises DissectError naming the problem.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from dissect_core.analysis.connections import LayerConnections
from dissect_core.analysis.outputs import ModelOutputs
from dissect_core.analysis.weight_agreement import WeightConceptAgreement
from dissect_core.errors import DissectError
from dissect_core.results import DissectionResult, LayerEvaluation, LayerResult, NeuronLabel, TopImage
from dissect_core.run_record import RunRecord
from dissect_core.saved import layout
from dissect_core.saved.codec import from_json

#: The largest manifest, safetensors header and view side a saved folder may have.
MAX_MANIFEST_BYTES = 64 * 1024 * 1024
MAX_TENSOR_HEADER_BYTES = 16 * 1024 * 1024
MAX_VIEW_SIDE = 2048
#: The dtypes a saved tensor may have.
FLOAT_DTYPES = {"F16", "BF16", "F32", "F64"}
INDEX_DTYPES = {"I64", "I32", "I16", "U8", "I8"}
#: The tensor fields of ModelOutputs, as saved under outputs.<name>.
OUTPUT_TENSORS = ("logits", "classifier_inputs", "classifier_weight", "classifier_bias")


@dataclass(frozen=True)
class SavedRun:
    """A saved folder read back: the result, and each probe image's view (crop x crop JPEG, by image index)."""

    result: DissectionResult
    view_images: list[Path]


def load_saved(folder: str | Path, *, max_bytes: int | None = None) -> SavedRun:
    """Return the run saved in `folder` (by `DissectionResult.save`), checked strictly; raise DissectError naming
    the first problem. `max_bytes` bounds the files' total size (declared and actual)."""
    root = Path(folder).expanduser()
    if not root.is_dir() or root.is_symlink():
        raise DissectError(f"{root} is not a folder; give the folder DissectionResult.save wrote")
    present = _present_files(root)
    manifest = _manifest(root, present)
    files: dict[str, dict[str, Any]] = manifest["files"]
    _check_members(files, present, manifest["n_images"], max_bytes)
    for name, entry in files.items():
        _check_file(root / name, name, entry)
    record = RunRecord.from_json(_json_file(root, layout.SETTINGS_JSON))
    run = _json_file(root, layout.RUN_JSON)
    if not isinstance(run, dict):
        raise DissectError(f"{layout.RUN_JSON} must be a JSON object")
    tensors = _tensors(root / layout.TENSORS, manifest, run)
    result = _result(manifest, record, run, tensors)
    _check_result_files(root, manifest)
    views = [root / layout.view_name(index) for index in range(manifest["n_images"])]
    view = record.resolved.view
    assert view is not None  # _result checked it
    for path in views:
        _check_view(path, view[1])
    return SavedRun(result=result, view_images=views)


def _present_files(root: Path) -> set[str]:
    """Return the names of every file under root; raise on a link, a pickle or anything but a file or folder."""
    present = set()
    for directory, folders, names in os.walk(root, followlinks=False):
        for name in [*folders, *names]:
            path = Path(directory) / name
            relative = path.relative_to(root).as_posix()
            if path.is_symlink():
                raise DissectError(f"{relative} is a link; a saved run holds plain files only")
            if path.is_dir():
                if relative != layout.IMAGES:
                    raise DissectError(f"{relative}/ is not part of a saved run; it holds only {layout.IMAGES}/")
                continue
            if not path.is_file():
                raise DissectError(f"{relative} is not a plain file; a saved run holds plain files only")
            if _looks_like_pickle(path):
                raise DissectError(
                    f"{relative} is a pickle (or a torch.save file, which holds one); a saved run holds tensors only "
                    "as safetensors and everything else as JSON, so it is refused"
                )
            present.add(relative)
    return present


def _looks_like_pickle(path: Path) -> bool:
    """Return whether the file is named or starts like a pickle (or a zip, as torch.save writes)."""
    if path.suffix.lower() in layout.PICKLE_SUFFIXES:
        return True
    with open(path, "rb") as handle:
        head = handle.read(4)
    return head.startswith(layout.PICKLE_MAGIC)


def _manifest(root: Path, present: set[str]) -> dict[str, Any]:
    """Return the checked manifest: format, counts, layers and files, each of the right type."""
    if layout.MANIFEST not in present:
        raise DissectError(f"{root} has no {layout.MANIFEST}; give the folder DissectionResult.save wrote")
    if (root / layout.MANIFEST).stat().st_size > MAX_MANIFEST_BYTES:
        raise DissectError(f"{layout.MANIFEST} is larger than {MAX_MANIFEST_BYTES} bytes")
    manifest = _json_file(root, layout.MANIFEST)
    if not isinstance(manifest, dict) or manifest.get("format") != layout.FORMAT:
        raise DissectError(f"{layout.MANIFEST} is not a saved run's manifest (format {layout.FORMAT!r})")
    if manifest.get("format_version") != layout.FORMAT_VERSION:
        raise DissectError(
            f"the saved run is format version {manifest.get('format_version')!r}; this library reads version "
            f"{layout.FORMAT_VERSION}: upgrade neuron-atlas or save the run again"
        )
    for key in ("n_images", "n_concepts"):
        if not _is_count(manifest.get(key)):
            raise DissectError(f"{layout.MANIFEST}'s {key} must be a whole number of at least 1")
    layers = manifest.get("layers")
    if not isinstance(layers, list) or not layers:
        raise DissectError(f"{layout.MANIFEST} must list the run's layers")
    for layer in layers:
        if not isinstance(layer, dict) or not isinstance(layer.get("name"), str) or not _is_count(layer.get("n_units")):
            raise DissectError(f"{layout.MANIFEST}'s layer {layer!r} must have a name and a unit count of at least 1")
    if len({layer["name"] for layer in layers}) != len(layers):
        raise DissectError(f"{layout.MANIFEST} lists a layer twice")
    files = manifest.get("files")
    if not isinstance(files, dict):
        raise DissectError(f"{layout.MANIFEST} must list the files as an object of name: {{bytes, sha256}}")
    for name, entry in files.items():
        if (
            not isinstance(entry, dict)
            or not isinstance(entry.get("bytes"), int)
            or isinstance(entry.get("bytes"), bool)
            or entry["bytes"] < 0
            or not isinstance(entry.get("sha256"), str)
        ):
            raise DissectError(f"{layout.MANIFEST}'s entry for {name!r} must give its bytes and sha256")
    return manifest


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _check_members(files: dict[str, Any], present: set[str], n_images: int, max_bytes: int | None) -> None:
    """Raise unless the manifest names exactly the folder's files, each a name the layout allows, within bounds."""
    for name in files:
        if not layout.MEMBER_NAME.fullmatch(name):
            raise DissectError(
                f"{layout.MANIFEST} names {name!r}, which is not a file of a saved run (names only, never paths)"
            )
    expected = {*layout.FIXED_FILES, *(layout.view_name(index) for index in range(n_images))}
    if set(files) != expected:
        missing = sorted(expected - set(files))[:3]
        extra = sorted(set(files) - expected)[:3]
        raise DissectError(
            f"{layout.MANIFEST} lists the wrong files for {n_images} images (missing: {', '.join(missing) or 'none'}; "
            f"not expected: {', '.join(extra) or 'none'})"
        )
    unlisted = sorted(present - set(files) - {layout.MANIFEST})
    if unlisted:
        raise DissectError(f"{unlisted[0]} is in the folder but not in {layout.MANIFEST}; a saved run holds no others")
    absent = sorted(set(files) - present)
    if absent:
        raise DissectError(f"{absent[0]} is in {layout.MANIFEST} but not in the folder; save the run again")
    declared = sum(entry["bytes"] for entry in files.values())
    if max_bytes is not None and declared > max_bytes:
        raise DissectError(f"the saved run declares {declared} bytes, more than the {max_bytes} allowed")


def _check_file(path: Path, name: str, entry: dict[str, Any]) -> None:
    """Raise unless the file has the manifest's size and sha256."""
    size = path.stat().st_size
    if size != entry["bytes"]:
        raise DissectError(f"{name} has {size} bytes but {layout.MANIFEST} says {entry['bytes']}")
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != entry["sha256"]:
        raise DissectError(f"{name}'s sha256 does not match {layout.MANIFEST}; the file was changed or damaged")


def _json_file(root: Path, name: str) -> Any:
    """Return a JSON file's value (plain JSON: objects, lists, text, numbers; nothing that builds objects)."""
    try:
        return json.loads((root / name).read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise DissectError(f"{name} is not valid JSON ({error})") from None


def _tensors(path: Path, manifest: dict[str, Any], run: dict[str, Any]) -> dict[str, torch.Tensor]:
    """Return tensors.safetensors' tensors, its header checked (keys, dtypes, offsets) before any is read."""
    from safetensors.torch import load

    data = path.read_bytes()
    if len(data) < 8:
        raise DissectError(f"{layout.TENSORS} is too short to be a safetensors file")
    (header_size,) = struct.unpack("<Q", data[:8])
    if header_size > min(MAX_TENSOR_HEADER_BYTES, len(data) - 8):
        raise DissectError(f"{layout.TENSORS}'s header claims {header_size} bytes; the file is damaged or hostile")
    try:
        header = json.loads(data[8 : 8 + header_size])
    except ValueError:
        raise DissectError(f"{layout.TENSORS}'s header is not JSON; the file is not a safetensors file") from None
    if not isinstance(header, dict):
        raise DissectError(f"{layout.TENSORS}'s header must be a JSON object")
    header.pop("__metadata__", None)
    expected = _expected_keys(manifest, run)
    unknown = sorted(set(header) - expected)
    if unknown:
        raise DissectError(f"{layout.TENSORS} holds {unknown[0]!r}, which is not a tensor of a saved run")
    for key, spec in header.items():
        if not isinstance(spec, dict) or spec.get("dtype") not in FLOAT_DTYPES | INDEX_DTYPES | {"BOOL"}:
            raise DissectError(f"{layout.TENSORS}'s {key} has no supported dtype")
    try:
        return load(data)
    except Exception as error:  # safetensors raises its own SafetensorError on bad offsets
        raise DissectError(f"{layout.TENSORS} cannot be read ({error})") from None


def _expected_keys(manifest: dict[str, Any], run: dict[str, Any]) -> set[str]:
    """Return every key tensors.safetensors may hold, given the layers, outputs and connections."""
    keys = {"image_embeddings", "log_normalisers", "carry_cosines", "reference_spreads"}
    for position in range(len(manifest["layers"])):
        keys |= {layout.tensor_key("layer", position, part) for part in ("activations", "top_indices", "top_maps")}
    keys |= {layout.tensor_key("outputs", name) for name in OUTPUT_TENSORS}
    connections = run.get("connections")
    for position in range(len(connections) if isinstance(connections, list) else 0):
        keys.add(layout.tensor_key("connection", position, "weights"))
    return keys


def _shape(
    tensors: dict[str, torch.Tensor], key: str, shape: tuple[int | None, ...], *, required: bool = True
) -> torch.Tensor | None:
    """Return tensor `key` after checking its shape (None: any size on that axis); raise naming the mismatch."""
    tensor = tensors.get(key)
    if tensor is None:
        if required:
            raise DissectError(f"{layout.TENSORS} lacks {key}")
        return None
    if tensor.ndim != len(shape) or any(
        want is not None and got != want for got, want in zip(tensor.shape, shape, strict=True)
    ):
        wanted = "x".join("*" if size is None else str(size) for size in shape)
        found = "x".join(map(str, tensor.shape))
        raise DissectError(f"{layout.TENSORS}'s {key} is {found}, but the manifest's counts make it {wanted}")
    return tensor


def _result(
    manifest: dict[str, Any], record: RunRecord, run: dict[str, Any], tensors: dict[str, torch.Tensor]
) -> DissectionResult:
    """Return the result the files describe, checking every count against the manifest and the others."""
    n_images, n_concepts = manifest["n_images"], manifest["n_concepts"]
    view = record.resolved.view
    if view is None or not 1 <= view[1] <= MAX_VIEW_SIDE or view[1] > view[0]:
        raise DissectError(f"{layout.SETTINGS_JSON} must give the view (resize, crop), crop at most {MAX_VIEW_SIDE}")
    if record.facts.n_images not in (None, n_images) or record.facts.n_concepts not in (None, n_concepts):
        raise DissectError(f"{layout.SETTINGS_JSON}'s image or concept count differs from {layout.MANIFEST}'s")
    image_ids = _strings(run.get("image_ids"), "image_ids", n_images)
    image_paths = _strings(run.get("image_paths"), "image_paths", n_images)
    if len(set(image_paths)) != n_images:
        raise DissectError(f"{layout.RUN_JSON}'s image_paths repeat a path; each probe image has its own")
    concepts = _strings(run.get("concepts"), "concepts", n_concepts)
    known = set(concepts)
    saved_layers = run.get("layers")
    if not isinstance(saved_layers, list) or len(saved_layers) != len(manifest["layers"]):
        raise DissectError(f"{layout.RUN_JSON} must hold one entry per layer of {layout.MANIFEST}")
    embeddings = _shape(tensors, "image_embeddings", (n_images, None))
    assert embeddings is not None
    layers = [
        _layer(position, declared, saved, tensors, n_images, image_ids, known)
        for position, (declared, saved) in enumerate(zip(manifest["layers"], saved_layers, strict=True))
    ]
    units = {layer.name: layer.n_units for layer in layers}
    return DissectionResult(
        record=record,
        image_ids=image_ids,
        image_paths=image_paths,
        concepts=concepts,
        layers=layers,
        image_embeddings=embeddings,
        log_normalisers=_shape(tensors, "log_normalisers", (n_images,), required=False),
        carry_cosines=_shape(tensors, "carry_cosines", (n_images,), required=False),
        reference_spreads=_shape(tensors, "reference_spreads", (None,), required=False),
        outputs=_outputs(run.get("outputs"), tensors, n_images),
        connections=_connections(run.get("connections"), tensors, units),
        weight_concept_agreement=[
            from_json(WeightConceptAgreement, item, f"weight_concept_agreement[{i}]")
            for i, item in enumerate(_list(run.get("weight_concept_agreement"), "weight_concept_agreement"))
        ],
    )


def _layer(
    position: int,
    declared: dict[str, Any],
    saved: Any,
    tensors: dict[str, torch.Tensor],
    n_images: int,
    image_ids: list[str],
    concepts: set[str],
) -> LayerResult:
    """Return one layer, its neurons, top images and tensors checked against its declared unit count."""
    name, n_units = declared["name"], declared["n_units"]
    where = f"{layout.RUN_JSON}'s layer {name}"
    if not isinstance(saved, dict) or saved.get("name") != name:
        raise DissectError(f"{where} is missing or out of order")
    neurons = [
        from_json(NeuronLabel, item, f"{where} neuron {i}") for i, item in enumerate(_list(saved.get("neurons"), where))
    ]
    if len(neurons) != n_units:
        raise DissectError(f"layer {name} has {len(neurons)} neurons but {layout.MANIFEST} says {n_units} units")
    for unit, neuron in enumerate(neurons):
        if neuron.unit != unit or neuron.label not in concepts:
            raise DissectError(f"{where} neuron {unit} has unit {neuron.unit} or a label not in the concept set")
    tops = [
        [from_json(TopImage, top, f"{where} top image") for top in _list(row, where)]
        for row in _list(saved.get("top_images"), where)
    ]
    if len(tops) != n_units:
        raise DissectError(f"layer {name} has top images for {len(tops)} units but {layout.MANIFEST} says {n_units}")
    for row in tops:
        for top in row:
            if not 0 <= top.image_index < n_images or image_ids[top.image_index] != top.image_id:
                raise DissectError(
                    f"{where} has a top image {top.image_index} that is not one of its {n_images} images"
                )
    activations = _shape(tensors, layout.tensor_key("layer", position, "activations"), (n_images, n_units))
    top_indices = _shape(tensors, layout.tensor_key("layer", position, "top_indices"), (n_units, None))
    top_maps = _shape(
        tensors, layout.tensor_key("layer", position, "top_maps"), (n_units, None, None, None), required=False
    )
    assert activations is not None and top_indices is not None
    if top_indices.is_floating_point() or (
        top_indices.numel() and not 0 <= int(top_indices.min()) <= int(top_indices.max()) < n_images
    ):
        raise DissectError(f"layer {name}'s top_indices must be image indices below {n_images}")
    kind = saved.get("kind")
    if not isinstance(kind, str):
        raise DissectError(f"{where} must give its kind")
    evaluation = saved.get("evaluation")
    return LayerResult(
        name=name,
        kind=kind,
        neurons=neurons,
        top_images=tops,
        activations=activations,
        top_indices=top_indices,
        top_maps=top_maps,
        evaluation=None if evaluation is None else from_json(LayerEvaluation, evaluation, f"{where} evaluation"),
    )


def _outputs(saved: Any, tensors: dict[str, torch.Tensor], n_images: int) -> ModelOutputs | None:
    """Return the model's outputs on the images, when the run kept them."""
    if saved is None:
        return None
    if not isinstance(saved, dict):
        raise DissectError(f"{layout.RUN_JSON}'s outputs must be an object or null")
    logits = _shape(tensors, layout.tensor_key("outputs", "logits"), (n_images, None))
    assert logits is not None
    names = {key: saved.get(key) for key in ("classifier_layer", "feeding_layer")}
    if not all(value is None or isinstance(value, str) for value in names.values()):
        raise DissectError(f"{layout.RUN_JSON}'s outputs must name layers as text")
    return ModelOutputs(
        logits=logits,
        classifier_inputs=_shape(
            tensors, layout.tensor_key("outputs", "classifier_inputs"), (n_images, None), required=False
        ),
        classifier_weight=_shape(
            tensors, layout.tensor_key("outputs", "classifier_weight"), (logits.shape[1], None), required=False
        ),
        classifier_bias=_shape(
            tensors, layout.tensor_key("outputs", "classifier_bias"), (logits.shape[1],), required=False
        ),
        **names,
    )


def _connections(saved: Any, tensors: dict[str, torch.Tensor], units: dict[str, int]) -> list[LayerConnections]:
    """Return the connections between dissected layers, each weight matrix sized by its layers' unit counts."""
    connections = []
    for position, item in enumerate(_list(saved, "connections")):
        if not isinstance(item, dict) or item.get("from_layer") not in units or item.get("to_layer") not in units:
            raise DissectError(f"{layout.RUN_JSON}'s connection {position} must join two of the run's layers")
        weights = _shape(
            tensors,
            layout.tensor_key("connection", position, "weights"),
            (units[item["to_layer"]], units[item["from_layer"]]),
        )
        connections.append(from_json(LayerConnections, item, f"connection {position}", weights=weights))
    return connections


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise DissectError(f"{where} must be a JSON list")
    return value


def _strings(value: Any, name: str, count: int) -> list[str]:
    """Return a JSON list of `count` strings; raise naming `name` otherwise."""
    if not isinstance(value, list) or len(value) != count or not all(isinstance(item, str) for item in value):
        raise DissectError(f"{layout.RUN_JSON}'s {name} must be {count} strings, as {layout.MANIFEST} counts them")
    return value


def _check_result_files(root: Path, manifest: dict[str, Any]) -> None:
    """Raise unless results.json and results.csv hold the manifest's layers and unit counts."""
    results = _json_file(root, layout.RESULTS_JSON)
    declared = [(layer["name"], layer["n_units"]) for layer in manifest["layers"]]
    layers = results.get("layers") if isinstance(results, dict) else None
    found = [
        (layer.get("name"), len(layer.get("neurons") or [])) if isinstance(layer, dict) else (None, 0)
        for layer in (layers if isinstance(layers, list) else [])
    ]
    if found != declared:
        raise DissectError(f"{layout.RESULTS_JSON}'s layers and units differ from {layout.MANIFEST}'s")
    with open(root / layout.RESULTS_CSV, newline="", encoding="utf-8") as handle:
        rows = sum(1 for _ in csv.reader(handle)) - 1
    if rows != sum(units for _, units in declared):
        raise DissectError(
            f"{layout.RESULTS_CSV} has {rows} rows; {layout.MANIFEST}'s layers have {sum(u for _, u in declared)} units"
        )


def _check_view(path: Path, crop: int) -> None:
    """Raise unless the file is a JPEG of crop x crop pixels that decodes (its size read before any decoding)."""
    from PIL import Image, UnidentifiedImageError

    name = path.relative_to(path.parent.parent).as_posix()
    try:
        with Image.open(io.BytesIO(path.read_bytes()), formats=["JPEG"]) as image:
            size = image.size
            if size == (crop, crop):
                image.load()
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError, ValueError) as error:
        raise DissectError(f"{name} is not a readable JPEG ({error})") from None
    if size != (crop, crop):
        raise DissectError(f"{name} is {size[0]}x{size[1]} pixels; a view of this run is {crop}x{crop}")
