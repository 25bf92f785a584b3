"""Hostile checkpoints for the bounds tests and benches: small files that declare huge tensors."""

from __future__ import annotations

import collections
import json
import pickle
import struct
import zipfile
from pathlib import Path

import torch

CHUNK = bytes(1 << 20)


class _StorageRef:
    """Stands for storage "0" in the pickle (written as torch's persistent id)."""


class _Tensor:
    """Pickles as torch's `_rebuild_tensor_v2` of a float32 vector over storage "0"."""

    def __init__(self, numel: int) -> None:
        self.numel = numel

    def __reduce__(self) -> tuple[object, ...]:
        return torch._utils._rebuild_tensor_v2, (
            _StorageRef(),
            0,
            (self.numel,),
            (1,),
            False,
            collections.OrderedDict(),
        )


class _TorchPickler(pickle.Pickler):
    def __init__(self, file: object, numel: int) -> None:
        super().__init__(file, protocol=2)  # type: ignore[arg-type]
        self.numel = numel

    def persistent_id(self, obj: object) -> object:
        """Return torch's persistent id for the storage stand-in, None for everything else."""
        if isinstance(obj, _StorageRef):
            return ("storage", torch.FloatStorage, "0", "cpu", self.numel)
        return None


def write_deflated_torch_bomb(path: Path, declared_bytes: int) -> Path:
    """Write a torch zip whose one float32 tensor of `declared_bytes` zeros is deflated (a few MB on disk)."""
    numel = declared_bytes // 4
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        with archive.open("archive/data.pkl", "w") as stream:
            _TorchPickler(stream, numel).dump({"weight": _Tensor(numel)})
        archive.writestr("archive/.format_version", "1")
        archive.writestr("archive/.storage_alignment", "64")
        archive.writestr("archive/byteorder", "little")
        with archive.open("archive/data/0", "w", force_zip64=True) as stream:
            for _ in range(declared_bytes // len(CHUNK)):
                stream.write(CHUNK)
        archive.writestr("archive/version", "3\n")
    return path


def write_safetensors(path: Path, header: dict[str, object], data: bytes = b"") -> Path:
    """Write a safetensors file with this JSON header (tensor name -> dtype, shape, data_offsets) and data."""
    encoded = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(encoded)) + encoded + data)
    return path
