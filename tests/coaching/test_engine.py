"""Team figures, thresholds, windows and business minutes."""

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from coaching.business_hours import business_deadline, business_minutes
from coaching.engine import business_days_before, judge, percentile
from coaching.models import Comparator, Rule, ThresholdKind
from coaching.readings import Reading

D = dt.date
NEW_YORK = ZoneInfo("America/New_York")


def _values(*numbers):
    return [Decimal(n) for n in numbers]


def test_median_of_even_count():
    # 20, 30, 40, 50: (30 + 40) / 2 = 35.
    assert percentile(_values(50, 20, 40, 30), Decimal(50)) == Decimal(35)


def test_median_of_odd_count():
    assert percentile(_values(7, 1, 3), Decimal(50)) == Decimal(3)


def test_percentile_interpolates_between_ranks():
    # Rank (4 - 1) x 25% = 0.75, between 20 and 30: 20 + 0.75 x 10 = 27.5.
    assert percentile(_values(20, 30, 40, 50), Decimal(25)) == Decimal("27.5")
    assert percentile(_values(20, 30, 40, 50), Decimal(99)) == Decimal("49.7")


def test_percentile_of_one_value():
    assert percentile(_values(12), Decimal(90)) == Decimal(12)


def _rule(**fields) -> Rule:
    defaults = {
        "metric": "win_rate",
        "comparator": Comparator.LT,
        "threshold_kind": ThresholdKind.ABSOLUTE,
        "threshold_value": Decimal("25"),
        "min_sample": 0,
    }
    return Rule(**{**defaults, **fields})


@pytest.mark.parametrize(
    ("comparator", "value", "breached"),
    [
        (Comparator.LT, "25", False),
        (Comparator.LTE, "25", True),
        (Comparator.GT, "25", False),
        (Comparator.GTE, "25", True),
        (Comparator.LT, "24.9", True),
        (Comparator.GT, "25.1", True),
    ],
)
def test_comparators_at_the_threshold(comparator, value, breached):
    verdict = judge(_rule(comparator=comparator), Reading(Decimal(value), 10), None)
    assert verdict.threshold == Decimal("25")
    assert verdict.breached is breached


def test_target_multiple_threshold():
    rule = _rule(
        metric="activity_vs_benchmark",
        threshold_kind=ThresholdKind.TARGET_MULTIPLE,
        threshold_value=Decimal("0.8"),
    )
    # 80% of 12.5 expected activities is 10.
    verdict = judge(rule, Reading(Decimal(9), target=Decimal("12.5")), None)
    assert verdict.threshold == Decimal("10")
    assert verdict.breached is True


def test_team_median_multiple_threshold():
    rule = _rule(threshold_kind=ThresholdKind.TEAM_MEDIAN_MULTIPLE, threshold_value=2)
    verdict = judge(rule, Reading(Decimal(60), 5), Decimal("25"))
    assert verdict.threshold == Decimal("50")
    assert verdict.team_value == Decimal("25")


def test_small_sample_is_not_judged():
    verdict = judge(_rule(min_sample=10), Reading(Decimal(0), sample=3), None)
    assert verdict.breached is None
    assert verdict.reason == "3 closed deals, fewer than 10"


def test_missing_target_is_not_judged():
    rule = _rule(
        metric="coverage_vs_target", threshold_kind=ThresholdKind.TARGET_MULTIPLE
    )
    verdict = judge(rule, Reading(Decimal("1.5"), target=None), None)
    assert verdict.breached is None
    assert verdict.reason == "no value for the rep's coverage target"


def test_met_target_is_never_breached():
    rule = _rule(
        metric="coverage_vs_target", threshold_kind=ThresholdKind.TARGET_MULTIPLE
    )
    verdict = judge(rule, Reading(None, met=True), None)
    assert verdict.breached is False


@pytest.mark.parametrize(
    ("today", "start"),
    [
        (D(2024, 5, 15), D(2024, 5, 8)),  # Wednesday: back to last Wednesday
        (D(2024, 5, 13), D(2024, 5, 6)),  # Monday: the week before
        (D(2024, 5, 12), D(2024, 5, 6)),  # Sunday: Monday to Friday before
    ],
)
def test_business_days_before(today, start):
    assert business_days_before(today, 5) == start


def _local(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=NEW_YORK)


@pytest.mark.parametrize(
    ("created", "responded", "minutes"),
    [
        # Saturday 10:00 to Monday 09:30: only Monday's 30 minutes count.
        (_local(D(2024, 3, 16), 10), _local(D(2024, 3, 18), 9, 30), "30"),
        # Friday 16:30 to Monday 09:15: 30 on Friday plus 15 on Monday.
        (_local(D(2024, 3, 15), 16, 30), _local(D(2024, 3, 18), 9, 15), "45"),
        (_local(D(2024, 3, 19), 12), _local(D(2024, 3, 19), 12, 7), "7"),
        # Friday 16:50 EST to Monday 09:10 EDT, over the change to summer time:
        # 10 minutes each day.
        (_local(D(2024, 3, 8), 16, 50), _local(D(2024, 3, 11), 9, 10), "20"),
    ],
)
def test_business_minutes_over_weekends_and_dst(created, responded, minutes):
    assert business_minutes(created, responded, NEW_YORK) == Decimal(minutes)


def test_business_minutes_of_an_empty_range():
    moment = _local(D(2024, 3, 19), 12)
    assert business_minutes(moment, moment, NEW_YORK) == 0
    assert business_minutes(moment, moment - dt.timedelta(hours=1), NEW_YORK) == 0


@pytest.mark.parametrize(
    ("start", "minutes", "due"),
    [
        # Inside the day.
        (_local(D(2024, 3, 19), 12), 7, _local(D(2024, 3, 19), 12, 7)),
        # Friday 16:55 plus 10: 5 on Friday, 5 on Monday.
        (_local(D(2024, 3, 15), 16, 55), 10, _local(D(2024, 3, 18), 9, 5)),
        # Saturday: the clock starts on Monday at 09:00.
        (_local(D(2024, 3, 16), 10), 30, _local(D(2024, 3, 18), 9, 30)),
        # Before opening on a weekday.
        (_local(D(2024, 3, 19), 7), 15, _local(D(2024, 3, 19), 9, 15)),
        # Friday 16:50 EST plus 20, over the change to summer time: Monday
        # 09:10 EDT, which is 13:10 UTC rather than 14:10.
        (_local(D(2024, 3, 8), 16, 50), 20, _local(D(2024, 3, 11), 9, 10)),
        # Exactly the day's end.
        (_local(D(2024, 3, 19), 16), 60, _local(D(2024, 3, 19), 17)),
    ],
)
def test_business_deadline(start, minutes, due):
    deadline = business_deadline(start, minutes, NEW_YORK)

    assert deadline == due
    assert business_minutes(start, deadline, NEW_YORK) == Decimal(minutes)


def test_business_deadline_dst_in_utc():
    start = _local(D(2024, 3, 8), 16, 50)
    deadline = business_deadline(start, 20, NEW_YORK)
    assert deadline == dt.datetime(2024, 3, 11, 13, 10, tzinfo=dt.UTC)
