"""Process-level CPU settings that make training faster (not results different).

glibc's malloc hands every block above a threshold (128 KiB, adapting up to 32 MiB) to
``mmap`` and returns it to the kernel on free; the next step's tensor of the same size is
then a fresh mapping whose every page faults on first touch. A training step frees and
reallocates the same tensors every time (gradients, Adam's temporaries), so on CPU a
sizeable share of a ResNet-18 step went to page faults. `keep_freed_memory` raises
the mmap threshold to glibc's maximum and stops heap trimming, so freed blocks are reused
(the usual advice is to preload jemalloc or tcmalloc; this is the in-process equivalent
for the default allocator). The cost is that the process keeps its peak memory.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD_MAX = 32 * 1024 * 1024  # glibc's ceiling on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX)


@functools.cache
def keep_freed_memory() -> bool:
    """Tune glibc malloc to reuse freed tensor memory; True if applied (Linux/glibc only).

    Idempotent; a no-op (False) on other platforms or C libraries.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (e.g. musl): leave the allocator alone
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX)) and \
        bool(mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
