"""Attainment, pace, coverage, forecast and activity against benchmark."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from activity.models import Activity, Stage
from measurement.progress import (
    activity_level,
    activity_status,
    period_pace,
    rep_progress,
)
from tests.measurement.builders import (
    make_activity,
    make_benchmark,
    make_deal,
    make_quota,
    make_split,
    make_time_off,
)

D = dt.date
Q1_2024 = (D(2024, 1, 1), D(2024, 4, 1))
Q3_2024 = (D(2024, 7, 1), D(2024, 10, 1))


def _progress(personas, member, period, today):
    return rep_progress(
        organization=personas.org,
        members=[member],
        start=period[0],
        end=period[1],
        today=today,
    )[member.pk]


@pytest.fixture
def fixed_target(personas):
    """Pin the coverage target at 3x, so tests need no closed-deal history."""
    personas.org.coverage_target_fixed = Decimal("3.00")
    personas.org.save()
    return personas


@pytest.fixture
def unqualified(personas, in_org):
    """An open stage with probability 0, which pipeline coverage leaves out."""
    return Stage.unscoped.create(
        organization_id=personas.org.pk,
        pipeline=personas.stages["Won"].pipeline,
        name="Lead in",
        order=0,
        probability=Decimal(0),
    )


# Pace ------------------------------------------------------------------------


def test_pace_day_46_of_91():
    # 2024-02-15 is day 31 + 15 = 46 of the 91-day quarter: 46 / 91 = 50.549%.
    assert period_pace(*Q1_2024, D(2024, 2, 15)) == Decimal("50.5")


def test_pace_first_and_last_day():
    # Day 1 of 91 is 1.1%; the last day, 2024-03-31, is 91 / 91.
    assert period_pace(*Q1_2024, D(2024, 1, 1)) == Decimal("1.1")
    assert period_pace(*Q1_2024, D(2024, 3, 31)) == Decimal("100.0")


def test_pace_past_and_future_periods():
    assert period_pace(*Q1_2024, D(2024, 4, 1)) == Decimal("100.0")
    assert period_pace(*Q1_2024, D(2025, 6, 1)) == Decimal("100.0")
    assert period_pace(*Q1_2024, D(2023, 12, 31)) == Decimal("0.0")


# Attainment ------------------------------------------------------------------


def test_attainment_against_prorated_quota(fixed_target, in_org):
    personas = fixed_target
    rita = personas.rep1
    rita.start_date = D(2024, 2, 15)
    rita.save()
    make_quota(rita, *Q1_2024, "91000")
    make_time_off(rita, D(2024, 3, 4), D(2024, 3, 8))
    make_deal(rita, personas.stages["Won"], "30750.00", D(2024, 3, 20))

    progress = _progress(personas, rita, Q1_2024, D(2024, 5, 1))

    # Active 2024-02-15 to 2024-03-31: 15 + 31 = 46 days, less 5 days away
    # = 41 of 91. 91,000 x 41 / 91 = 41,000.00.
    assert progress.quota.amount == Decimal("41000.00")
    assert progress.quota.original == Decimal("91000.00")
    # 30,750 / 41,000 = 75.0%; against 91,000 it would read 33.8%.
    assert progress.attainment == Decimal("75.0")
    # The quarter has ended, so pace is 100% and attainment to pace 75.0%.
    assert progress.pace == Decimal("100.0")
    assert progress.attainment_to_pace == Decimal("75.0")


def test_attainment_to_pace_mid_period(fixed_target, in_org):
    personas = fixed_target
    make_quota(personas.rep1, *Q1_2024, "91000")
    make_deal(personas.rep1, personas.stages["Won"], "23000.00", D(2024, 2, 1))

    progress = _progress(personas, personas.rep1, Q1_2024, D(2024, 2, 15))

    # 23,000 / 91,000 = 25.27...% -> 25.3%. Pace 46 / 91 = 50.5%.
    # Attainment to pace from the unrounded figures:
    # (23,000 / 91,000) / (46 / 91) = 23,000 / 46,000 = 50.0%.
    assert progress.attainment == Decimal("25.3")
    assert progress.pace == Decimal("50.5")
    assert progress.attainment_to_pace == Decimal("50.0")


def test_no_quota_is_none_not_zero(fixed_target, in_org):
    personas = fixed_target
    make_deal(personas.rep2, personas.stages["Won"], "500.00", D(2024, 2, 1))

    progress = _progress(personas, personas.rep2, Q1_2024, D(2024, 2, 15))

    assert progress.quota is None
    assert progress.bookings == Decimal("500.00")
    assert progress.attainment is None
    assert progress.attainment_to_pace is None
    assert progress.coverage_status == "no quota"
    assert progress.pace == Decimal("50.5")


def test_split_credit_counts_for_attainment(fixed_target, in_org):
    personas = fixed_target
    make_quota(personas.rep1, *Q1_2024, "1000")
    deal = make_deal(personas.rep2, personas.stages["Won"], "800.00", D(2024, 2, 1))
    make_split(deal, personas.rep1, "25", "200.00")
    make_split(deal, personas.rep2, "75", "600.00")

    progress = _progress(personas, personas.rep1, Q1_2024, D(2024, 5, 1))

    # Rita is credited 200 of Rob's deal: 200 / 1,000 = 20.0%.
    assert progress.bookings == Decimal("200.00")
    assert progress.attainment == Decimal("20.0")


# Pipeline coverage -----------------------------------------------------------


def test_coverage_worked_example_end_to_end(personas, unqualified):
    stages = personas.stages
    rita = personas.rep1
    make_quota(rita, *Q3_2024, "2000000")
    make_deal(rita, stages["Won"], "400000.00", D(2024, 7, 20))
    make_deal(rita, stages["Engaging"], "4800000.00", D(2024, 9, 10))
    # Left out: closing next quarter, past due (a Q2 close date, still
    # open), and in a stage with probability 0.
    make_deal(rita, stages["Engaging"], "1000000.00", D(2024, 11, 15))
    make_deal(rita, stages["Engaging"], "300000.00", D(2024, 6, 20))
    make_deal(rita, unqualified, "900000.00", D(2024, 9, 1))
    # Trailing four quarters [2023-07-01, 2024-07-01): 11 won of 50 closed,
    # a 22% win rate, and 50 closed deals is over the 20 needed for her own.
    for _ in range(11):
        make_deal(rita, stages["Won"], "1.00", D(2024, 1, 10))
    for _ in range(39):
        make_deal(rita, stages["Lost"], "1.00", D(2024, 1, 10))

    progress = _progress(personas, rita, Q3_2024, D(2024, 8, 15))

    assert progress.bookings == Decimal("400000.00")
    assert progress.attainment == Decimal("20.0")
    assert progress.in_period_pipeline == Decimal("4800000.00")
    # 4,800,000 / (2,000,000 - 400,000) = 3.00x.
    assert progress.coverage.remaining == Decimal("1600000.00")
    assert progress.coverage.ratio == Decimal("3.00")
    # 1 / 0.22 = 4.545... -> 4.55x, the rep's own target.
    assert progress.coverage.required == Decimal("4.55")
    assert progress.coverage_target.ratio == Decimal("4.55")
    assert progress.coverage_target.source == "rep"
    # 4,800,000 x 0.22 = 1,056,000, 66% of the 1,600,000 to go.
    assert progress.coverage.expected_close == Decimal("1056000")
    assert progress.coverage.expected_share == Decimal("66")
    assert progress.coverage.at_risk
    assert progress.coverage_status == "below"
    # 400,000 + 4,800,000 x 0.5 (Engaging) = 2,800,000.00.
    assert progress.forecast == Decimal("2800000.00")


def test_past_due_open_deal_excluded(fixed_target, in_org):
    personas = fixed_target
    engaging = personas.stages["Engaging"]
    make_quota(personas.rep1, *Q1_2024, "10000")
    make_deal(personas.rep1, engaging, "5000.00", D(2024, 2, 14))
    make_deal(personas.rep1, engaging, "2000.00", D(2024, 2, 15))
    make_deal(personas.rep1, engaging, "7000.00", D(2024, 4, 1))
    make_deal(personas.rep1, engaging, "9000.00", D(2024, 3, 1), archived=True)

    progress = _progress(personas, personas.rep1, Q1_2024, D(2024, 2, 15))

    # Only the deal closing today counts: closing yesterday is past due,
    # 2024-04-01 is the next quarter and archived deals never count.
    assert progress.in_period_pipeline == Decimal("2000.00")
    # 2,000 / 10,000 = 0.20x, below the fixed 3.00x.
    assert progress.coverage.ratio == Decimal("0.20")
    assert progress.coverage_status == "below"
    # 2,000 x 0.5 = 1,000.00.
    assert progress.forecast == Decimal("1000.00")


def test_past_period_has_no_in_period_pipeline(fixed_target, in_org):
    personas = fixed_target
    make_quota(personas.rep1, *Q1_2024, "10000")
    make_deal(personas.rep1, personas.stages["Engaging"], "5000.00", D(2024, 3, 1))

    progress = _progress(personas, personas.rep1, Q1_2024, D(2024, 6, 1))

    assert progress.in_period_pipeline == Decimal("0.00")
    assert progress.forecast == Decimal("0.00")
    assert progress.coverage.ratio == Decimal("0.00")


def test_coverage_met_when_quota_reached(fixed_target, in_org):
    personas = fixed_target
    make_quota(personas.rep1, *Q1_2024, "1000")
    make_deal(personas.rep1, personas.stages["Won"], "1000.00", D(2024, 1, 10))

    progress = _progress(personas, personas.rep1, Q1_2024, D(2024, 2, 15))

    assert progress.coverage.met
    assert progress.coverage_status == "met"
    assert progress.attainment == Decimal("100.0")


def test_coverage_equal_to_target_is_above(fixed_target, in_org):
    personas = fixed_target
    make_quota(personas.rep1, *Q1_2024, "1000")
    make_deal(personas.rep1, personas.stages["Engaging"], "3000.00", D(2024, 3, 1))

    progress = _progress(personas, personas.rep1, Q1_2024, D(2024, 2, 15))

    # 3,000 / 1,000 = 3.00x against the fixed 3.00x.
    assert progress.coverage.ratio == Decimal("3.00")
    assert progress.coverage_target.source == "fixed"
    assert progress.coverage_status == "above"
    # A fixed 3x implies a 1/3 win rate: 3,000 / 3 = 1,000, all of the quota.
    assert progress.coverage.expected_share == Decimal("100")


def test_coverage_no_target_without_history(personas, in_org):
    make_quota(personas.rep1, *Q1_2024, "1000")
    make_deal(personas.rep1, personas.stages["Engaging"], "500.00", D(2024, 3, 1))

    progress = _progress(personas, personas.rep1, Q1_2024, D(2024, 2, 15))

    assert progress.coverage.ratio == Decimal("0.50")
    assert progress.coverage_target.ratio is None
    assert progress.coverage_status == "no target"


def test_past_period_coverage_target_window(personas, in_org):
    # Viewing Q1 2024 in 2025 uses the four quarters before Q1 2024:
    # [2023-01-01, 2024-01-01). One won of two closed gives 2.00x.
    make_quota(personas.rep1, *Q1_2024, "1000")
    make_deal(personas.rep1, personas.stages["Won"], "1.00", D(2023, 6, 1))
    make_deal(personas.rep1, personas.stages["Lost"], "1.00", D(2023, 6, 1))
    # Closed in 2024, so outside that window.
    make_deal(personas.rep1, personas.stages["Lost"], "1.00", D(2024, 6, 1))

    progress = _progress(personas, personas.rep1, Q1_2024, D(2025, 3, 1))

    assert progress.coverage_target.ratio == Decimal("2.00")
    assert progress.coverage_target.source == "organization"


# Forecast --------------------------------------------------------------------


def test_forecast_with_two_probabilities(fixed_target, in_org):
    personas = fixed_target
    stages = personas.stages
    make_quota(personas.rep1, *Q1_2024, "10000")
    make_deal(personas.rep1, stages["Won"], "100.00", D(2024, 1, 10))
    make_deal(personas.rep1, stages["Prospecting"], "1234.57", D(2024, 3, 1))
    make_deal(personas.rep1, stages["Engaging"], "999.99", D(2024, 3, 31))

    progress = _progress(personas, personas.rep1, Q1_2024, D(2024, 2, 15))

    # 1,234.57 x 0.10 = 123.457 and 999.99 x 0.50 = 499.995, which add up to
    # 623.452 -> 623.45 when rounded once. Rounding each (123.46 + 500.00)
    # would give 623.46.
    assert progress.in_period_pipeline == Decimal("2234.56")
    assert progress.forecast == Decimal("723.45")


# Activity against benchmark --------------------------------------------------


@pytest.mark.parametrize(
    ("ratio", "level"),
    [
        (Decimal("100.0"), "on"),
        (Decimal("150.0"), "on"),
        (Decimal("99.9"), "near"),
        (Decimal("80.0"), "near"),
        (Decimal("79.9"), "below"),
        (Decimal("0.0"), "below"),
        (None, "none"),
    ],
)
def test_activity_level_boundaries(ratio, level):
    assert activity_level(ratio) == level


TUESDAY = D(2024, 3, 5)


def _calls(member, count, day=TUESDAY):
    for hour in range(count):
        make_activity(
            member, dt.datetime(day.year, day.month, day.day, 8 + hour, tzinfo=dt.UTC)
        )


def test_activity_status_on_near_below(personas, in_org):
    make_benchmark(personas.org.pk, Activity.Type.CALL, "2")
    _calls(personas.rep1, 10)
    _calls(personas.rep2, 8)
    _calls(personas.rep3, 7)
    # Rex is away the whole week, so nothing is expected of him.
    make_time_off(personas.rep4, D(2024, 3, 4), D(2024, 3, 8))
    _calls(personas.rep4, 1)
    reps = [personas.rep1, personas.rep2, personas.rep3, personas.rep4]

    # Monday 2024-03-04 to Friday 2024-03-08: 5 business days x 2 = 10 calls.
    statuses = activity_status(
        organization=personas.org,
        members=reps,
        start=D(2024, 3, 4),
        end=D(2024, 3, 9),
    )

    rita, rob, remy, rex = (statuses[rep.pk][0] for rep in reps)
    assert (rita.actual, rita.expected, rita.ratio) == (10, Decimal("10.00"), 100)
    assert rita.status == "on"
    # 8 / 10 = exactly 80%, which is near.
    assert rob.ratio == Decimal("80.0")
    assert rob.status == "near"
    assert remy.ratio == Decimal("70.0")
    assert remy.status == "below"
    assert rex.actual == 1
    assert rex.expected == Decimal("0.00")
    assert rex.ratio is None
    assert rex.status == "none"


def test_activity_status_without_benchmark(personas, in_org):
    _calls(personas.rep1, 3)

    statuses = activity_status(
        organization=personas.org,
        members=[personas.rep1],
        start=D(2024, 3, 4),
        end=D(2024, 3, 9),
    )

    assert statuses == {personas.rep1.pk: []}


def test_activity_status_ramping_new_hire(personas, in_org):
    rita = personas.rep1
    rita.start_date = D(2024, 2, 20)
    rita.save()
    make_benchmark(personas.org.pk, Activity.Type.CALL, "2", ramp=[50])
    _calls(rita, 5)

    statuses = activity_status(
        organization=personas.org,
        members=[rita],
        start=D(2024, 3, 4),
        end=D(2024, 3, 9),
    )

    # Month one runs to 2024-03-19, so each day expects 50% of 2 calls:
    # 5 days x 1 = 5 expected, and 5 logged is 100%.
    status = statuses[rita.pk][0]
    assert status.expected == Decimal("5.00")
    assert status.ratio == Decimal("100.0")
    assert status.ramped


def test_progress_activity_counts_to_date(personas, in_org):
    make_benchmark(personas.org.pk, Activity.Type.CALL, "2")
    _calls(personas.rep1, 6, D(2024, 1, 2))

    # Today is Wednesday 2024-01-03: Monday 1 January to today is 3
    # business days, 6 calls expected, not the quarter's 65 x 2 = 130.
    progress = _progress(personas, personas.rep1, Q1_2024, D(2024, 1, 3))

    (status,) = progress.activity
    assert status.expected == Decimal("6.00")
    assert status.actual == 6
    assert status.status == "on"


# Queries ---------------------------------------------------------------------


def _queries_for(personas, members) -> int:
    with CaptureQueriesContext(connection) as queries:
        rep_progress(
            organization=personas.org,
            members=members,
            start=Q1_2024[0],
            end=Q1_2024[1],
            today=D(2024, 2, 15),
        )
    return len(queries)


def test_rep_progress_queries_constant(personas, in_org):
    reps = [personas.rep1, personas.rep2, personas.rep3, personas.rep4]
    make_benchmark(personas.org.pk, Activity.Type.CALL, "2")
    for rep in reps:
        make_quota(rep, *Q1_2024, "1000")
        make_time_off(rep, D(2024, 3, 4), D(2024, 3, 5))
        make_deal(rep, personas.stages["Won"], "100.00", D(2024, 1, 10))
        make_deal(rep, personas.stages["Engaging"], "100.00", D(2024, 3, 10))

    cold = _queries_for(personas, reps[:1])
    one_rep = _queries_for(personas, reps[:1])
    four_reps = _queries_for(personas, reps)

    # Bookings 3, quotas 2, coverage target 1 (the members' teams), in-period
    # pipeline 1, benchmarks 1 + time off 1 + activity counts 1. The first
    # call also counts the closed deals, which are cached after it.
    assert cold == 11
    assert one_rep == four_reps == 10
