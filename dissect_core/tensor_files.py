"""Writing big tensors to files a bounded part of rows at a time, so storing a matrix (one mapped from a file, as a
Ray run's are, or one converted to another dtype) never builds its whole bytes in memory: `row_parts` cuts a
tensor into parts of rows, `save_safetensors` streams a safetensors file from them."""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator, Mapping
from pathlib import Path

import torch

from dissect_core.data.cache import write_atomically

#: The most bytes of rows one part holds.
PART_BYTES = 64 << 20

#: safetensors' name of each dtype, in the order its writer lays tensors out (higher first, then by name).
_SAFETENSORS_DTYPES = {
    torch.bool: "BOOL",
    torch.uint8: "U8",
    torch.int8: "I8",
    torch.float8_e5m2: "F8_E5M2",
    torch.float8_e4m3fn: "F8_E4M3",
    torch.int16: "I16",
    torch.uint16: "U16",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.int32: "I32",
    torch.uint32: "U32",
    torch.float32: "F32",
    torch.float64: "F64",
    torch.int64: "I64",
    torch.uint64: "U64",
}
_LAYOUT_RANK = {dtype: rank for rank, dtype in enumerate(_SAFETENSORS_DTYPES)}


def row_parts(tensor: torch.Tensor) -> Iterator[torch.Tensor]:
    """Yield `tensor`'s rows in order as 2-D [rows, row values] parts of at most `PART_BYTES` each, or one row
    where a row is larger (views where the rows allow; a scalar is one part of one row); nothing when it is
    empty."""
    if tensor.numel() == 0:
        return
    if tensor.dim() == 0:
        yield tensor.reshape(1, 1)
        return
    step = max(1, PART_BYTES // (tensor[0].numel() * tensor.element_size()))
    for start in range(0, len(tensor), step):
        part = tensor[start : start + step]
        yield part.reshape(len(part), -1)


def save_safetensors(
    path: Path,
    tensors: Mapping[str, tuple[torch.Tensor, torch.dtype]],
    metadata: Mapping[str, str] | None = None,
) -> None:
    """Write `tensors` (name → (tensor, dtype to store it in)) and `metadata` as a safetensors file at `path`,
    atomically, converting and writing one part of rows at a time (at most one part, `PART_BYTES`, in memory).

    The file is the one `safetensors.torch.save_file` writes for the same converted tensors: the same tensor order
    (dtype, then name), header JSON and padding; only the metadata keys, which safetensors writes in a hash map's
    order, are written sorted here."""
    for name, (_, dtype) in tensors.items():
        if dtype not in _SAFETENSORS_DTYPES:
            raise ValueError(
                f"tensor {name!r}: safetensors cannot store {dtype}; store it as one of "
                f"{', '.join(str(known) for known in _SAFETENSORS_DTYPES)}"
            )
    names = sorted(tensors, key=lambda name: (-_LAYOUT_RANK[tensors[name][1]], name))
    encoded = _header([(name, *tensors[name]) for name in names], metadata)

    def write(temporary: Path) -> None:
        with temporary.open("wb") as handle:
            handle.write(struct.pack("<Q", len(encoded)))
            handle.write(encoded)
            for name in names:
                tensor, dtype = tensors[name]
                for part in row_parts(tensor.detach()):
                    converted = part.to("cpu", dtype).contiguous()
                    handle.write(converted.view(-1).view(torch.uint8).numpy().data)

    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, write)


def _header(tensors: list[tuple[str, torch.Tensor, torch.dtype]], metadata: Mapping[str, str] | None) -> bytes:
    """Return the safetensors header of `tensors` laid out in this order: the compact JSON of each one's dtype,
    shape and byte range (after the metadata, when given), padded with spaces to a multiple of 8 bytes as the
    spec asks."""
    header: dict[str, object] = {} if metadata is None else {"__metadata__": dict(sorted(metadata.items()))}
    offset = 0
    for name, tensor, dtype in tensors:
        size = tensor.numel() * torch.empty(0, dtype=dtype).element_size()
        header[name] = {
            "dtype": _SAFETENSORS_DTYPES[dtype],
            "shape": list(tensor.shape),
            "data_offsets": [offset, offset + size],
        }
        offset += size
    encoded = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return encoded + b" " * (-len(encoded) % 8)
