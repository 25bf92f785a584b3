"""glibc malloc tuning for a dissection's process."""

from __future__ import annotations

import platform
import sys
from pathlib import Path

import pytest
import torch

from dissect_core.allocator import release_free_memory, tune_allocator


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's"
)
def test_tuning_succeeds_on_glibc_and_is_idempotent():
    assert tune_allocator() is True
    assert tune_allocator() is True


def resident_mib() -> float:
    """Return this process's resident set size in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc/self/status")


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's"
)
def test_releasing_free_memory_returns_a_freed_block_the_tuned_heap_kept():
    assert tune_allocator() is True
    block = torch.ones(64, 1024, 1024)  # 256 MiB in the heap, every page touched
    keep = torch.ones(1024)  # allocated after it, so the block is not at the heap's top
    del block
    kept = resident_mib()
    assert release_free_memory() is True
    assert kept - resident_mib() > 200
    assert keep.sum() == 1024
