"""How large a safetensors header a real state dict has, and what reading an oversized one costs.

Prints, for every architecture an upload may name (built on the meta device, no weights), the bytes of the JSON
header `safetensors.torch.save_file` would write for its state dict; the largest sets the upload limit
(NEURON_ATLAS_CHECKPOINT_MAX_HEADER_KB). Then times the upload check on a crafted file with a 30 MB header, with
and without that limit. Run: .venv/bin/python -m bench.bench_safetensors_headers
"""

from __future__ import annotations

import json
import resource
import struct
import tempfile
import time
from pathlib import Path

import torch

from app.jobs.uploads.architectures import default_architecture_names
from dissect_core.errors import DissectError
from dissect_core.models.checkpoint_inspection import MAX_SAFETENSORS_HEADER_BYTES, inspect_checkpoint
from dissect_core.models.targets import build_skeleton

#: safetensors' dtype names of torch's dtypes found in state dicts.
DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.int64: "I64", torch.bool: "BOOL"}


def header_bytes(state: dict[str, torch.Tensor]) -> int:
    """Return the bytes of the JSON header safetensors writes for `state` (names, dtypes, shapes, offsets)."""
    header, offset = {}, 0
    for name, tensor in state.items():
        size = tensor.numel() * tensor.element_size()
        dtype = DTYPES.get(tensor.dtype, "F32")
        header[name] = {"dtype": dtype, "shape": list(tensor.shape), "data_offsets": [offset, offset + size]}
        offset += size
    return len(json.dumps(header, separators=(",", ":")).encode())


def crafted(path: Path, header_mb: int) -> Path:
    """Write a safetensors file whose header is `header_mb` MB of one-element tensors (valid JSON, valid offsets)."""
    entries: list[str] = []
    offset = size = 0
    while size < header_mb * 2**20:
        entry = f'"t{len(entries)}":{{"dtype":"U8","shape":[1],"data_offsets":[{offset},{offset + 1}]}}'
        entries.append(entry)
        size += len(entry) + 1
        offset += 1
    header = ("{" + ",".join(entries) + "}").encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header + bytes(offset))
    return path


def main() -> None:
    sizes = []
    for name in default_architecture_names():
        try:
            state = build_skeleton(name).state_dict()
        except Exception as error:  # an architecture that cannot be built without weights: not uploadable either
            print(f"{name}: not built ({type(error).__name__})")
            continue
        sizes.append((header_bytes(state), len(state), name))
    sizes.sort(reverse=True)
    print("largest headers (bytes, tensors, architecture):")
    for size, count, name in sizes[:5]:
        print(f"  {size:>9,}  {count:>5}  {name}")
    print(f"{len(sizes)} architectures; median {sizes[len(sizes) // 2][0]:,} bytes")
    with tempfile.TemporaryDirectory() as folder:
        path = crafted(Path(folder) / "big.safetensors", 30)
        for limit in (MAX_SAFETENSORS_HEADER_BYTES, 1 << 20):
            before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            start = time.perf_counter()
            try:
                inspect_checkpoint(path, max_header_bytes=limit)
                outcome = "accepted"
            except DissectError:
                outcome = "refused"
            elapsed = time.perf_counter() - start
            grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
            print(
                f"30 MB header, limit {limit / 2**20:g} MB: {outcome} in {elapsed * 1000:,.1f} ms, "
                f"peak RSS +{grown:,.0f} MB"
            )


if __name__ == "__main__":
    main()
