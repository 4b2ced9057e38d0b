"""Fiscal calendar arithmetic on plain dates, with no database access.

A fiscal year starts on day 1 of the organisation's fiscal start month and is
labelled by default by the calendar year in which it ends: with a February
start, the year from 2024-02-01 to 2025-01-31 is FY2025. An organisation that
names its years by the start year passes ``named_by="start"`` and calls the
same year FY2024. With a January start the fiscal
year is the calendar year. Quarters are blocks of three months from the start
of the fiscal year. Every range is half-open, ``[start, end)``: ``end`` is the
first day after the range.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class DateRange:
    """A half-open range of calendar dates with a label such as "FY2025 Q1"."""

    start: dt.date
    end: dt.date
    label: str

    def __contains__(self, day: dt.date) -> bool:
        return self.start <= day < self.end

    @property
    def last_day(self) -> dt.date:
        return self.end - dt.timedelta(days=1)


def add_months(day: dt.date, months: int) -> dt.date:
    """Return the first day of the month ``months`` after the month of ``day``."""
    index = day.year * 12 + (day.month - 1) + months
    return dt.date(index // 12, index % 12 + 1, 1)


def month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def month_range(day: dt.date) -> DateRange:
    """Return the calendar month containing ``day``, labelled like "March 2024"."""
    start = month_start(day)
    return DateRange(start, add_months(start, 1), start.strftime("%B %Y"))


def months_in(start: dt.date, end: dt.date) -> list[DateRange]:
    """Return every calendar month that overlaps ``[start, end)``, in order."""
    months = []
    cursor = month_start(start)
    while cursor < end:
        months.append(month_range(cursor))
        cursor = add_months(cursor, 1)
    return months


def _check_start_month(start_month: int) -> None:
    if not 1 <= start_month <= 12:
        raise ValueError(f"Invalid fiscal year start month {start_month}: use 1 to 12.")


def fiscal_year_start(day: dt.date, start_month: int) -> dt.date:
    """Return the first day of the fiscal year that contains ``day``."""
    _check_start_month(start_month)
    year = day.year if day.month >= start_month else day.year - 1
    return dt.date(year, start_month, 1)


NAMING = ("end", "start")


def fiscal_year_label(day: dt.date, start_month: int, named_by: str = "end") -> int:
    """Return the fiscal year number of ``day``.

    It is the calendar year the fiscal year ends in, or with ``named_by="start"``
    the calendar year it starts in.
    """
    if named_by not in NAMING:
        raise ValueError(f"Invalid fiscal year naming {named_by!r}: use end or start.")
    start = fiscal_year_start(day, start_month)
    if named_by == "start":
        return start.year
    return (add_months(start, 12) - dt.timedelta(1)).year


def fiscal_year_range(
    day: dt.date, start_month: int, named_by: str = "end"
) -> DateRange:
    """Return the fiscal year containing ``day``, labelled like "FY2025"."""
    start = fiscal_year_start(day, start_month)
    label = f"FY{fiscal_year_label(day, start_month, named_by)}"
    return DateRange(start, add_months(start, 12), label)


def fiscal_quarter_number(day: dt.date, start_month: int) -> int:
    """Return 1 to 4: the quarter of its fiscal year that ``day`` falls in."""
    start = fiscal_year_start(day, start_month)
    months_since_start = (day.year - start.year) * 12 + day.month - start.month
    return months_since_start // 3 + 1


def fiscal_quarter_range(
    day: dt.date, start_month: int, named_by: str = "end"
) -> DateRange:
    """Return the fiscal quarter containing ``day``, labelled like "FY2025 Q1"."""
    year_start = fiscal_year_start(day, start_month)
    quarter = fiscal_quarter_number(day, start_month)
    start = add_months(year_start, 3 * (quarter - 1))
    label = f"FY{fiscal_year_label(day, start_month, named_by)} Q{quarter}"
    return DateRange(start, add_months(start, 3), label)
