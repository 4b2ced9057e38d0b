"""A week of activity across a daylight-saving change in the organisation's zone.

New York moves its clocks forward at 02:00 on Sunday 10 March 2024, so the week
from Monday 4 March runs from 05:00Z (midnight EST) to 04:00Z on 11 March
(midnight EDT). A week cut at fixed UTC offsets would end an hour late and
count a Monday call in the wrong week.
"""

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

from activity.dates import week_bounds
from activity.models import Activity
from goals.models import ActivityBenchmark, BenchmarkUnit, TimeOff
from goals.selectors import member_benchmarks
from measurement.selectors import MetricScope, scorecards_by_member
from tests.measurement.builders import make_activity

NEW_YORK = ZoneInfo("America/New_York")
MEETING = Activity.Type.MEETING


def _at(*parts):
    return dt.datetime(*parts, tzinfo=dt.UTC)


def _week_meetings(member):
    start, end = week_bounds(dt.date(2024, 3, 6), "America/New_York")
    scope = MetricScope([member.pk], start.date(), end.date(), NEW_YORK)
    return scorecards_by_member(scope)[member.pk].activities[MEETING]


def test_week_meetings_spring_forward(personas, in_org):
    rep = personas.rep1
    make_activity(rep, _at(2024, 3, 4, 4, 30), MEETING)  # Sun 3 Mar 23:30 EST: before
    make_activity(rep, _at(2024, 3, 4, 5, 0), MEETING)  # Mon 00:00 EST: first instant
    make_activity(rep, _at(2024, 3, 11, 3, 30), MEETING)  # Sun 10 Mar 23:30 EDT: inside
    make_activity(rep, _at(2024, 3, 11, 4, 30), MEETING)  # Mon 11 Mar 00:30 EDT: after
    assert _week_meetings(rep) == 2


def test_weekly_benchmark_less_day_off(personas, in_org):
    rep = personas.rep1
    ActivityBenchmark.objects.create(
        activity_type=MEETING, unit=BenchmarkUnit.WEEK, target=Decimal("10")
    )
    start, end = week_bounds(dt.date(2024, 3, 6), "America/New_York")
    expected = member_benchmarks([rep], start.date(), end.date())[rep.pk][0]
    # 10 a week is 2 per business day over Monday 4 to Friday 8 March.
    assert expected.expected == Decimal("10.00")
    TimeOff.objects.create(
        member=rep, start_date=dt.date(2024, 3, 8), end_date=dt.date(2024, 3, 10)
    )
    expected = member_benchmarks([rep], start.date(), end.date())[rep.pk][0]
    # Friday is away, and Saturday and Sunday are not business days: 4 x 2 = 8.
    assert expected.expected == Decimal("8.00")
    assert expected.counted_days == 4
