"""Local wall-clock times and weeks across daylight-saving changes."""

import datetime as dt
from zoneinfo import ZoneInfo

from activity.dates import local_instant, same_local_time_after, week_bounds

UTC = dt.UTC


def _utc(*parts):
    return dt.datetime(*parts, tzinfo=UTC)


def test_next_day_spring_forward_23_hours():
    # 2018-03-10 09:00 EST is 14:00Z. Clocks go forward on 11 March, so
    # 09:00 EDT (UTC-4) on 11 March is 13:00Z, 23 hours later.
    step_one = local_instant(dt.date(2018, 3, 10), dt.time(9), "America/New_York")
    assert step_one == _utc(2018, 3, 10, 14)
    step_two = same_local_time_after(step_one, 1, "America/New_York")
    assert step_two == _utc(2018, 3, 11, 13)
    assert step_two - step_one == dt.timedelta(hours=23)


def test_next_day_fall_back_25_hours():
    # 2018-11-03 09:00 EDT is 13:00Z, and 4 November 09:00 EST (UTC-5) is 14:00Z.
    step_one = local_instant(dt.date(2018, 11, 3), dt.time(9), "America/New_York")
    step_two = same_local_time_after(step_one, 1, "America/New_York")
    assert step_two == _utc(2018, 11, 4, 14)
    assert step_two - step_one == dt.timedelta(hours=25)


def test_elapsed_time_measured_in_utc():
    # Two aware datetimes that share a zoneinfo object subtract as wall
    # clocks: 24 hours. The instants are 23 hours apart.
    zone = ZoneInfo("America/New_York")
    first = dt.datetime(2018, 3, 10, 9, tzinfo=zone)
    second = dt.datetime(2018, 3, 11, 9, tzinfo=zone)
    assert second - first == dt.timedelta(hours=24)
    assert second.astimezone(UTC) - first.astimezone(UTC) == dt.timedelta(hours=23)


def test_shanghai_nine_local_time():
    # Asia/Shanghai is UTC+8 in 2024. A pytz zone passed to the constructor
    # would give +08:05:43 and 00:54:17Z.
    send = local_instant(dt.date(2024, 5, 6), dt.time(9), "Asia/Shanghai")
    assert send == _utc(2024, 5, 6, 1)


def test_spring_forward_week_167_hours():
    # Monday 2024-03-04 00:00 EST = 05:00Z, Monday 2024-03-11 00:00 EDT = 04:00Z.
    start, end = week_bounds(dt.date(2024, 3, 10), "America/New_York")
    assert start.astimezone(UTC) == _utc(2024, 3, 4, 5)
    assert end.astimezone(UTC) == _utc(2024, 3, 11, 4)
    assert end.astimezone(UTC) - start.astimezone(UTC) == dt.timedelta(hours=167)


def test_fall_back_week_169_hours():
    start, end = week_bounds(dt.date(2024, 11, 6), "America/New_York")
    assert start.astimezone(UTC) == _utc(2024, 11, 4, 5)
    assert end.astimezone(UTC) == _utc(2024, 11, 11, 5)
    start, end = week_bounds(dt.date(2024, 11, 3), "America/New_York")
    # Monday 28 October 00:00 EDT = 04:00Z to Monday 4 November 00:00 EST = 05:00Z.
    assert end.astimezone(UTC) - start.astimezone(UTC) == dt.timedelta(hours=169)
