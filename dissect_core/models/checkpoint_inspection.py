"""Checkpoint files checked before anything in them is loaded: their format (by suffix, in any case) and the
tensor bytes they declare, from a torch zip's central directory or a safetensors header.

A file passing these checks cannot make its reader allocate more than the file holds: a torch zip must store
its entries uncompressed (torch.save never compresses; a deflated entry can unpack to a thousand times its
size) within the file, and a safetensors header must describe tensors that fit the bytes after it.
"""

from __future__ import annotations

import json
import math
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from dissect_core.errors import DissectError

SAFETENSORS_SUFFIX = ".safetensors"
#: The suffixes a checkpoint may have, compared in lower case.
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", SAFETENSORS_SUFFIX)
#: The most entries a torch zip may list (a state dict's storages, plus six); each costs memory to read.
MAX_ZIP_ENTRIES = 100_000
#: The largest safetensors JSON header read (the safetensors library's own limit).
MAX_SAFETENSORS_HEADER_BYTES = 100 * 1024 * 1024
#: Bytes per element of each safetensors dtype.
SAFETENSORS_DTYPE_BYTES = {
    "BOOL": 1,
    "U8": 1,
    "I8": 1,
    "F8_E5M2": 1,
    "F8_E4M3": 1,
    "I16": 2,
    "U16": 2,
    "F16": 2,
    "BF16": 2,
    "I32": 4,
    "U32": 4,
    "F32": 4,
    "I64": 8,
    "U64": 8,
    "F64": 8,
}
RESAVE_HINT = "save a plain state dict with torch.save(model.state_dict(), 'model.pt')"

CheckpointFormat = Literal["torch", "safetensors"]


@dataclass(frozen=True)
class CheckpointFacts:
    """What a checkpoint declares before it is loaded: its format, tensor bytes and (safetensors) shapes."""

    format: CheckpointFormat
    tensor_bytes: int
    #: Tensor name -> shape, from a safetensors header; None for a torch file (its shapes are in its pickle).
    shapes: dict[str, tuple[int, ...]] | None = None


def checkpoint_format(path: Path) -> CheckpointFormat:
    """Return how a checkpoint is read, from its suffix in any case (`model.SAFETENSORS` is safetensors)."""
    return "safetensors" if path.suffix.lower() == SAFETENSORS_SUFFIX else "torch"


def inspect_checkpoint(path: Path) -> CheckpointFacts:
    """Return what the checkpoint at `path` declares, or raise DissectError naming what is wrong and the fix."""
    if checkpoint_format(path) == "safetensors":
        return _inspect_safetensors(path)
    return _inspect_torch_zip(path)


def _inspect_torch_zip(path: Path) -> CheckpointFacts:
    if not zipfile.is_zipfile(path):
        raise DissectError(
            f"checkpoint {path} is not the zip archive torch.save writes (PyTorch 1.6 and later), so it cannot be "
            f"loaded with weights_only=True and mmap=True; {RESAVE_HINT} (an older file: "
            "torch.save(torch.load(old, weights_only=True), 'model.pt') re-saves it)"
        )
    listed = _listed_entries(path)
    if listed > MAX_ZIP_ENTRIES:
        raise DissectError(
            f"checkpoint {path} lists {listed:,} entries, more than the {MAX_ZIP_ENTRIES:,} of any state dict; "
            f"{RESAVE_HINT}"
        )
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise DissectError(f"checkpoint {path} is a damaged zip archive ({error}); {RESAVE_HINT}") from None
    compressed = [entry.filename for entry in entries if entry.compress_type != zipfile.ZIP_STORED]
    if compressed:
        raise DissectError(
            f"checkpoint {path} stores {len(compressed)} compressed entr{'y' if len(compressed) == 1 else 'ies'} "
            f"({compressed[0]}, …); torch.save never compresses, and a compressed tensor can unpack to far more "
            f"than the file's size, so it is not read; {RESAVE_HINT}"
        )
    declared = sum(entry.file_size for entry in entries)
    if declared > path.stat().st_size:
        raise DissectError(
            f"checkpoint {path} declares {declared:,} bytes of entries in a file of {path.stat().st_size:,} bytes: "
            f"it is damaged or crafted; {RESAVE_HINT}"
        )
    tensor_bytes = sum(entry.file_size for entry in entries if _is_tensor_entry(entry.filename))
    return CheckpointFacts(format="torch", tensor_bytes=tensor_bytes)


def _listed_entries(path: Path) -> int:
    """Return how many entries a zip's end-of-central-directory record lists, read before the directory itself."""
    with path.open("rb") as stream:
        record = zipfile._EndRecData(stream)  # type: ignore[attr-defined]
    return int(record[zipfile._ECD_ENTRIES_TOTAL]) if record else 0  # type: ignore[attr-defined]


def _is_tensor_entry(name: str) -> bool:
    """Return whether a torch zip entry holds tensor data (`<archive>/data/<key>`; `data.pkl` is the pickle)."""
    parts = name.split("/")
    return len(parts) == 3 and parts[1] == "data"


def _inspect_safetensors(path: Path) -> CheckpointFacts:
    def refuse(problem: str) -> DissectError:
        return DissectError(
            f"checkpoint {path} is not a readable safetensors file ({problem}); save it with "
            "safetensors.torch.save_file(model.state_dict(), 'model.safetensors'), or as a .pt file"
        )

    size = path.stat().st_size
    with path.open("rb") as stream:
        prefix = stream.read(8)
        if len(prefix) < 8:
            raise refuse("shorter than its 8-byte header length")
        (header_bytes,) = struct.unpack("<Q", prefix)
        if header_bytes > min(MAX_SAFETENSORS_HEADER_BYTES, size - 8):
            raise refuse(f"its header length, {header_bytes:,} bytes, is more than the file or the 100 MB limit")
        raw = stream.read(header_bytes)
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise refuse(f"its header is not JSON: {error}") from None
    if not isinstance(header, dict):
        raise refuse("its header is not a JSON object")
    data_bytes = size - 8 - header_bytes
    shapes: dict[str, tuple[int, ...]] = {}
    tensor_bytes = 0
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        declared = _declared_bytes(entry)
        if declared is None:
            raise refuse(f"tensor {name!r} has no valid dtype, shape and data_offsets")
        begin, end = entry["data_offsets"]
        if not 0 <= begin <= end <= data_bytes or end - begin != declared:
            raise refuse(
                f"tensor {name!r} declares {declared:,} bytes at offsets {begin}–{end}, "
                f"outside the {data_bytes:,} bytes of data"
            )
        shapes[name] = tuple(entry["shape"])
        tensor_bytes += declared
    if tensor_bytes > data_bytes:
        raise refuse(f"its tensors declare {tensor_bytes:,} bytes, more than the {data_bytes:,} bytes of data")
    return CheckpointFacts(format="safetensors", tensor_bytes=tensor_bytes, shapes=shapes)


def _declared_bytes(entry: object) -> int | None:
    """Return the bytes a safetensors header entry declares (element size × shape), or None if malformed."""
    if not isinstance(entry, dict):
        return None
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if dtype not in SAFETENSORS_DTYPE_BYTES or not isinstance(shape, list) or not isinstance(offsets, list):
        return None
    if not all(type(size) is int and size >= 0 for size in shape):
        return None
    if len(offsets) != 2 or not all(type(offset) is int for offset in offsets):
        return None
    return SAFETENSORS_DTYPE_BYTES[dtype] * math.prod(shape)
