"""The hand-written heatmap PNG decodes to the same levels, the inferno colours and a level-driven opacity."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from app.persistence.media import HEATMAP_MAX_OPACITY, heatmap_png


def test_heatmap_png_round_trips_levels_and_opacity():
    levels = (np.arange(9 * 13) * 7 % 256).astype(np.uint8).reshape(9, 13)
    with Image.open(io.BytesIO(heatmap_png(levels))) as image:
        image.load()
        assert image.format == "PNG" and image.size == (13, 9) and image.mode == "P"
        assert np.array_equal(np.array(image), levels)
        rgba = np.array(image.convert("RGBA"))
    assert np.array_equal(rgba[..., 3], np.round(levels * HEATMAP_MAX_OPACITY).astype(np.uint8))
    silent = rgba[levels == 0]
    assert (silent[:, 3] == 0).all()  # where the neuron is silent the view shows through
    assert tuple(rgba[levels == 255][0][:3]) == (252, 255, 164)  # the hottest inferno colour


def test_equal_maps_give_equal_bytes():
    levels = np.full((4, 4), 200, dtype=np.uint8)
    assert heatmap_png(levels) == heatmap_png(levels.copy())
