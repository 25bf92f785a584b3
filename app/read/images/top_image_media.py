"""A top image's crop and heatmap, cut on their first request and kept in the media store by content hash.

A run stores each probe image's view and each spatial layer's top maps (float16, in its artifacts folder); the
crop is cut from the view around the stored box and the heatmap drawn from the maps, exactly as the store step
drew them before. The file is then kept content-addressed and named by an alias of the run's artifacts folder,
layer, unit and rank, so later requests are plain file hits. A run never changes once stored, so neither does
the file behind one of these URLs.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.core.errors import NotFound
from app.core.urls import TOP_MEDIA_FILES
from app.persistence.media import CUT_ON_REQUEST, MediaStore, crop_around, heatmap_levels, heatmap_png, jpeg_bytes
from app.persistence.models import Layer, Neuron, Run, TopImage
from app.persistence.store.layout import ArtifactsLayout, layer_file_name
from app.read.layers import queries as layer_queries

REDISSECT = "dissect the model again to store it"


@dataclass(frozen=True)
class StoredTop:
    """What cutting a top image's media needs from its row: box, view, stored names and where its maps are."""

    top_id: int
    neuron_id: int
    layer_id: int
    box: tuple[float, float, float, float]
    view_file: str
    crop_file: str
    heatmap_file: str | None
    artifacts_dir: str


def media_kind(file_name: str) -> str:
    """Return the kind (`crop` or `heatmap`) a top image's media file name asks for, or raise NotFound."""
    for kind, name in TOP_MEDIA_FILES.items():
        if file_name == name:
            return kind
    names = " or ".join(TOP_MEDIA_FILES.values())
    raise NotFound(f"A top image has no '{file_name}'; ask for {names}.")


def top_media_file(
    session: Session, settings: Settings, *, run_id: int, layer: str, unit: int, rank: int, kind: str
) -> Path:
    """Return the file of a top image's crop or heatmap, cutting and keeping it on first request; else NotFound."""
    top = _stored_top(session, run_id, layer, unit, rank)
    stored = top.crop_file if kind == "crop" else top.heatmap_file
    where = f"top image {rank} of unit {unit} in layer '{layer}' of run {run_id}"
    if stored is None:
        raise NotFound(f"The {where} has no heatmap: its layer has no spatial activation maps; show its crop instead.")
    media = MediaStore(settings.media_dir)
    if stored != CUT_ON_REQUEST:  # a run stored before cutting on request: its file was written at store time
        return _existing(settings.media_dir, stored, where)
    alias = f"{Path(top.artifacts_dir).name}/{layer_file_name(layer)}/{unit}-{rank}-{kind}"
    relative = media.alias(alias)
    if relative is None:
        if kind == "crop":
            view = _view(settings.media_dir, top.view_file, where)
            relative = media.put(jpeg_bytes(crop_around(view, top.box)), ".jpg")
        else:
            levels = _heatmap_levels(session, top, rank, _maps_path(settings, top, layer), where)
            relative = media.put(heatmap_png(levels), ".png")
        media.set_alias(alias, relative)
    return settings.media_dir / relative


def _stored_top(session: Session, run_id: int, layer: str, unit: int, rank: int) -> StoredTop:
    """Return the stored top image a URL names, or raise NotFound saying which part does not exist."""
    row = session.execute(
        select(
            TopImage.id,
            TopImage.neuron_id,
            Neuron.layer_id,
            TopImage.box_x0,
            TopImage.box_y0,
            TopImage.box_x1,
            TopImage.box_y1,
            TopImage.view_file,
            TopImage.crop_file,
            TopImage.heatmap_file,
            Run.artifacts_dir,
        )
        .join(Neuron, Neuron.id == TopImage.neuron_id)
        .join(Layer, Layer.id == Neuron.layer_id)
        .join(Run, Run.id == Layer.run_id)
        .where(Run.id == run_id, Layer.name == layer, Neuron.unit == unit, TopImage.rank == rank)
    ).first()
    if row is not None:
        top_id, neuron_id, layer_id, x0, y0, x1, y1, view_file, crop_file, heatmap_file, artifacts_dir = row
        return StoredTop(
            top_id, neuron_id, layer_id, (x0, y0, x1, y1), view_file, crop_file, heatmap_file, artifacts_dir
        )
    layer_row = layer_queries.get_layer(session, run_id, layer)  # raises for a missing run or layer
    found = session.scalar(select(Neuron.id).where(Neuron.layer_id == layer_row.id, Neuron.unit == unit))
    if found is None:
        raise NotFound(f"Layer '{layer}' of run {run_id} has no unit {unit}; its units are 0–{layer_row.n_units - 1}.")
    low, high = session.execute(
        select(func.min(TopImage.rank), func.max(TopImage.rank)).where(TopImage.neuron_id == found)
    ).one()
    ranks = f"ranks {low}–{high}" if low is not None else "no top images"
    raise NotFound(f"Unit {unit} of layer '{layer}' in run {run_id} has {ranks}; there is no top image {rank}.")


def _existing(media_dir: Path, relative: str, where: str) -> Path:
    path = media_dir / relative
    if not path.is_file():
        raise NotFound(f"The {where} lost its media file; {REDISSECT}.")
    return path


def _view(media_dir: Path, view_file: str, where: str) -> Image.Image:
    """Return the stored view a top image's crop is cut from."""
    try:
        with Image.open(io.BytesIO((media_dir / view_file).read_bytes())) as view:
            return view.convert("RGB")
    except OSError:
        raise NotFound(f"The view of the {where} is missing from the media store; {REDISSECT}.") from None


def _maps_path(settings: Settings, top: StoredTop, layer: str) -> Path:
    return ArtifactsLayout.of_run(top.artifacts_dir, settings.data_dir).top_maps(layer)


def _heatmap_levels(session: Session, top: StoredTop, rank: int, path: Path, where: str) -> np.ndarray:
    """Return the top image's heatmap levels [h, w], scaled by its neuron's peak over all its top maps."""
    # Rows are inserted in result order: a neuron's position is the count of its layer's neurons inserted before it.
    neuron_position = (
        session.scalar(select(func.count(Neuron.id)).where(Neuron.layer_id == top.layer_id, Neuron.id < top.neuron_id))
        or 0
    )
    rank_position = (
        session.scalar(select(func.count(TopImage.id)).where(TopImage.neuron_id == top.neuron_id, TopImage.rank < rank))
        or 0
    )
    try:
        maps = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # missing, truncated or overwritten: the message may name server paths, so it is not shown
        raise NotFound(f"The {where} has no stored activation maps to draw its heatmap from; {REDISSECT}.") from None
    if (
        not isinstance(maps, torch.Tensor)
        or maps.ndim != 4
        or not (neuron_position < maps.shape[0] and rank_position < maps.shape[1])
    ):
        raise NotFound(f"The stored activation maps of the {where} do not cover it; {REDISSECT}.")
    neuron_maps = maps[neuron_position : neuron_position + 1].float().numpy()
    levels: np.ndarray = heatmap_levels(neuron_maps)[0, rank_position]
    return levels
