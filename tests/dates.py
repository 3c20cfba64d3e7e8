"""Export dates for tests that run on the wall clock: a declaration's export date is checked
against the block time (docs/domain.md: neither in the future nor older than the receivable's
maximum age), so a fixed date would start failing one day."""

from __future__ import annotations

import time

from protocol.ledger import dates


def export_date(time_ms: int | None = None, days_before: int = 2) -> str:
    """The UTC date `days_before` days before `time_ms` (default: now)."""
    now_ms = int(time.time() * 1000) if time_ms is None else time_ms
    return dates.format_day(dates.day_of(now_ms) - days_before)


RECENT_EXPORT_DATE = export_date()
