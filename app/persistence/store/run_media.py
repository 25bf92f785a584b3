"""A run's image files at store time: each probe image's view (content-addressed).

Top images' crops and heatmaps are not drawn here: they are cut from the view and the layer's stored maps on
their first request (app/read/images/top_image_media.py), so a run with many top images per neuron stores quickly.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from PIL import Image

from app.core.errors import AtlasError
from app.persistence.media import CUT_ON_REQUEST, MediaStore, jpeg_bytes
from dissect_core.progress import Progress
from dissect_core.results import DissectionResult
from dissect_core.run_record import RunRecord

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
    """The media of a run: view file names by image index, and per layer how many ranks have activation maps."""

    views: dict[int, str] = field(default_factory=dict)
    map_ranks: dict[int, int] = field(default_factory=dict)

    def crop_file(self, ref: TopRef) -> str:
        """Return what a top image's `crop_file` holds: its crop is cut on first request."""
        return CUT_ON_REQUEST

    def heatmap_file(self, ref: TopRef) -> str | None:
        """Return what a top image's `heatmap_file` holds: cut on first request, or None without a map."""
        return CUT_ON_REQUEST if ref.rank_position < self.map_ranks.get(ref.layer, 0) else None


def write_run_media(
    media_store: MediaStore,
    result: DissectionResult,
    load_view: ViewLoader | None,
    progress: Progress | None,
    should_stop: Callable[[], bool] | None,
) -> RunMedia:
    """Write every probe image's view; return their file names and which top images will have heatmaps."""
    draw = _ViewWriter(media_store, result, load_view or _default_view_loader())
    media = RunMedia(
        map_ranks={
            position: int(layer.top_maps.shape[1])
            for position, layer in enumerate(result.layers)
            if layer.top_maps is not None and layer.top_maps.ndim == 4
        }
    )
    total = len(result.image_paths)
    # PIL's resize and JPEG encoding release the GIL, so a few threads overlap well.
    pool = ThreadPoolExecutor(max_workers=min(MEDIA_THREADS, os.cpu_count() or 1))
    try:
        for done, (image_index, view_file) in enumerate(pool.map(draw, range(total)), start=1):
            media.views[image_index] = view_file
            if done % 64 == 0 or done == total:
                if should_stop and should_stop():
                    raise StoreCancelled("stopped on request while writing media files; nothing was stored")
                if progress:
                    progress("media", done, total)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return media


class _ViewWriter:
    """Writes one probe image's view: the target model's input view (resize + centre crop) as a JPEG."""

    def __init__(self, media_store: MediaStore, result: DissectionResult, load_view: ViewLoader) -> None:
        self.media_store = media_store
        self.image_paths = result.image_paths
        self.view_size = view_size(result.record)
        self.load_view = load_view

    def __call__(self, image_index: int) -> tuple[int, str]:
        """Return the image index and its view's file."""
        path = self.image_paths[image_index]
        try:
            view = self.load_view(path, *self.view_size).convert("RGB")
        except (OSError, ValueError) as error:
            raise AtlasError(
                f"probe image {path} can no longer be read ({error}); restore it and run the dissection again"
            ) from None
        return image_index, self.media_store.put(jpeg_bytes(view), ".jpg")


def view_size(record: RunRecord) -> tuple[int, int]:
    """Return the (resize, crop) of the probe views the boxes refer to, from the run's record."""
    if record.resolved.view is None:
        raise ValueError(
            "the run's record must give its view, resolved.view = (resize, crop), to draw crops and heatmaps"
        )
    return record.resolved.view


def _default_view_loader() -> ViewLoader:
    from dissect_core.data.probe import load_view

    return load_view
