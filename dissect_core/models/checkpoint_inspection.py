"""Checkpoint files checked before anything in them is loaded: their format (by suffix, in any case) and the
tensor bytes they declare, from a torch zip's central directory or a safetensors header.

A file passing these checks cannot make its reader allocate more than the file holds: a torch zip must store
its entries uncompressed (torch.save never compresses; a deflated entry can unpack to a thousand times its
size) within the file, and a safetensors header must describe tensors that fit the bytes after it. A safetensors
file passing them also loads: its header is checked as the safetensors library checks it (a JSON object without
repeated names, string metadata, and tensors tiling the data exactly: no overlap, no gap, nothing after them).
"""

from __future__ import annotations

import json
import math
import struct
import zipfile
from collections.abc import Callable
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


class HeaderTooLarge(DissectError):
    """A safetensors header is longer than the reader accepts (refused from its length, before it is read)."""


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


def inspect_checkpoint(path: Path, *, max_header_bytes: int = MAX_SAFETENSORS_HEADER_BYTES) -> CheckpointFacts:
    """Return what the checkpoint at `path` declares, or raise DissectError naming what is wrong and the fix.

    A safetensors header longer than `max_header_bytes` is refused from its 8-byte length, before it is read.
    """
    if checkpoint_format(path) == "safetensors":
        return _inspect_safetensors(path, max_header_bytes)
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


def _inspect_safetensors(path: Path, max_header_bytes: int) -> CheckpointFacts:
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
        if header_bytes > size - 8:
            raise refuse(f"its header length, {header_bytes:,} bytes, is more than the file holds")
        if header_bytes > max_header_bytes:
            raise HeaderTooLarge(
                f"checkpoint {path} has a safetensors header of {header_bytes:,} bytes, over the limit of "
                f"{max_header_bytes:,}: a state dict's names and shapes take far less; save only the model's "
                "state_dict() with safetensors.torch.save_file, without extra metadata"
            )
        raw = stream.read(header_bytes)
    try:
        header = json.loads(raw, object_pairs_hook=_unrepeated)
    except (UnicodeDecodeError, json.JSONDecodeError, _RepeatedName) as error:
        raise refuse(f"its header is not JSON: {error}") from None
    if not isinstance(header, dict):
        raise refuse("its header is not a JSON object")
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(value, str) for value in metadata.values()):
        raise refuse("its __metadata__ is not a JSON object of strings")
    data_bytes = size - 8 - header_bytes
    shapes: dict[str, tuple[int, ...]] = {}
    spans: list[tuple[int, int, str]] = []
    tensor_bytes = 0
    for name, entry in header.items():
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
        spans.append((begin, end, name))
        tensor_bytes += declared
    if tensor_bytes > data_bytes:
        raise refuse(f"its tensors declare {tensor_bytes:,} bytes, more than the {data_bytes:,} bytes of data")
    _check_tiling(spans, data_bytes, refuse)
    return CheckpointFacts(format="safetensors", tensor_bytes=tensor_bytes, shapes=shapes)


class _RepeatedName(ValueError):
    """A JSON object names the same key twice (the safetensors library refuses such a header)."""


def _unrepeated(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """Return a JSON object's pairs as a dict, or raise _RepeatedName when a key repeats."""
    mapping: dict[str, object] = {}
    for key, value in pairs:
        if key in mapping:
            raise _RepeatedName(f"the name {key!r} appears twice")
        mapping[key] = value
    return mapping


def _check_tiling(spans: list[tuple[int, int, str]], data_bytes: int, refuse: Callable[[str], DissectError]) -> None:
    """Raise unless the tensors' byte ranges, in order, tile the data from its first byte to its last exactly."""
    position = 0
    for begin, end, name in sorted(spans):
        if begin != position:
            where = "overlaps the tensor before it" if begin < position else f"leaves bytes {position}–{begin} unused"
            raise refuse(f"tensor {name!r} at offsets {begin}–{end} {where}")
        position = end
    if position != data_bytes:
        raise refuse(f"its tensors end at byte {position:,} of {data_bytes:,} bytes of data; the rest is unaccounted")


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
