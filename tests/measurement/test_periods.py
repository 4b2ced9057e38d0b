import datetime as dt

import pytest
from django.http import QueryDict

from goals.calendar import fiscal_quarter_range
from measurement.periods import (
    adjacent_periods,
    default_period,
    organization_today,
    period_from_query,
)
from tests.measurement.builders import make_deal

D = dt.date


def _parse(organization, query: str):
    return period_from_query(QueryDict(query), organization)


@pytest.fixture
def february_org(personas, in_org):
    personas.org.fiscal_year_start_month = 2
    personas.org.save()
    return personas.org


def test_quarter_containing_date(february_org):
    period, form = _parse(february_org, "kind=quarter&on=2024-04-30")

    assert not form.errors
    assert (period.start, period.end) == (D(2024, 2, 1), D(2024, 5, 1))
    assert period.label == "FY2025 Q1"


def test_month_and_fiscal_year(february_org):
    month, _ = _parse(february_org, "kind=month&on=2024-02-29")
    year, _ = _parse(february_org, "kind=year&on=2024-01-31")

    assert (month.start, month.end, month.label) == (
        D(2024, 2, 1),
        D(2024, 3, 1),
        "February 2024",
    )
    assert (year.start, year.end, year.label) == (
        D(2023, 2, 1),
        D(2024, 2, 1),
        "FY2024",
    )


def test_custom_period_end_is_excluded(february_org):
    period, _ = _parse(february_org, "kind=custom&start=2024-01-10&end=2024-01-20")

    assert (period.start, period.end) == (D(2024, 1, 10), D(2024, 1, 20))
    assert period.last_day == D(2024, 1, 19)
    assert period.label == "2024-01-10 to 2024-01-19"


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ("kind=custom&end=2024-01-20", "start", "Enter a start date"),
        ("kind=custom&start=2024-01-20", "end", "Enter an end date"),
        ("kind=custom&start=2024-01-20&end=2024-01-20", "end", "after the start"),
        ("kind=custom&start=2024-01-20&end=2024-01-01", "end", "after the start"),
        ("kind=custom&start=2024-13-01&end=2024-12-20", "start", "valid date"),
        ("kind=custom&start=2000-01-01&end=2024-12-20", "end", "at most"),
        ("kind=custom&start=0001-01-01&end=0001-02-01", "start", "out of range"),
        ("kind=month&on=yesterday", "on", "valid date"),
        ("kind=month&on=9999-12-31", "on", "out of range"),
        ("kind=week&on=2024-01-01", "kind", "available choices"),
    ],
)
def test_invalid_input_is_a_form_error(february_org, query, field, message):
    period, form = _parse(february_org, query)

    assert period is None
    assert message in " ".join(form.errors[field])


def test_default_is_quarter_of_latest_closed_deal(personas, february_org):
    stages, rita = personas.stages, personas.rep1
    make_deal(rita, stages["Won"], "10", D(2023, 6, 1))
    make_deal(rita, stages["Lost"], "10", D(2024, 1, 31))
    # Open and archived deals do not move the default.
    make_deal(rita, stages["Engaging"], "10", D(2026, 1, 1))
    make_deal(rita, stages["Won"], "10", D(2025, 1, 1), archived=True)

    period, _ = _parse(february_org, "")

    assert period.label == "FY2024 Q4"
    assert (period.start, period.end) == (D(2023, 11, 1), D(2024, 2, 1))


def test_default_without_data_is_current_quarter(february_org):
    today = organization_today(february_org)
    expected = fiscal_quarter_range(today, 2)

    period = default_period(february_org)

    assert (period.start, period.end) == (expected.start, expected.end)


def test_kind_without_date_uses_latest_data(personas, february_org):
    make_deal(personas.rep1, personas.stages["Won"], "10", D(2024, 3, 15))

    period, _ = _parse(february_org, "kind=month")

    assert (period.start, period.end) == (D(2024, 3, 1), D(2024, 4, 1))


def test_adjacent_periods(february_org):
    quarter, _ = _parse(february_org, "kind=quarter&on=2024-02-01")
    custom, _ = _parse(february_org, "kind=custom&start=2024-01-10&end=2024-01-20")

    before, after = adjacent_periods(quarter, february_org)
    assert (before.label, after.label) == ("FY2024 Q4", "FY2025 Q2")

    before, after = adjacent_periods(custom, february_org)
    assert (before.start, before.end) == (D(2023, 12, 31), D(2024, 1, 10))
    assert (after.start, after.end) == (D(2024, 1, 20), D(2024, 1, 30))
