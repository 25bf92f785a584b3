"""glibc malloc tuned for a dissection: large tensor buffers stay in the heap instead of being mapped and unmapped.

By default glibc serves each allocation above a (dynamic) threshold with its own `mmap` and returns it with `munmap`
when freed, so every batch of a probe pass maps the same hundreds of megabytes afresh and pays a page fault per 4 KiB
page (PROFILE.md: 0.9 million minor faults and 2 s of kernel time per ViT-B-16 batch on 2 cores). Raising the mmap
threshold to its maximum, serving even larger blocks from the heap (M_MMAP_MAX 0) and keeping freed memory at the top
of the heap lets the next batch reuse those pages. A dissection's process holds about its peak a little longer.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

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


def tune_allocator() -> bool:
    """Raise glibc's mmap and trim thresholds for this process; return False where the C library is not glibc."""
    global _tuned
    if _tuned:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False
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
