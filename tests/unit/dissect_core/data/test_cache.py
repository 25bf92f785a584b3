"""The tensor cache gives back what it stored, its tensors mapped from the file rather than read into memory."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from dissect_core.data.cache import TensorCache


def test_a_loaded_value_is_the_stored_one_mapped_copy_on_write_from_its_file(tmp_path: Path) -> None:
    cache = TensorCache(tmp_path)
    activations, valid = torch.randn(40, 8), torch.ones(40, dtype=torch.bool)
    cache.save("activations", "key", {"activations": activations, "valid": valid, "kind": "conv"})
    loaded = cache.load("activations", "key")
    assert loaded is not None and loaded["kind"] == "conv"
    assert torch.equal(loaded["activations"], activations) and torch.equal(loaded["valid"], valid)
    path = tmp_path / "activations" / "key.pt"
    maps = Path("/proc/self/maps")
    if maps.is_file():
        assert str(path) in maps.read_text()  # the file's pages, not anonymous memory
    loaded["activations"][0] = 0.0  # a private mapping: writing to the tensor leaves the cache as it was
    again = cache.load("activations", "key")
    assert again is not None and torch.equal(again["activations"], activations)


@pytest.mark.parametrize("content", [b"", b"not a torch file", b"PK\x03\x04torn"])
def test_an_unreadable_file_is_a_miss(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "key.pt").write_bytes(content)
    assert TensorCache(tmp_path).load("images", "key") is None
