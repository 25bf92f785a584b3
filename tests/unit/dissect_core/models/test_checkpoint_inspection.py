"""Checkpoints checked before loading: bombs refused without allocating, safetensors headers bounded, suffixes in
any case, and what a sound file declares."""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from dissect_core.errors import DissectError
from dissect_core.models.checkpoint_inspection import inspect_checkpoint
from dissect_core.models.state_dicts import read_state_dict, read_state_shapes
from tests.support.checkpoints import write_deflated_torch_bomb, write_safetensors
from tests.support.memory import measure_in_child

GiB = 1 << 30
#: Generous: loading the bomb allocates its full declared size (512 MiB), refusing it next to nothing.
MAX_GROWTH = 300 * 2**20


@pytest.fixture(scope="module")
def bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2 MB torch zip declaring one float32 tensor of 512 MiB, deflated (loading it allocates all of it)."""
    return write_deflated_torch_bomb(tmp_path_factory.mktemp("bomb") / "bomb.pt", GiB // 2)


@pytest.mark.slow
def test_a_deflated_torch_zip_is_refused_fast_without_allocating(bomb: Path) -> None:
    assert bomb.stat().st_size < 10 * 2**20
    measured = measure_in_child(
        "from dissect_core.models.state_dicts import read_state_dict, read_state_shapes",
        f"""
        for read in (read_state_dict, read_state_shapes):
            try:
                read({str(bomb)!r})
            except Exception as error:
                assert "compressed" in str(error), error
            else:
                raise AssertionError("the bomb was read")
        """,
    )
    assert measured.error is None, measured.error
    assert measured.seconds < 5 and measured.growth_bytes < MAX_GROWTH, measured


def test_a_zip_declaring_more_than_it_holds_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "lying.pt"
    torch.save({"weight": torch.zeros(16)}, path)
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        entry = next(info for info in archive.infolist() if info.filename.endswith("/data/0"))
    # The entry's central-directory record: its sizes at offsets 20 (compressed) and 24, its name at 46.
    record = next(
        at for at in _central_records(data) if data[at + 46 : at + 46 + len(entry.filename)] == entry.filename.encode()
    )
    struct.pack_into("<II", data, record + 20, 3 * GiB, 3 * GiB)
    path.write_bytes(bytes(data))
    with pytest.raises(DissectError, match=r"declares .* bytes of entries in a file of"):
        read_state_dict(path)


def _central_records(data: bytearray) -> list[int]:
    """Return the offsets of a zip's central-directory records."""
    offsets, at = [], data.find(b"PK\x01\x02")
    while at != -1:
        offsets.append(at)
        at = data.find(b"PK\x01\x02", at + 4)
    return offsets


def test_a_legacy_or_foreign_torch_file_is_refused_with_the_fix(tmp_path: Path) -> None:
    legacy = tmp_path / "legacy.pt"
    torch.save({"weight": torch.zeros(2)}, legacy, _use_new_zipfile_serialization=False)
    with pytest.raises(DissectError, match=r"re-saves it") as refused:
        read_state_dict(legacy)
    assert "weights_only=True" in str(refused.value)


def test_a_sound_torch_zip_declares_its_tensor_bytes_and_is_memory_mapped(tmp_path: Path) -> None:
    path = tmp_path / "sound.pth"
    state = {"module.weight": torch.arange(12.0).reshape(3, 4), "module.bias": torch.ones(3, dtype=torch.float64)}
    torch.save(state, path)
    facts = inspect_checkpoint(path)
    assert facts.format == "torch" and facts.tensor_bytes == 12 * 4 + 3 * 8 and facts.shapes is None
    loaded = read_state_dict(path)  # DataParallel's `module.` prefix is dropped
    assert torch.equal(loaded["weight"], state["module.weight"]) and loaded["bias"].dtype == torch.float64
    assert read_state_shapes(path) == {"weight": (3, 4), "bias": (3,)}


@pytest.mark.parametrize("suffix", [".SAFETENSORS", ".Safetensors", ".safetensors"])
def test_safetensors_are_read_as_safetensors_whatever_the_suffix_case(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"model{suffix}"
    save_file({"weight": torch.ones(2, 3), "bias": torch.zeros(2)}, str(path))
    facts = inspect_checkpoint(path)
    assert facts.format == "safetensors" and facts.tensor_bytes == (6 + 2) * 4
    assert read_state_shapes(path) == {"weight": (2, 3), "bias": (2,)}
    assert torch.equal(read_state_dict(path)["weight"], torch.ones(2, 3))


@pytest.mark.parametrize(
    ("header", "words"),
    [
        (
            {"huge": {"dtype": "F32", "shape": [1 << 20, 1 << 20], "data_offsets": [0, 4 << 40]}},
            "outside the 8 bytes of data",
        ),
        ({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}, "declares 8 bytes at offsets 0–4"),
        ({"w": {"dtype": "Q7", "shape": [2], "data_offsets": [0, 8]}}, "no valid dtype"),
        (
            {
                "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                "b": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
            },
            "more than the 8 bytes of data",
        ),
    ],
)
def test_safetensors_headers_declaring_more_than_the_file_are_refused(
    tmp_path: Path, header: dict[str, object], words: str
) -> None:
    path = write_safetensors(tmp_path / "model.safetensors", header, data=bytes(8))
    with pytest.raises(DissectError, match="not a readable safetensors file") as refused:
        read_state_shapes(path)
    assert words in str(refused.value)


def test_a_safetensors_header_length_past_the_file_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "model.safetensors"
    path.write_bytes(struct.pack("<Q", 50 * GiB) + b"{}")
    with pytest.raises(DissectError, match="header length"):
        read_state_dict(path)
