"""Where a distributed run keeps its bulk rows: a folder every node sees (the cache folder on a shared
filesystem), written only by atomic renames and named by chunk and block, so a retried task rewrites the same
file with the same bytes.

Layout under the run's folder: `chunks/<chunk>/embeddings.pt` and `outputs.pt` (each chunk's image embeddings
and the target's outputs), and `layers/<layer>/block-<block>/chunk-<chunk>.pt` (a chunk's activations of one
block of the layer's neurons, with the chunk's readable-image mask): neuron-block-major, so a block reads its own
columns only.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import Tensor


class ShardStore:
    """The run's folder of chunk and block files."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _write(self, path: Path, value: dict[str, Any]) -> None:
        """Write `value` to `path` atomically (a temporary file in the same folder, then a rename)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        os.close(handle)
        try:
            torch.save(value, temporary)
            os.replace(temporary, path)
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)

    def _read(self, path: Path) -> dict[str, Any]:
        return torch.load(path, map_location="cpu", weights_only=True)

    def _block_path(self, layer: str, block: int, chunk: int) -> Path:
        return self.root / "layers" / layer / f"block-{block:05d}" / f"chunk-{chunk:06d}.pt"

    def write_chunk(
        self, chunk: int, embeddings: Tensor | None, outputs: dict[str, Any] | None, ran_on: dict[str, Any]
    ) -> None:
        """Store one chunk's image embeddings [n, D] (or None), the target's outputs (a dict, or None) and where it
        ran (`ran_on`: node id and process id), the outputs last: a chunk whose outputs file exists is complete."""
        folder = self.root / "chunks" / f"{chunk:06d}"
        self._write(folder / "embeddings.pt", {"embeddings": embeddings})
        self._write(folder / "outputs.pt", {"outputs": outputs, "ran_on": ran_on})

    def ran_on(self, chunk: int) -> dict[str, Any] | None:
        """Return where a completed chunk ran (node id, process id), or None while it is not stored."""
        path = self.root / "chunks" / f"{chunk:06d}" / "outputs.pt"
        return self._read(path)["ran_on"] if path.is_file() else None

    def read_chunk(self, chunk: int) -> tuple[Tensor | None, dict[str, Any] | None]:
        """Return one chunk's stored (embeddings or None, outputs dict or None)."""
        folder = self.root / "chunks" / f"{chunk:06d}"
        return self._read(folder / "embeddings.pt")["embeddings"], self._read(folder / "outputs.pt")["outputs"]

    def write_block(self, layer: str, block: int, chunk: int, activations: Tensor, valid: Tensor) -> None:
        """Store a chunk's activations [n, K_b] of one block of a layer's neurons, with its readable-image mask."""
        self._write(self._block_path(layer, block, chunk), {"activations": activations.contiguous(), "valid": valid})

    def read_block_chunk(self, layer: str, block: int, chunk: int) -> Tensor:
        """Return one chunk's stored activations [n, K_b] (every image of the chunk, readable or not)."""
        return self._read(self._block_path(layer, block, chunk))["activations"]

    def read_block(self, layer: str, block: int, n_chunks: int) -> Tensor:
        """Return a block's activations [readable images, K_b] over every chunk, in probe order."""
        rows = []
        for chunk in range(n_chunks):
            stored = self._read(self._block_path(layer, block, chunk))
            rows.append(stored["activations"][stored["valid"]])
        return torch.cat(rows)

    def write_image_embeddings(self, embeddings: Tensor) -> None:
        """Store the readable images' embeddings [N, D] in one file (a run whose probe pass was cached)."""
        self._write(self.root / "images.pt", {"embeddings": embeddings})

    def read_image_embeddings(self) -> Tensor:
        """Return the readable images' embeddings [N, D]."""
        return self._read(self.root / "images.pt")["embeddings"]
