"""Quota proration for members who join or leave inside a period.

Pure arithmetic on dates and Decimals, rounded once, half-up to the cent, at
the end. A member is active from their start date (included) to their end
date (excluded), the same half-open convention as every period.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal

from goals.calendar import add_months, fiscal_year_start
from spm.money import round_money


def _overlap_days(
    start: dt.date, end: dt.date, active_from: dt.date, active_until: dt.date | None
) -> int:
    first = max(start, active_from)
    last = min(end, active_until) if active_until else end
    return max((last - first).days, 0)


def prorate_by_days(
    amount: Decimal,
    *,
    period_start: dt.date,
    period_end: dt.date,
    active_from: dt.date,
    active_until: dt.date | None = None,
) -> Decimal:
    """Scale ``amount`` by the calendar days of ``[period_start, period_end)`` active.

    A rep who joins on day 46 of a 91-day quarter is active 46 days, so gets
    amount x 46 / 91.
    """
    period_days = (period_end - period_start).days
    if period_days <= 0:
        raise ValueError(f"The period {period_start}..{period_end} has no days.")
    active = _overlap_days(period_start, period_end, active_from, active_until)
    return round_money(Decimal(amount) * active / period_days)


def prorate_annual_by_weighted_quarters(
    annual: Decimal,
    *,
    weights: Sequence[Decimal | int | str],
    fiscal_start_month: int,
    active_from: dt.date,
    fiscal_year_of: dt.date | None = None,
) -> Decimal:
    """Return the share of an annual quota earned from ``active_from`` on.

    Each quarter carries ``weight / sum(weights)`` of the annual quota, and a
    quarter counts the fraction of its months that are active. A month joined
    part way counts its active days over its days. So with weights 20/20/20/40
    and a 1 March start on a calendar fiscal year, Q1 counts 1 of 3 months.
    """
    weights = [Decimal(str(weight)) for weight in weights]
    if len(weights) != 4 or sum(weights) <= 0:
        raise ValueError(
            f"Four quarter weights with a positive sum are needed: {weights}"
        )
    year_start = fiscal_year_start(fiscal_year_of or active_from, fiscal_start_month)
    total = Decimal(0)
    for quarter, weight in enumerate(weights):
        months = Decimal(0)
        for offset in range(3):
            month = add_months(year_start, quarter * 3 + offset)
            month_end = add_months(month, 1)
            active = _overlap_days(month, month_end, active_from, None)
            months += Decimal(active) / (month_end - month).days
        total += Decimal(annual) * weight / sum(weights) * months / 3
    return round_money(total)
