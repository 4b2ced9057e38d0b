import datetime as dt

import pytest

from goals.calendar import (
    add_months,
    fiscal_quarter_range,
    fiscal_year_label,
    fiscal_year_range,
    month_range,
    months_in,
)

FEBRUARY = 2
JANUARY = 1


@pytest.mark.parametrize(
    ("day", "label", "start", "end"),
    [
        ("2024-01-31", "FY2024 Q4", "2023-11-01", "2024-02-01"),
        ("2024-02-01", "FY2025 Q1", "2024-02-01", "2024-05-01"),
        ("2024-02-15", "FY2025 Q1", "2024-02-01", "2024-05-01"),
        ("2024-03-15", "FY2025 Q1", "2024-02-01", "2024-05-01"),
        ("2024-04-30", "FY2025 Q1", "2024-02-01", "2024-05-01"),
        ("2024-05-01", "FY2025 Q2", "2024-05-01", "2024-08-01"),
        ("2024-12-31", "FY2025 Q4", "2024-11-01", "2025-02-01"),
        ("2025-01-15", "FY2025 Q4", "2024-11-01", "2025-02-01"),
    ],
)
def test_quarter_with_february_start(day, label, start, end):
    quarter = fiscal_quarter_range(dt.date.fromisoformat(day), FEBRUARY)

    assert quarter.label == label
    assert quarter.start == dt.date.fromisoformat(start)
    assert quarter.end == dt.date.fromisoformat(end)


def test_fiscal_year_named_by_year_it_ends():
    year = fiscal_year_range(dt.date(2024, 2, 1), FEBRUARY)

    assert year.label == "FY2025"
    assert year.start == dt.date(2024, 2, 1)
    assert year.end == dt.date(2025, 2, 1)
    assert year.last_day == dt.date(2025, 1, 31)


@pytest.mark.parametrize(
    ("day", "label", "start", "end"),
    [
        ("2024-01-01", "FY2024 Q1", "2024-01-01", "2024-04-01"),
        ("2024-03-31", "FY2024 Q1", "2024-01-01", "2024-04-01"),
        ("2024-04-01", "FY2024 Q2", "2024-04-01", "2024-07-01"),
        ("2024-12-31", "FY2024 Q4", "2024-10-01", "2025-01-01"),
    ],
)
def test_quarter_with_january_start_is_calendar(day, label, start, end):
    quarter = fiscal_quarter_range(dt.date.fromisoformat(day), JANUARY)

    assert quarter.label == label
    assert quarter.start == dt.date.fromisoformat(start)
    assert quarter.end == dt.date.fromisoformat(end)


def test_january_start_year_is_calendar_year():
    year = fiscal_year_range(dt.date(2024, 7, 4), JANUARY)

    assert year.label == "FY2024"
    assert (year.start, year.end) == (dt.date(2024, 1, 1), dt.date(2025, 1, 1))


def test_december_start_spans_new_year():
    assert fiscal_year_label(dt.date(2023, 12, 1), 12) == 2024
    assert fiscal_year_label(dt.date(2023, 11, 30), 12) == 2023
    quarter = fiscal_quarter_range(dt.date(2024, 2, 29), 12)
    assert (quarter.label, quarter.start, quarter.end) == (
        "FY2024 Q1",
        dt.date(2023, 12, 1),
        dt.date(2024, 3, 1),
    )


def test_ranges_are_half_open():
    quarter = fiscal_quarter_range(dt.date(2024, 2, 1), FEBRUARY)

    assert dt.date(2024, 2, 1) in quarter
    assert dt.date(2024, 4, 30) in quarter
    assert dt.date(2024, 5, 1) not in quarter


def test_month_range_and_label():
    month = month_range(dt.date(2024, 2, 29))

    assert (month.start, month.end) == (dt.date(2024, 2, 1), dt.date(2024, 3, 1))
    assert month.label == "February 2024"


def test_add_months_crosses_years():
    assert add_months(dt.date(2024, 11, 30), 2) == dt.date(2025, 1, 1)
    assert add_months(dt.date(2024, 1, 15), -1) == dt.date(2023, 12, 1)
    assert add_months(dt.date(2024, 1, 15), -13) == dt.date(2022, 12, 1)


def test_months_in_lists_overlapping_months():
    months = months_in(dt.date(2024, 1, 15), dt.date(2024, 3, 1))

    assert [month.start for month in months] == [
        dt.date(2024, 1, 1),
        dt.date(2024, 2, 1),
    ]


@pytest.mark.parametrize("start_month", [0, 13])
def test_invalid_start_month_raises(start_month):
    with pytest.raises(ValueError, match="1 to 12"):
        fiscal_year_range(dt.date(2024, 1, 1), start_month)


def test_year_named_by_start_year():
    # The same February-to-January year, named by the year it starts in.
    quarter = fiscal_quarter_range(dt.date(2024, 3, 15), FEBRUARY, named_by="start")
    assert quarter.label == "FY2024 Q1"
    assert fiscal_year_range(dt.date(2025, 1, 31), FEBRUARY, "start").label == "FY2024"
    with pytest.raises(ValueError, match="Invalid fiscal year naming"):
        fiscal_year_label(dt.date(2024, 3, 15), FEBRUARY, named_by="middle")
