"""Writing a run's artifacts folder (laid out by `ArtifactsLayout`): whole and atomically for a stored run, or part
by part for a folder built some other way (the test seeds store through the same functions)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from app.persistence.store.analysis_files import save_agreement, save_connections, save_outputs
from app.persistence.store.layout import ArtifactsLayout
from dissect_core.data.concepts import concepts_text
from dissect_core.results import DissectionResult
from dissect_core.tensor_files import row_parts


def write_artifacts(root: Path, result: DissectionResult, pinned: dict[str, Any]) -> Path:
    """Write the run's artifacts into a new folder under root; return it (it appears complete or not at all)."""
    run_dir = root / uuid.uuid4().hex
    partial = root / f".partial-{run_dir.name}"
    partial.mkdir(parents=True)
    try:
        layout = ArtifactsLayout(partial)
        save_run_tensors(
            layout,
            image_embeddings=result.image_embeddings,
            log_normalisers=result.log_normalisers,
            carry_cosines=result.carry_cosines,
            reference_spreads=result.reference_spreads,
        )
        for layer in result.layers:
            save_layer(
                layout,
                layer.name,
                top_indices=layer.top_indices,
                activations=layer.activations,
                top_maps=layer.top_maps,
            )
        save_concepts(layout, result.concepts)
        save_settings(layout, pinned)
        if result.outputs is not None:
            save_outputs(layout, result.outputs)
        if result.connections:
            save_connections(layout, result.connections)
        if result.weight_concept_agreement:
            save_agreement(layout, result.weight_concept_agreement)
        partial.rename(run_dir)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return run_dir


def save_run_tensors(
    layout: ArtifactsLayout,
    *,
    image_embeddings: torch.Tensor | None = None,
    log_normalisers: torch.Tensor | None = None,
    carry_cosines: torch.Tensor | None = None,
    reference_spreads: torch.Tensor | None = None,
) -> None:
    """Store the given tensors of the run: embeddings, log normalisers, carry bars, the vocabulary's spreads."""
    if image_embeddings is not None:
        _save(image_embeddings, layout.image_embeddings)
    if log_normalisers is not None:
        _save(log_normalisers, layout.log_normalisers)
    if carry_cosines is not None:
        _save(carry_cosines, layout.carry_cosines, torch.float32)
    if reference_spreads is not None:
        _save(reference_spreads, layout.reference_spreads, torch.float32)


def save_layer(
    layout: ArtifactsLayout,
    layer: str,
    *,
    top_indices: torch.Tensor | None = None,
    activations: torch.Tensor | None = None,
    top_maps: torch.Tensor | None = None,
) -> None:
    """Store the given parts of what a run keeps of one layer: top indices, activations, top images' maps."""
    if top_indices is not None:
        _save(top_indices, layout.top_indices(layer))
    # float16 is enough for histograms, bands, correlations and heatmaps, and halves the bytes kept per run.
    if activations is not None:
        _save(activations, layout.activations(layer), torch.float16)
    if top_maps is not None:
        _save(top_maps, layout.top_maps(layer), torch.float16)


def save_concepts(layout: ArtifactsLayout, concepts: Sequence[str]) -> None:
    """Store the run's concept set, as text (one per line) and as a list."""
    layout.folder.mkdir(parents=True, exist_ok=True)
    torch.save(list(concepts), layout.concept_list)
    layout.concepts.write_text(concepts_text(concepts), encoding="utf-8")


def save_settings(layout: ArtifactsLayout, pinned: dict[str, Any]) -> None:
    """Store the run's pinned settings as JSON."""
    layout.folder.mkdir(parents=True, exist_ok=True)
    layout.settings.write_text(json.dumps(pinned, indent=2, sort_keys=True), encoding="utf-8")


def _save(tensor: torch.Tensor, path: Path, dtype: torch.dtype | None = None) -> None:
    """Store the tensor (in `dtype` when given) holding its own storage, never a view's whole one: as it is when it
    already does, else through a copy made in rows into a file-backed buffer beside `path`, so a result's matrices
    mapped from files (the Ray executor's) are never copied whole into memory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    stored = tensor.detach().cpu()
    wanted = dtype or stored.dtype
    if stored.dtype != wanted or not _owns_its_storage(stored):
        stored = _file_backed_copy(stored, wanted, path.parent)
    torch.save(stored, path)


def _owns_its_storage(tensor: torch.Tensor) -> bool:
    """Return whether `tensor` is contiguous and spans its whole storage (saving it saves nothing else)."""
    storage_bytes = tensor.untyped_storage().nbytes()
    return bool(tensor.is_contiguous() and tensor.storage_offset() == 0 and storage_bytes == tensor.nbytes)


def _file_backed_copy(tensor: torch.Tensor, dtype: torch.dtype, folder: Path) -> torch.Tensor:
    """Return a contiguous copy of `tensor` in `dtype`, its storage a mapped file in `folder` (removed at once; the
    mapping keeps it until the copy is dropped), filled one part of rows (`row_parts`) at a time."""
    numel = tensor.numel()
    if numel == 0:
        return torch.empty(tensor.shape, dtype=dtype)
    handle, name = tempfile.mkstemp(dir=folder, suffix=".tmp")
    try:
        os.ftruncate(handle, numel * torch.empty(0, dtype=dtype).element_size())
        copy = torch.from_file(name, shared=True, size=numel, dtype=dtype).view(tensor.shape)
    finally:
        os.close(handle)
        os.unlink(name)
    rows = copy.view(1, 1) if tensor.dim() == 0 else copy.view(len(copy), -1)
    start = 0
    for part in row_parts(tensor):
        rows[start : start + len(part)].copy_(part)
        start += len(part)
    return copy
