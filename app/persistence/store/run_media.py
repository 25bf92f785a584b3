"""A run's image files: each probe image's view, and per top image its crop and heatmap (content-addressed)."""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from app.core.errors import AtlasError
from app.persistence.media import MediaStore, crop_around, heatmap_levels, heatmap_png, jpeg_bytes
from dissect_core.progress import Progress
from dissect_core.results import DissectionResult, LayerResult, TopImage

ViewLoader = Callable[[str, int, int], Image.Image]
MEDIA_THREADS = 8


class StoreCancelled(RuntimeError):
    """`should_stop` returned True while media files were being written; nothing was stored."""


@dataclass(frozen=True)
class TopRef:
    """Where a top image sits in a result: layer, neuron and rank positions."""

    layer: int
    neuron: int
    rank_position: int


@dataclass
class RunMedia:
    """The media file names of a run: views by image index, crops and heatmaps by top image."""

    views: dict[int, str] = field(default_factory=dict)
    crops: dict[TopRef, str] = field(default_factory=dict)
    heatmaps: dict[TopRef, str] = field(default_factory=dict)


DrawnTops = list[tuple[TopRef, str, str | None]]


def write_run_media(
    media_store: MediaStore,
    result: DissectionResult,
    load_view: ViewLoader | None,
    progress: Progress | None,
    should_stop: Callable[[], bool] | None,
) -> RunMedia:
    """Write every probe image's view and every top image's crop and heatmap; return their file names."""
    draw = _ImageDrawer(media_store, result, load_view or _default_view_loader())
    media = RunMedia()
    total = len(result.image_paths)
    # PIL's resize, blend and JPEG encoding release the GIL, so a few threads overlap well.
    pool = ThreadPoolExecutor(max_workers=min(MEDIA_THREADS, os.cpu_count() or 1))
    try:
        for done, (image_index, view_file, drawn) in enumerate(pool.map(draw, range(total)), start=1):
            media.views[image_index] = view_file
            for ref, crop_file, heatmap_file in drawn:
                media.crops[ref] = crop_file
                if heatmap_file is not None:
                    media.heatmaps[ref] = heatmap_file
            if done % 64 == 0 or done == total:
                if should_stop and should_stop():
                    raise StoreCancelled("stopped on request while writing media files; nothing was stored")
                if progress:
                    progress("media", done, total)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return media


class _ImageDrawer:
    """Draws one probe image's files: its view, then the crop and heatmap of each top image it holds."""

    def __init__(self, media_store: MediaStore, result: DissectionResult, load_view: ViewLoader) -> None:
        self.media_store = media_store
        self.image_paths = result.image_paths
        self.view_size = view_size(result.settings)
        self.load_view = load_view
        self.levels = [_layer_levels(layer) for layer in result.layers]
        self.tops_by_image: dict[int, list[tuple[TopRef, TopImage]]] = defaultdict(list)
        for layer_position, layer in enumerate(result.layers):
            for neuron_position, tops in enumerate(layer.top_images):
                for rank_position, top in enumerate(tops):
                    ref = TopRef(layer_position, neuron_position, rank_position)
                    self.tops_by_image[top.image_index].append((ref, top))

    def __call__(self, image_index: int) -> tuple[int, str, DrawnTops]:
        """Return the image index, its view's file and (ref, crop file, heatmap file or None) per top image."""
        path = self.image_paths[image_index]
        try:
            view = self.load_view(path, *self.view_size).convert("RGB")
        except (OSError, ValueError) as error:
            raise AtlasError(
                f"probe image {path} can no longer be read ({error}); restore it and run the dissection again"
            ) from None
        view_file = self.media_store.put(jpeg_bytes(view), ".jpg")
        drawn: DrawnTops = []
        crops_by_box: dict[tuple[float, ...], str] = {}  # neurons peaking at the same place share one crop
        for ref, top in self.tops_by_image.get(image_index, []):
            box = tuple(top.box)
            if box not in crops_by_box:
                crops_by_box[box] = self.media_store.put(jpeg_bytes(crop_around(view, top.box)), ".jpg")
            drawn.append((ref, crops_by_box[box], self._heatmap_file(ref)))
        return image_index, view_file, drawn

    def _heatmap_file(self, ref: TopRef) -> str | None:
        layer_levels = self.levels[ref.layer]
        if layer_levels is None or ref.rank_position >= layer_levels.shape[1]:
            return None
        return self.media_store.put(heatmap_png(layer_levels[ref.neuron, ref.rank_position]), ".png")


def view_size(result_settings: dict[str, Any]) -> tuple[int, int]:
    """Return the (resize, crop) of the probe views the boxes refer to, from the result's settings."""
    view = result_settings.get("view")
    if not isinstance(view, dict) or "resize" not in view or "crop" not in view:
        raise ValueError("result.settings['view'] must be {'resize': R, 'crop': C} to draw crops and heatmaps")
    return int(view["resize"]), int(view["crop"])


def _default_view_loader() -> ViewLoader:
    from dissect_core.data.probe import load_view

    return load_view


def _layer_levels(layer: LayerResult) -> np.ndarray | None:
    if layer.top_maps is None:
        return None
    return heatmap_levels(layer.top_maps.detach().float().cpu().numpy())
