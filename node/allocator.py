"""The C allocator's part in a node's resident memory (glibc's malloc; docs/adr/0040).

A node's heap mixes two kinds of allocation: Python's objects above 512 bytes (state tree
records are 529, blocks up to 900 KB) and LevelDB's (block cache entries, memtable arenas,
compaction buffers, from its own thread). Freed memory between live allocations stays in the
process: a chain replayed into a fresh store held 180 MB of such free memory after 120,000
transactions, more than LevelDB's caches and the Python objects together. Two settings of
glibc's return it to the system:

- a fixed mmap threshold: allocations of `MMAP_THRESHOLD_BYTES` and more get their own
  mapping, unmapped when freed. glibc's default threshold rises to the largest chunk ever
  freed (up to 32 MB), after which every block buffer lands inside the heap and pins it;
- `malloc_trim` every `TRIM_INTERVAL_S`: releases the free pages inside the heap. It runs in
  a worker thread (ctypes releases the GIL); about 5 ms on a 400 MB heap.

Elsewhere than glibc (musl, macOS) both are no-ops: `tune` and `trim` say whether they ran.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from typing import Any, Final

import trio

log = logging.getLogger("crossbill.allocator")

MMAP_THRESHOLD_BYTES: Final = 128 * 1024  # glibc's own starting value, kept fixed
TRIM_INTERVAL_S: Final = 10.0
_M_MMAP_THRESHOLD: Final = -3  # mallopt parameters, from glibc's malloc.h

_libc: Any = None  # the loaded C library with mallopt and malloc_trim, False if none


def _glibc() -> Any:
    global _libc
    if _libc is None:
        _libc = False
        name = ctypes.util.find_library("c")
        if name is not None:
            try:
                lib = ctypes.CDLL(name)
                lib.mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
                lib.malloc_trim.argtypes = (ctypes.c_size_t,)
                _libc = lib
            except (OSError, AttributeError):  # not glibc: no mallopt or malloc_trim
                pass
    return _libc


def tune() -> bool:
    """Fix glibc's mmap threshold at `MMAP_THRESHOLD_BYTES` (once, at start). True if set."""
    lib = _glibc()
    return bool(lib) and lib.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1


def trim() -> bool:
    """Give the heap's free pages back to the system. True if glibc released any."""
    lib = _glibc()
    return bool(lib) and lib.malloc_trim(0) == 1


async def trim_periodically(interval_s: float = TRIM_INTERVAL_S, *,
                            task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    """Run `trim` every `interval_s` seconds, off the event loop, until cancelled."""
    if not _glibc():
        log.info("not glibc: the heap is not trimmed")
        task_status.started()
        return
    task_status.started()
    while True:
        await trio.sleep(interval_s)
        await trio.to_thread.run_sync(trim)
