"""Which images an intervention runs over, and their batches: a seeded, sorted sample; probe positions kept."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from dissect_core.data.probe import load_probe_folder
from dissect_core.errors import DissectError
from dissect_core.interventions.batches import probe_batches, sample_images
from dissect_core.preprocessing import Preprocessing


def test_sample_images_is_seeded_sorted_and_whole_below_the_bound():
    assert sample_images(5, 2000, seed=0) == [0, 1, 2, 3, 4]
    drawn = sample_images(10_000, 2000, seed=3)
    assert drawn == sample_images(10_000, 2000, seed=3)
    assert drawn == sorted(set(drawn)) and len(drawn) == 2000 and drawn[-1] < 10_000
    assert drawn != sample_images(10_000, 2000, seed=4)
    with pytest.raises(DissectError, match="at least 1"):
        sample_images(10, 0, seed=0)


def test_probe_batches_keep_probe_positions_and_skip_unreadable_images(tmp_path):
    for index, colour in enumerate([(255, 0, 0), (0, 255, 0), (0, 0, 255), (9, 9, 9)]):
        Image.new("RGB", (8, 8), colour).save(tmp_path / f"{index}.png")
    (tmp_path / "2.png").write_bytes(b"not an image")
    probe = load_probe_folder(tmp_path)
    preprocessing = Preprocessing(resize=4, crop=4, interpolation="bilinear")
    got = list(probe_batches(probe, [0, 2, 3], preprocessing, batch_size=2))
    assert [positions for positions, _ in got] == [[0], [3]]
    assert torch.equal(got[1][1][0], preprocessing.transform()(Image.open(tmp_path / "3.png").convert("RGB")))
    with pytest.raises(DissectError, match="sample_images"):
        list(probe_batches(probe, [4], preprocessing, batch_size=2))
