"""protocol.replica.polling: the follower's status poll backs off while nothing is new."""

from __future__ import annotations

import pytest

from protocol.replica.polling import POLL_BACKOFF_MAX, next_poll_interval_ms


def test_polls_that_find_nothing_double_the_interval_up_to_the_cap() -> None:
    interval, seen = 1000, []
    for _ in range(6):
        interval = next_poll_interval_ms(1000, interval, progressed=False)
        seen.append(interval)
    assert seen == [2000, 4000, 4000, 4000, 4000, 4000]
    assert max(seen) == POLL_BACKOFF_MAX * 1000


def test_progress_brings_the_configured_interval_back() -> None:
    assert next_poll_interval_ms(1000, 4000, progressed=True) == 1000
    assert next_poll_interval_ms(250, 100, progressed=False) == 500  # never below the base


def test_a_non_positive_base_is_refused() -> None:
    with pytest.raises(ValueError):
        next_poll_interval_ms(0, 0, progressed=False)
