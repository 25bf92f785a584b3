"""glibc malloc tuned for a dissection: tensor buffers up to 32 MiB stay in the heap instead of being mapped and
unmapped; larger ones are mapped, so the heap never holds a forward's largest temporaries after they are freed.

By default glibc serves each allocation above a dynamic threshold with its own `mmap` and returns it with `munmap`
when freed, and the threshold drifts with the sizes freed, so every batch of a probe pass maps hundreds of megabytes
afresh and pays a page fault per 4 KiB page (PROFILE.md: 0.9 million minor faults and 2 s of kernel time per
ViT-B-16 batch on 2 cores). A fixed 32 MiB threshold (glibc's largest), a 1 GiB trim threshold and a top pad let the
next batch reuse the heap's pages for everything smaller (ResNet-18 + ViT-B-16 over 256 images: 8.3 million faults
and 79 s as glibc ships it, 1.3 million and 63 s tuned; bench/RESULTS.md, issue #14).

Blocks above the threshold are still mapped. Serving those from the heap too (`M_MMAP_MAX` 0, shipped until issue
#28) cut the faults to 46 thousand but kept freed pages resident and let the heap fragment: at batch 200 the probe
pass peaked at 5.8 GiB against 3.4 GiB with them mapped, over the published pipeline's 3.55 GiB. glibc still serves
a large block from a free heap chunk that already fits it (after the heap has grown and shrunk) before mapping it;
`release_free_memory` hands the heap's free pages back between the two models' forwards, so such pages do not stay
resident and a batch faults in only the pages it uses.
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
MIB = 1024 * 1024
# glibc caps M_MMAP_THRESHOLD at 4 MiB * sizeof(long) (32 MiB on 64-bit); larger blocks are mapped (module docstring).
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
