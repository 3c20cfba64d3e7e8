"""Reference exchange rates (docs/domain.md §2; ADR 0017 §3).

A rate is an integer `rate_e8`: minor units of the quote currency per minor unit of the base
currency, times 10^8. Converting rounds down, always: ``floor(amount * rate_e8 / 10^8)``.
The rate of the day for a pair is the one published for the block's UTC date or, failing that,
the latest one at most `FX_RATE_STALE_DAYS_MAX` days older.
"""

from __future__ import annotations

from typing import Final

from protocol import limits
from protocol.ledger import dates, keys, records
from protocol.ledger.state import State

SCALE: Final = 10**8  # rate_e8 of a currency against itself


def convert(amount: int, rate_e8: int) -> int:
    """`amount` minor units of a pair's base currency in minor units of its quote currency,
    rounded down."""
    return amount * rate_e8 // SCALE


def rate_of_day(state: State, base: str, quote: str, time_ms: int) -> records.FxRate | None:
    """The rate of the day for (base, quote) at block time `time_ms`, or None: the one dated
    that day, else the latest of the FX_RATE_STALE_DAYS_MAX days before (point reads)."""
    today = dates.day_of(time_ms)
    for day in range(today, today - limits.FX_RATE_STALE_DAYS_MAX - 1, -1):
        rate = state.get(keys.fx_rate(base, quote, dates.format_day(day)), records.FxRate)
        if rate is not None:
            return rate
    return None
