"""Due times of steps: business delays, the send window and daylight saving."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from followups.schedule import delay_end, into_send_window, step_due_at

NEW_YORK = ZoneInfo("America/New_York")


def utc(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


def test_two_business_days_from_friday_afternoon_is_tuesday():
    # Friday 2024-03-01 16:00 EST is 21:00 UTC; Monday is day 1, Tuesday day 2.
    friday_4pm = utc(2024, 3, 1, 21, 0)
    due = step_due_at(friday_4pm, 2, "business_days", NEW_YORK)
    assert due == utc(2024, 3, 5, 21, 0)
    assert due.astimezone(NEW_YORK).strftime("%a %H:%M") == "Tue 16:00"


def test_business_days_across_dst_keep_local_time():
    # Friday 2024-03-08 10:00 EST (15:00 UTC); clocks go forward on Sunday 10 March,
    # so Monday 10:00 EDT is 14:00 UTC.
    due = step_due_at(utc(2024, 3, 8, 15, 0), 1, "business_days", NEW_YORK)
    assert due == utc(2024, 3, 11, 14, 0)


def test_hours_delay_past_window_moves_to_next_morning():
    # Thursday 2024-03-07 16:00 EST + 3 h = 19:00, after the window: Friday 09:00 EST.
    due = step_due_at(utc(2024, 3, 7, 21, 0), 3, "hours", NEW_YORK)
    assert due == utc(2024, 3, 8, 14, 0)


def test_business_hours_skip_the_weekend():
    # Friday 2024-03-01 16:00 EST + 2 business hours: 1 h on Friday, 1 h on Monday.
    due = step_due_at(utc(2024, 3, 1, 21, 0), 2, "business_hours", NEW_YORK)
    assert due == utc(2024, 3, 4, 15, 0)


def test_next_day_same_local_time_across_spring_forward():
    start = dt.datetime(2018, 3, 10, 9, 0, tzinfo=NEW_YORK)
    due = delay_end(start, 1, "days", NEW_YORK)
    assert due == utc(2018, 3, 11, 13, 0)
    assert due - start.astimezone(dt.UTC) == dt.timedelta(hours=23)


def test_next_day_same_local_time_across_fall_back():
    start = dt.datetime(2018, 11, 3, 9, 0, tzinfo=NEW_YORK)
    due = delay_end(start, 1, "days", NEW_YORK)
    assert due == utc(2018, 11, 4, 14, 0)
    assert due - start.astimezone(dt.UTC) == dt.timedelta(hours=25)


def test_shanghai_send_uses_current_offset_not_lmt():
    shanghai = ZoneInfo("Asia/Shanghai")
    # Monday 2024-05-06 09:00 local is inside the window, at UTC+8.
    local_nine = dt.datetime(2024, 5, 6, 9, 0, tzinfo=shanghai)
    assert into_send_window(local_nine, shanghai) == utc(2024, 5, 6, 1, 0)


def test_weekend_instant_moves_to_monday_morning():
    saturday_noon = utc(2024, 3, 2, 17, 0)
    assert into_send_window(saturday_noon, NEW_YORK) == utc(2024, 3, 4, 14, 0)
