"""Marks the tests that start networks of node processes (or time real processes) `serial`.

`./dev test` runs the suite as two pytest processes, one per core of the 2-core machines we
test on: the `serial` tests one after another in one, everything else in the other. The serial
ones would only slow one another down if they shared a core with each other; the rest are
in-process and CPU-bound.
"""

from __future__ import annotations

import pathlib

import pytest

TESTS = pathlib.Path(__file__).parent
SERIAL = (
    "e2e/",
    "faults/test_scenarios.py",
    "faults/test_shaper.py",
    "monitoring/test_monitoring.py",
    "node/test_bench.py",
    "node/test_bench_ordering_run.py",
    "ops/test_network_init.py",
    "ops/test_restore_e2e.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        try:
            rel = item.path.relative_to(TESTS).as_posix()
        except ValueError:
            continue
        if rel.startswith(SERIAL):
            item.add_marker(pytest.mark.serial)
