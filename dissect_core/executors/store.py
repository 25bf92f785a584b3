"""Where a distributed run keeps its bulk rows: a folder every node sees (the cache folder on a shared
filesystem), written only by atomic renames and named by chunk and block, so a retried task rewrites the same
file with the same bytes.

Layout under the run's folder: `chunks/<chunk>/embeddings.pt` and `outputs.pt` (each chunk's image embeddings
and the target's outputs), and `layers/<layer>/block-<block>/chunk-<chunk>.pt` (a chunk's activations of one
block of the layer's neurons, with the chunk's readable-image mask): neuron-block-major, so a block reads its own
columns only. `rows/<name>.f32` are whole row-major float32 matrices (a layer's activations of the readable
images [N, K], their embeddings [N, D]) that the driver assembles chunk by chunk and the run's result maps
(`map_rows`): file-backed pages the kernel can drop, no anonymous memory, and, mapped, they outlive the folder's
removal until the result lets go of them.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from dissect_core.data.cache import write_atomically


class ShardStore:
    """The run's folder of chunk and block files."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _write(self, path: Path, value: dict[str, Any]) -> None:
        """Write `value` to `path` atomically (a temporary file in the same folder, then a rename)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, lambda temporary: torch.save(value, temporary))

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

    def read_outputs(self, chunk: int) -> dict[str, Any] | None:
        """Return one chunk's stored outputs dict (None when the target's output was unusable or not recorded)."""
        return self._read(self.root / "chunks" / f"{chunk:06d}" / "outputs.pt")["outputs"]

    def read_chunk(self, chunk: int) -> tuple[Tensor | None, dict[str, Any] | None]:
        """Return one chunk's stored (embeddings or None, outputs dict or None)."""
        folder = self.root / "chunks" / f"{chunk:06d}"
        return self._read(folder / "embeddings.pt")["embeddings"], self._read(folder / "outputs.pt")["outputs"]

    def write_block(self, layer: str, block: int, chunk: int, activations: Tensor, valid: Tensor) -> None:
        """Store a chunk's activations [n, K_b] of one block of a layer's neurons, with its readable-image mask."""
        self._write(self._block_path(layer, block, chunk), {"activations": activations.contiguous(), "valid": valid})

    def read_block_chunk(self, layer: str, block: int, chunk: int) -> Tensor | None:
        """Return one chunk's stored activations [n, K_b] (every image of the chunk, readable or not), None when the
        chunk stored none (no image of it was readable)."""
        path = self._block_path(layer, block, chunk)
        return self._read(path)["activations"] if path.is_file() else None

    def read_block(self, layer: str, block: int, n_chunks: int) -> Tensor:
        """Return a block's activations [readable images, K_b] over every chunk, in probe order."""
        rows = []
        for chunk in range(n_chunks):
            path = self._block_path(layer, block, chunk)
            if not path.is_file():  # a chunk with no readable image stores no rows
                continue
            stored = self._read(path)
            rows.append(stored["activations"][stored["valid"]])
        return torch.cat(rows)

    def rows_path(self, name: str) -> Path:
        """Return the path of the row-major matrix `name` (`map_rows`)."""
        return self.root / "rows" / f"{name}.f32"

    def write_rows(self, name: str, n_rows: int, width: int, parts: Iterable[tuple[int, Tensor]]) -> Tensor:
        """Write a float32 [n_rows, width] matrix from `parts` ((first row, rows) pairs, rows never written stay
        zero), one part in memory at a time; return it mapped (`map_rows`)."""
        path = self.rows_path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as handle:
            handle.truncate(n_rows * width * 4)
            for first, rows in parts:
                handle.seek(first * width * 4)
                handle.write(rows.to(torch.float32).contiguous().numpy().data)
        return self.map_rows(name, n_rows, width)

    def map_rows(self, name: str, n_rows: int, width: int) -> Tensor:
        """Return the stored matrix `name` [n_rows, width] mapped copy-on-write from its file (`torch.from_file`):
        its pages are the file's, read on demand, and the mapping keeps the data after the file's name is gone."""
        if n_rows * width == 0:
            return torch.zeros(n_rows, width)
        flat = torch.from_file(str(self.rows_path(name)), shared=False, size=n_rows * width, dtype=torch.float32)
        return flat.view(n_rows, width)
