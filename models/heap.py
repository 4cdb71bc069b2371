"""Keep activation-sized buffers on the heap: glibc's malloc settings for a process that runs chains.

Every segment run allocates its output (``get_tensor`` copies) and every hand-over its requantized
input: MobileNetV2's early activations are 0.4-1.2 MB (int8) or 1.6-4.8 MB (fp32). Under glibc's
defaults such a buffer is either ``mmap``-ed (above the 128 KiB mmap threshold) or carved from heap
memory that ``free`` trims back to the kernel, so every inference faults its pages in again: measured
1144 minor page faults per whole-model MobileNetV2 int8 chain run, ~25 % of its time (10.7 vs 7.9 ms
single-threaded). Worse, glibc moves the threshold by itself when large blocks are freed, so a process's
speed depended on its history (a server that had probed batching at load computed 30 % faster than one
that had not). Fixing both thresholds makes chain runs fault-free and the same in every process.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from functools import cache

__all__ = ["keep_buffers_on_heap"]

_M_TRIM_THRESHOLD = -1  # from glibc's malloc.h
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024  # glibc's own upper bound for the dynamic threshold
TRIM_THRESHOLD_BYTES = 64 * 1024 * 1024  # free heap kept for reuse before it goes back to the kernel


@cache
def keep_buffers_on_heap() -> bool:
    """Set glibc's mmap and trim thresholds once per process; False where the C library is not glibc."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others: no mallopt, nothing to tune
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    )
