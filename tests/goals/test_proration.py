"""Quota proration by days and by weighted quarters."""

import datetime as dt
from decimal import Decimal

import pytest

from goals.proration import prorate_annual_by_weighted_quarters, prorate_by_days


def test_join_on_day_46_of_91_day_quarter():
    # Q1 2024 on a calendar year runs 1 January to 31 March: 91 days. Day 46
    # is 15 February, which leaves 46 active days.
    quota = prorate_by_days(
        Decimal("100000.00"),
        period_start=dt.date(2024, 1, 1),
        period_end=dt.date(2024, 4, 1),
        active_from=dt.date(2024, 2, 15),
    )
    assert quota == Decimal("50549.45")  # 100,000 x 46 / 91 = 50,549.4505...


def test_leave_inside_period():
    quota = prorate_by_days(
        Decimal("9000.00"),
        period_start=dt.date(2024, 4, 1),
        period_end=dt.date(2024, 7, 1),
        active_from=dt.date(2023, 1, 1),
        active_until=dt.date(2024, 5, 1),
    )
    assert quota == Decimal("2967.03")  # 30 of 91 days: 9,000 x 30 / 91


def test_inactive_whole_period_gets_zero():
    quota = prorate_by_days(
        Decimal("9000.00"),
        period_start=dt.date(2024, 4, 1),
        period_end=dt.date(2024, 7, 1),
        active_from=dt.date(2024, 8, 1),
    )
    assert quota == Decimal("0.00")


def test_empty_period_is_rejected():
    with pytest.raises(ValueError, match="has no days"):
        prorate_by_days(
            Decimal("1.00"),
            period_start=dt.date(2024, 4, 1),
            period_end=dt.date(2024, 4, 1),
            active_from=dt.date(2024, 1, 1),
        )


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        (dt.date(2019, 1, 1), "100000.00"),
        (dt.date(2019, 3, 1), "86666.67"),
        (dt.date(2019, 10, 1), "40000.00"),
        (dt.date(2019, 12, 1), "13333.33"),
    ],
)
def test_mid_year_start_with_weighted_quarters(start, expected):
    quota = prorate_annual_by_weighted_quarters(
        Decimal("100000"),
        weights=[20, 20, 20, 40],
        fiscal_start_month=1,
        active_from=start,
    )
    assert quota == Decimal(expected)


def test_weighted_quarters_follow_fiscal_start():
    # A February fiscal year: a 1 May 2024 start misses all of FY2025 Q1.
    quota = prorate_annual_by_weighted_quarters(
        Decimal("100000"),
        weights=[25, 25, 25, 25],
        fiscal_start_month=2,
        active_from=dt.date(2024, 5, 1),
    )
    assert quota == Decimal("75000.00")
