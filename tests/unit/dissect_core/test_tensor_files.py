"""The streaming safetensors writer writes the bytes `safetensors.torch.save_file` writes for the same tensors, a
bounded part of rows at a time."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from dissect_core import tensor_files
from dissect_core.tensor_files import row_parts, save_safetensors

#: safetensors' dtypes in its layout order (it sorts by dtype, then name).
LAYOUT_ORDER = [
    *(torch.uint64, torch.int64, torch.float64, torch.float32, torch.uint32, torch.int32, torch.bfloat16),
    *(torch.float16, torch.uint16, torch.int16, torch.float8_e4m3fn, torch.float8_e5m2, torch.int8),
    *(torch.uint8, torch.bool),
]
#: One tensor of each dtype safetensors stores, named against its layout order (so the writer must sort them).
EVERY_DTYPE = {f"t{99 - rank}": torch.arange(6).reshape(2, 3).to(dtype) for rank, dtype in enumerate(LAYOUT_ORDER)}


def _split(path: Path) -> tuple[dict[str, object], bytes]:
    """Return a safetensors file's parsed header and its data bytes."""
    data = path.read_bytes()
    length = struct.unpack("<Q", data[:8])[0]
    return json.loads(data[8 : 8 + length]), data[8 + length :]


@pytest.mark.parametrize(
    ("tensors", "metadata"),
    [
        (EVERY_DTYPE, None),
        ({"b": torch.randn(5, 4), "a": torch.randn(3), "B": torch.tensor(2.0)}, {"format": "pt"}),
        ({"empty": torch.zeros(0, 4), "x": torch.randn(7, 2, 3).half()}, {}),
        ({"ünïcode/name": torch.ones(3, dtype=torch.int64)}, {"note": 'a "quoted"\nline é'}),
    ],
)
def test_the_file_is_byte_for_byte_the_one_save_file_writes(
    tmp_path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None
) -> None:
    save_file(tensors, str(tmp_path / "reference.safetensors"), metadata=metadata)
    save_safetensors(tmp_path / "streamed.safetensors", {name: (t, t.dtype) for name, t in tensors.items()}, metadata)
    assert (tmp_path / "streamed.safetensors").read_bytes() == (tmp_path / "reference.safetensors").read_bytes()


def test_with_several_metadata_keys_only_their_order_may_differ(tmp_path: Path) -> None:
    # safetensors writes metadata in a hash map's order (it changes between processes); the writer sorts it.
    tensors = {"logits": torch.randn(9, 4).half()}
    metadata = {"feeding_layer": "layer4", "classifier_layer": "fc"}
    save_file(tensors, str(tmp_path / "reference.safetensors"), metadata=metadata)
    save_safetensors(tmp_path / "streamed.safetensors", {"logits": (tensors["logits"], torch.float16)}, metadata)
    streamed, reference = tmp_path / "streamed.safetensors", tmp_path / "reference.safetensors"
    assert streamed.stat().st_size == reference.stat().st_size
    assert _split(streamed) == _split(reference)
    assert list(_split(streamed)[0]["__metadata__"]) == sorted(metadata)  # type: ignore[call-overload]


def test_a_mapped_matrix_is_converted_and_written_a_part_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tensor_files, "PART_BYTES", 1000)  # 3 rows of 64 float32 values a part
    rows = tmp_path / "rows.f32"
    torch.randn(50, 64).numpy().tofile(rows)
    mapped = torch.from_file(str(rows), shared=False, size=50 * 64, dtype=torch.float32).view(50, 64)
    view = torch.randn(8, 10)[:, 2:7]  # not contiguous: only its own values are stored
    save_safetensors(tmp_path / "x.safetensors", {"activations": (mapped, torch.float16), "view": (view, view.dtype)})
    stored = load_file(str(tmp_path / "x.safetensors"))
    assert torch.equal(stored["activations"], mapped.half()) and torch.equal(stored["view"], view)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["rows.f32", "x.safetensors"]  # no temporary left


def test_row_parts_cover_every_row_once_in_bounded_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tensor_files, "PART_BYTES", 100)
    tensor = torch.randn(11, 2, 3)
    parts = list(row_parts(tensor))
    assert [len(part) for part in parts] == [4, 4, 3]
    assert torch.equal(torch.cat(parts).view(11, 2, 3), tensor)
    assert [part.shape for part in row_parts(torch.tensor(1.5))] == [torch.Size([1, 1])]
    assert list(row_parts(torch.zeros(0, 3))) == []


def test_a_dtype_safetensors_cannot_store_is_refused_with_the_ones_it_can(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"safetensors cannot store torch\.complex64; store it as one of"):
        save_safetensors(tmp_path / "x.safetensors", {"z": (torch.zeros(2), torch.complex64)})
    assert not list(tmp_path.iterdir())
