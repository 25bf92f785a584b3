"""Safetensors headers checked as the safetensors library checks them, so a file the inspection accepts also loads:
offsets tiling the data exactly (no overlap, gap or trailing bytes), no repeated names, string metadata; and a
header over the reader's limit refused from its length alone."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from dissect_core.errors import DissectError
from dissect_core.models.checkpoint_inspection import HeaderTooLarge, inspect_checkpoint


def tensor(begin: int, end: int, shape: tuple[int, ...] = (1,), dtype: str = "F32") -> dict[str, object]:
    return {"dtype": dtype, "shape": list(shape), "data_offsets": [begin, end]}


def write(path: Path, header: bytes, data: bytes) -> Path:
    path.write_bytes(struct.pack("<Q", len(header)) + header + data)
    return path


#: (case, raw JSON header, bytes of data): sound files and every way offsets and names can be wrong.
CASES = [
    ("sound", json.dumps({"a": tensor(0, 4), "b": tensor(4, 8)}), 8),
    ("listed out of order", json.dumps({"b": tensor(4, 8), "a": tensor(0, 4)}), 8),
    (
        "empty tensors beside others",
        json.dumps({"z": tensor(0, 0, (0,)), "a": tensor(0, 4), "y": tensor(4, 4, (0,))}),
        4,
    ),
    ("no tensors", json.dumps({}), 0),
    ("metadata", json.dumps({"__metadata__": {"format": "pt"}, "a": tensor(0, 4)}), 4),
    ("padded header", json.dumps({"a": tensor(0, 4)}) + "    ", 4),
    ("overlapping", json.dumps({"a": tensor(0, 4), "b": tensor(2, 6)}), 8),
    ("the same bytes twice", json.dumps({"a": tensor(0, 4), "b": tensor(0, 4)}), 4),
    ("a gap", json.dumps({"a": tensor(0, 4), "b": tensor(8, 12)}), 12),
    ("not from the first byte", json.dumps({"a": tensor(4, 8)}), 8),
    ("bytes after the last tensor", json.dumps({"a": tensor(0, 4)}), 8),
    ("past the data", json.dumps({"a": tensor(0, 8, (2,))}), 4),
    ("a repeated name", f'{{"a": {json.dumps(tensor(0, 4))}, "a": {json.dumps(tensor(4, 8))}}}', 8),
    ("a number in the metadata", json.dumps({"__metadata__": {"epoch": 3}, "a": tensor(0, 4)}), 4),
    ("not an object", "[]", 0),
    ("a size that is not the shape's", json.dumps({"a": tensor(0, 8)}), 8),
]


@pytest.mark.parametrize(("header", "data_bytes"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_the_inspection_accepts_exactly_what_the_safetensors_library_loads(
    tmp_path: Path, header: str, data_bytes: int
) -> None:
    path = write(tmp_path / "model.safetensors", header.encode(), bytes(data_bytes))
    try:
        load_file(str(path))
        loads = True
    except Exception:  # the library's own refusal (SafetensorError)
        loads = False
    try:
        inspect_checkpoint(path)
        accepted = True
    except DissectError as error:
        assert "not a readable safetensors file" in str(error) and "save_file" in str(error)
        accepted = False
    assert accepted == loads


def test_a_saved_state_dict_passes_with_its_tensor_bytes(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    save_file({"weight": torch.ones(3, 4), "bias": torch.zeros(3, dtype=torch.float16)}, str(path))
    facts = inspect_checkpoint(path, max_header_bytes=1024)
    assert facts.tensor_bytes == 12 * 4 + 3 * 2 and facts.shapes == {"weight": (3, 4), "bias": (3,)}


def test_overlapping_offsets_are_named_in_the_refusal(tmp_path: Path) -> None:
    path = write(tmp_path / "model.safetensors", json.dumps({"a": tensor(0, 4), "b": tensor(2, 6)}).encode(), bytes(8))
    with pytest.raises(DissectError, match=r"tensor 'b' at offsets 2–6 overlaps the tensor before it"):
        inspect_checkpoint(path)


def test_a_header_over_the_limit_is_refused_from_its_length_without_reading_it(tmp_path: Path) -> None:
    entries = {f"t{index}": tensor(index, index + 1, dtype="U8") for index in range(100)}
    header = json.dumps(entries).encode()
    path = write(tmp_path / "model.safetensors", header, bytes(100))
    assert inspect_checkpoint(path).tensor_bytes == 100
    with pytest.raises(HeaderTooLarge, match=rf"header of {len(header):,} bytes, over the limit of 1,024"):
        inspect_checkpoint(path, max_header_bytes=1024)
    garbage = write(tmp_path / "garbage.safetensors", b"\xff" * len(header), bytes(100))  # not even JSON
    with pytest.raises(HeaderTooLarge):
        inspect_checkpoint(garbage, max_header_bytes=1024)
