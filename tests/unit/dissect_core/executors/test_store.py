"""The Ray executor's shard store: row files assembled part by part and mapped, never copied into memory."""

import shutil
from pathlib import Path

import torch

from dissect_core.executors.store import ShardStore


def anonymous_kib() -> int:
    """Return this process's anonymous resident memory (RssAnon) in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1])
    raise AssertionError("no RssAnon line in /proc/self/status")


def test_rows_written_in_parts_are_mapped_with_zero_rows_where_no_part_was_written(tmp_path: Path) -> None:
    store = ShardStore(tmp_path / "run")
    first, third = torch.randn(4, 3), torch.randn(2, 3)
    mapped = store.write_rows("layer3", 9, 3, iter([(0, first), (6, third)]))
    expected = torch.zeros(9, 3)
    expected[0:4], expected[6:8] = first, third
    assert torch.equal(mapped, expected)
    assert torch.equal(store.map_rows("layer3", 9, 3), expected)


def test_a_mapped_matrix_outlives_the_folder_and_reading_it_holds_no_anonymous_memory(tmp_path: Path) -> None:
    store = ShardStore(tmp_path / "run")
    rows = 64 << 20 >> 12  # 64 MiB of float32 rows of 1,024 values
    parts = ((start, torch.full((1024, 1024), float(start))) for start in range(0, rows, 1024))
    mapped = store.write_rows("embeddings", rows, 1024, parts)
    shutil.rmtree(tmp_path / "run")  # the run's folder goes at the end of its session; the result keeps its rows
    assert f"{tmp_path}/run/rows/embeddings.f32 (deleted)" in Path("/proc/self/maps").read_text()
    before = anonymous_kib()
    total = mapped[:, 0].sum().item() + mapped[-1].sum().item()
    assert total == sum(range(0, rows, 1024)) * 1024 + (rows - 1024) * 1024
    assert anonymous_kib() - before < 8 << 10  # the pages read are the file's, not copies (64 MiB were read)


def test_a_chunk_that_stored_no_rows_reads_as_none_and_adds_no_rows_to_its_block(tmp_path: Path) -> None:
    store = ShardStore(tmp_path)
    store.write_block("layer3", 0, 0, torch.ones(3, 2), torch.tensor([True, False, True]))
    assert store.read_block_chunk("layer3", 0, 1) is None
    assert store.read_block("layer3", 0, n_chunks=2).shape == (2, 2)
