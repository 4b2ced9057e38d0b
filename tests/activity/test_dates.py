"""Close dates: instants convert to the organisation's zone, dates never shift."""

import datetime as dt

import pytest

from activity.dates import (
    date_of_epoch_millis_date,
    local_date_of_instant,
    parse_iso_date,
    parse_iso_instant,
    period_bounds,
)


def test_hubspot_closedate_instant_uses_tenant_zone():
    instant = parse_iso_instant("2023-04-01T01:09:44Z")
    assert local_date_of_instant(instant, "America/Phoenix") == dt.date(2023, 3, 31)


def test_hubspot_closedate_would_be_april_in_utc():
    instant = parse_iso_instant("2023-04-01T01:09:44Z")
    assert local_date_of_instant(instant, "UTC") == dt.date(2023, 4, 1)


def test_hubspot_date_property_does_not_shift():
    # 1430438400000 ms is 2015-05-01T00:00Z; the tenant is in New York, where
    # that instant is still 30 April, but a date property is a date.
    assert date_of_epoch_millis_date(1430438400000) == dt.date(2015, 5, 1)


def test_epoch_millis_not_at_midnight_is_rejected():
    with pytest.raises(ValueError, match="not midnight UTC"):
        date_of_epoch_millis_date(1430438400001)


def test_salesforce_close_date_does_not_shift():
    assert parse_iso_date("2023-05-26") == dt.date(2023, 5, 26)


def test_naive_instant_is_rejected():
    with pytest.raises(ValueError, match="no time zone"):
        local_date_of_instant(dt.datetime(2023, 4, 1, 1, 9), "UTC")


def test_period_bounds_are_local_midnights():
    start, end = period_bounds(
        dt.date(2024, 3, 1), dt.date(2024, 4, 1), "America/New_York"
    )
    # Daylight saving time starts on 10 March 2024: EST before, EDT after.
    assert start.astimezone(dt.UTC) == dt.datetime(2024, 3, 1, 5, tzinfo=dt.UTC)
    assert end.astimezone(dt.UTC) == dt.datetime(2024, 4, 1, 4, tzinfo=dt.UTC)
