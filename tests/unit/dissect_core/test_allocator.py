"""glibc malloc tuning for a dissection's process."""

from __future__ import annotations

import platform
import subprocess
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


GLIBC = pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's"
)


@GLIBC
def test_releasing_free_memory_returns_freed_blocks_the_tuned_heap_kept():
    assert tune_allocator() is True
    blocks = [torch.ones(4, 1024, 1024) for _ in range(16)]  # 16 x 16 MiB, under the threshold: in the heap
    keep = torch.ones(1024)  # allocated after them, so they are not at the heap's top
    del blocks
    kept = resident_mib()
    assert release_free_memory() is True
    assert kept - resident_mib() > 200
    assert keep.sum() == 1024


# In a fresh process: in a long one (the test run) a free heap chunk left by earlier tests can already fit the block,
# and glibc serves it from there before mapping anything (release_free_memory returns such pages; the test above).
_MAPPED_BLOCK = """
from pathlib import Path
import torch
from dissect_core.allocator import tune_allocator

def resident_mib():
    line = next(l for l in Path("/proc/self/status").read_text().splitlines() if l.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024

assert tune_allocator() is True
before = resident_mib()
block = torch.ones(64, 1024, 1024)  # 256 MiB, over the 32 MiB threshold: mapped on its own
grown = resident_mib() - before
del block
print(grown, resident_mib() - before)
"""


@GLIBC
def test_a_block_above_the_threshold_goes_back_when_freed():
    done = subprocess.run([sys.executable, "-c", _MAPPED_BLOCK], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    grown, left = map(float, done.stdout.split())
    assert grown > 200
    assert left < 50  # unmapped at once, no trim needed: a forward's peak does not stay resident
