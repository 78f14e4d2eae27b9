"""glibc's malloc told to keep freed memory, when jhash is imported (``jhash/__init__.py``): a CPU training step
then reuses XLA's temporary buffer instead of page-faulting a fresh one in every call.

XLA's CPU runtime allocates each call's temporary buffer (75 MB for the mnist CNN's step at batch 64) with
malloc and frees it after the call. glibc serves a block that large with a fresh ``mmap`` (from a thread of its
own arena, or above its 32 MB mmap threshold) and unmaps it on free, so every step first-touches the whole
buffer again: about 19,000 page faults and 40 of a 100 ms step on the 2-core machine of
experiments/results/speed_floor.md. With one arena (``M_ARENA_MAX=1``), no mmap (``M_MMAP_MAX=0``) and the
top of the heap given back to the OS only above 1 GiB (``M_TRIM_THRESHOLD``) the freed buffer stays in the
heap and the next call reuses it. Values are unchanged (only where memory comes from); the process keeps up
to 1 GiB of freed memory. The settings act on arenas made afterwards, so they take effect only if jhash is
imported before JAX starts its CPU backend; they are skipped where the C library is not glibc, where
``MALLOC_ARENA_MAX``/``MALLOC_MMAP_MAX_``/``MALLOC_TRIM_THRESHOLD_`` is set, and with ``JHASH_SYSTEM_MALLOC=1``.
"""
from __future__ import annotations

import ctypes
import os
import sys

M_TRIM_THRESHOLD, M_MMAP_MAX, M_ARENA_MAX = -1, -4, -8  # glibc's malloc.h
SETTINGS = ((M_ARENA_MAX, 1), (M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, 1 << 30))
OWN_ENV = ("MALLOC_ARENA_MAX", "MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_")


def keep_freed_memory() -> bool:
    """Applies :data:`SETTINGS` with ``mallopt``; True when all were applied."""
    if os.environ.get("JHASH_SYSTEM_MALLOC") == "1" or any(k in os.environ for k in OWN_ENV):
        return False
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return False
    if not hasattr(libc, "gnu_get_libc_version") or not hasattr(libc, "mallopt"):  # glibc only (not musl)
        return False
    mallopt = libc.mallopt
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return all(mallopt(param, value) == 1 for param, value in SETTINGS)
