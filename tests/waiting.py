"""Waiting in tests: for a condition, under a deadline; never a bare sleep.

What runs in this process on trio's clock is tested on virtual time (pytest-trio's
`autojump_clock`), where a wait costs nothing and every timer due before a moment has fired by
then; events are awaited where the code offers one. Polling remains for state that has no event
and does not run on trio's clock alone: real sockets and libp2p hosts, child processes, and the
in-process clusters (block cutting reads `time.monotonic()`). Each poll below has a deadline
and, when it runs out, says what it waited for and what it last saw. These two loops hold the
tests' polling sleeps.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import trio

T = TypeVar("T")


def _describe(what: str | Callable[[], object], last: object) -> str:
    told = what() if callable(what) else what
    return f"{told or 'the condition'}; last seen: {last!r}"


async def wait_until(condition: Callable[[], T], timeout_s: float, *,
                     what: str | Callable[[], object] = "", poll_s: float = 0.01) -> T:
    """Poll `condition` (on trio's clock, so virtual under a MockClock) until it returns a
    true value, which is returned; AssertionError after `timeout_s`."""
    last: T | None = None
    with trio.move_on_after(timeout_s):
        while not (last := condition()):
            await trio.sleep(poll_s)
        return last
    raise AssertionError(f"timed out after {timeout_s} s waiting for {_describe(what, last)}")


def wait_until_sync(condition: Callable[[], T], timeout_s: float, *,
                    what: str | Callable[[], object] = "", poll_s: float = 0.05,
                    retry_on: tuple[type[BaseException], ...] = ()) -> T:
    """Poll `condition` on the wall clock (child processes, threads) until it returns a true
    value, which is returned; an exception in `retry_on` counts as not yet. AssertionError
    after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    last: object = None
    while True:
        try:
            value = condition()
        except retry_on as exc:
            last = exc
        else:
            if value:
                return value
            last = value
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"timed out after {timeout_s} s waiting for {_describe(what, last)}")
        time.sleep(poll_s)
