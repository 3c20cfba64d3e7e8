"""Calendar dates as integers: no clock, no `datetime` (protocol/ is pure).

A day is a UTC calendar day; day 0 is 1970-01-01. Block times are integer milliseconds since the
epoch, so a block's day is ``time_ms // DAY_MS``. The conversions are Howard Hinnant's
`days_from_civil` / `civil_from_days` algorithms, exact for the proleptic Gregorian calendar.
"""

from __future__ import annotations

from typing import Final

DAY_MS: Final = 24 * 60 * 60 * 1000
_DAYS_IN_MONTH: Final = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date."""
    y = year - 1 if month <= 2 else year
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    mp = (month + 9) % 12  # March = 0
    doy = (153 * mp + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def civil_from_days(days: int) -> tuple[int, int, int]:
    """(year, month, day) of the day `days` after 1970-01-01."""
    z = days + 719468
    era = (z if z >= 0 else z - 146096) // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (1 if month <= 2 else 0), month, day


def parse_day(text: str) -> int | None:
    """The day number of an ISO date ``YYYY-MM-DD``, or None if it is not a real date."""
    if len(text) != 10 or text[4] != "-" or text[7] != "-":
        return None
    y, m, d = text[:4], text[5:7], text[8:]
    if not (y.isdigit() and m.isdigit() and d.isdigit() and y.isascii() and m.isascii()
            and d.isascii()):
        return None
    year, month, day = int(y), int(m), int(d)
    if not 1 <= month <= 12:
        return None
    last = 29 if month == 2 and _leap(year) else _DAYS_IN_MONTH[month - 1]
    if not 1 <= day <= last:
        return None
    return days_from_civil(year, month, day)


def format_day(days: int) -> str:
    year, month, day = civil_from_days(days)
    return f"{year:04d}-{month:02d}-{day:02d}"


def day_of(time_ms: int) -> int:
    """The UTC day of a block time."""
    return time_ms // DAY_MS


def start_ms(days: int) -> int:
    """The first millisecond of a day (UTC midnight)."""
    return days * DAY_MS
