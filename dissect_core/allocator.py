"""glibc malloc tuned for a dissection: large tensor buffers stay in the heap instead of being mapped and unmapped.

By default glibc serves each allocation above a (dynamic) threshold with its own `mmap` and returns it with `munmap`
when freed, so every batch of a probe pass maps the same hundreds of megabytes afresh and pays a page fault per 4 KiB
page (PROFILE.md: 0.9 million minor faults and 2 s of kernel time per ViT-B-16 batch on 2 cores). Raising the mmap
threshold to its maximum, serving even larger blocks from the heap (M_MMAP_MAX 0) and keeping freed memory at the top
of the heap lets the next batch reuse those pages. A dissection's process holds about its peak a little longer.

Kept in the heap, freed pages stay resident, and the heap fragments: at batch 200 a ViT-B-16 forward holding 1.4 GB
of temporaries grew the resident set by 2.3 GB, and each further batch of the two models added more (bench/RESULTS.md,
issue #28). `release_free_memory` hands the free pages back between the two models' forwards, so a batch faults in
only the pages it uses once and the resident set stays near what the process holds.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from functools import cache

# mallopt parameter numbers from glibc's <malloc.h>.
M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3
M_MMAP_MAX = -4
MIB = 1024 * 1024
# glibc caps M_MMAP_THRESHOLD at 4 MiB * sizeof(long) (32 MiB on 64-bit); M_MMAP_MAX 0 keeps larger blocks (a conv
# stem's batch output is ~50 MB) in the heap too.
MMAP_THRESHOLD = 32 * MIB
TRIM_THRESHOLD = 1024 * MIB
TOP_PAD = 64 * MIB

_tuned = False


@cache
def _glibc() -> ctypes.CDLL | None:
    """Return the C library when it is glibc (it has mallopt and malloc_trim), else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None  # musl has neither


def tune_allocator() -> bool:
    """Raise glibc's mmap and trim thresholds for this process; return False where the C library is not glibc."""
    global _tuned
    if _tuned:
        return True
    libc = _glibc()
    if libc is None:
        return False
    mallopt = libc.mallopt
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    settings = (
        (M_MMAP_MAX, 0),
        (M_MMAP_THRESHOLD, MMAP_THRESHOLD),
        (M_TRIM_THRESHOLD, TRIM_THRESHOLD),
        (M_TOP_PAD, TOP_PAD),
    )
    _tuned = all(mallopt(parameter, value) == 1 for parameter, value in settings)
    return _tuned


def release_free_memory() -> bool:
    """Return the heap's free pages to the system (glibc's malloc_trim); return False where the C library is not
    glibc. Only pages no allocation uses are released: the next allocations fault them in again."""
    libc = _glibc()
    if libc is None:
        return False
    libc.malloc_trim(ctypes.c_size_t(0))
    return True
