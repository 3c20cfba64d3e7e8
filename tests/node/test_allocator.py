"""node/allocator.py: glibc's malloc gives freed memory back to the system (docs/adr/0040).

Each case runs in a fresh interpreter, so that the test process's own heap does not blur the
resident memory it measures. The allocations go through malloc (Python objects above 512 bytes
do), as a node's block buffers, state records and LevelDB's caches do.
"""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest
import trio

from node import allocator

ROOT = pathlib.Path(__file__).resolve().parents[2]
MB = 1 << 20

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux") or not allocator._glibc(),
                                reason="glibc's malloc only (the node's platform)")

_PRELUDE = """
import os, sys
from node import allocator
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
"""

# 100 MB of 256 KB buffers, each followed by a small malloc'd object that stays; once glibc
# saw an 8 MB buffer freed, its own threshold would put 256 KB buffers inside the heap.
_BUFFERS = _PRELUDE + """
if sys.argv[1] == "tuned":
    assert allocator.tune()
big = bytearray(8 << 20)
del big
keep, buffers = [], []
for _ in range(400):
    buffers.append(bytearray(256 * 1024))
    keep.append(bytearray(1024))
before = rss()
del buffers
print(before - rss())
"""

# 100,000 records of 1,000 bytes (a tree node record is 529): one in eight stays, so the heap
# cannot shrink from its top; the freed ones leave holes of whole pages.
_HOLES = _PRELUDE + """
keep, freed = [], []
for i in range(100_000):
    (keep if i % 8 == 0 else freed).append(bytearray(1000))
del freed
before = rss()
if sys.argv[1] == "trim":
    assert allocator.trim()
print(before - rss())
"""


def _released(script: str, mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", script, mode], capture_output=True, text=True,
                         cwd=ROOT, timeout=60, check=True)
    return int(out.stdout)


def test_the_fixed_mmap_threshold_returns_freed_buffers_to_the_system() -> None:
    assert _released(_BUFFERS, "default") < 20 * MB  # glibc's dynamic threshold keeps them
    assert _released(_BUFFERS, "tuned") > 80 * MB


def test_trim_returns_the_heaps_free_pages() -> None:
    assert _released(_HOLES, "none") < 5 * MB
    assert _released(_HOLES, "trim") > 20 * MB


async def test_the_node_trims_again_and_again_off_the_event_loop(
        monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[bool] = []
    third = trio.Event()

    def counting_trim() -> bool:  # in a worker thread: trio's clock is not mocked here
        calls.append(trio.from_thread.check_cancelled() is None)
        if len(calls) == 3:
            trio.from_thread.run_sync(third.set)
        return True

    monkeypatch.setattr(allocator, "trim", counting_trim)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(allocator.trim_periodically, 0.01)
            await third.wait()
            nursery.cancel_scope.cancel()
    assert calls == [True, True, True]
