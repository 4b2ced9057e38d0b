"""Targets read by goals.selectors: prorated quotas, benchmarks, coverage."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from goals.periods import quota_period_containing
from goals.selectors import (
    closed_deals_changed,
    coverage_targets,
    member_benchmarks,
    member_quotas,
    team_quotas,
)
from spm.models import Organization
from tests.goals.conftest import (
    Q1_END,
    Q1_START,
    make_benchmark,
    make_quota,
    make_time_off,
    set_dates,
)
from tests.measurement.builders import make_deal

D = dt.date


def _quota_of(member, start=Q1_START, end=Q1_END, metric="bookings"):
    return member_quotas([member], start, end, metric)[member.pk]


# member_quotas --------------------------------------------------------------


def test_join_on_day_46_of_quarter(in_org, personas):
    rep = set_dates(personas.rep1, start=D(2024, 2, 15))
    make_quota(rep, "100000.00")

    figure = _quota_of(rep)

    # 15 February is day 46 of the 91-day quarter: 31 days of January and 14
    # of February come before it, so 91 - 45 = 46 days are active.
    # 100,000 x 46 / 91 = 50,549.4505..., rounded half-up to 50,549.45.
    assert figure.amount == Decimal("50549.45")
    assert figure.original == Decimal("100000.00")
    assert figure.is_prorated
    assert figure.active_days == 46
    assert figure.period_days == 91


def test_rep_who_leaves(in_org, personas):
    # The last day is 10 March: 31 + 29 + 10 = 70 active days.
    rep = set_dates(personas.rep1, end=D(2024, 3, 10))
    make_quota(rep, "100000.00")

    figure = _quota_of(rep)

    # 100,000 x 70 / 91 = 76,923.0769... -> 76,923.08
    assert figure.amount == Decimal("76923.08")
    assert figure.active_days == 70


def test_five_days_of_time_off(in_org, personas):
    rep = personas.rep1
    make_quota(rep, "100000.00")
    make_time_off(rep, D(2024, 2, 5), D(2024, 2, 9))

    figure = _quota_of(rep)

    # 100,000 x (91 - 5) / 91 = 94,505.4945... -> 94,505.49
    assert figure.amount == Decimal("94505.49")
    assert figure.away_days == 5


def test_overlapping_time_off_counted_once(in_org, personas):
    rep = personas.rep1
    make_quota(rep, "100000.00")
    make_time_off(rep, D(2024, 2, 5), D(2024, 2, 9))
    make_time_off(rep, D(2024, 2, 7), D(2024, 2, 11))

    figure = _quota_of(rep)

    # 5 to 11 February is 7 days, not 5 + 5 = 10.
    # 100,000 x 84 / 91 = 92,307.6923... -> 92,307.69
    assert figure.away_days == 7
    assert figure.amount == Decimal("92307.69")


def test_time_off_before_start_date_not_counted_twice(in_org, personas):
    rep = set_dates(personas.rep1, start=D(2024, 2, 15))
    make_quota(rep, "100000.00")
    # 12 to 16 February: only 15 and 16 February fall after the start date.
    make_time_off(rep, D(2024, 2, 12), D(2024, 2, 16))

    figure = _quota_of(rep)

    # 46 active days, 2 of them away: 100,000 x 44 / 91 = 48,351.6483... -> 48,351.65
    assert figure.away_days == 2
    assert figure.amount == Decimal("48351.65")


def test_monthly_quotas_summed_over_quarter(in_org, personas):
    rep = personas.rep1
    make_quota(rep, "30000.00", D(2024, 1, 1), D(2024, 2, 1))
    make_quota(rep, "30000.00", D(2024, 2, 1), D(2024, 3, 1))
    make_quota(rep, "40000.00", D(2024, 3, 1), D(2024, 4, 1))

    figure = _quota_of(rep)

    assert figure.amount == Decimal("100000.00")
    assert figure.original == Decimal("100000.00")
    assert not figure.is_prorated


def test_monthly_quotas_with_join_in_february(in_org, personas):
    rep = set_dates(personas.rep1, start=D(2024, 2, 15))
    make_quota(rep, "30000.00", D(2024, 1, 1), D(2024, 2, 1))
    make_quota(rep, "30000.00", D(2024, 2, 1), D(2024, 3, 1))
    make_quota(rep, "40000.00", D(2024, 3, 1), D(2024, 4, 1))

    figure = _quota_of(rep)

    # January 0; February 15 of 29 days: 30,000 x 15 / 29 = 15,517.2413...;
    # March 40,000. Rounded once: 55,517.2413... -> 55,517.24
    assert figure.amount == Decimal("55517.24")


def test_quarter_quota_over_one_month(in_org, personas):
    rep = personas.rep1
    make_quota(rep, "91000.00")

    figure = _quota_of(rep, D(2024, 2, 1), D(2024, 3, 1))

    # February is 29 of the quarter's 91 days: 91,000 x 29 / 91 = 29,000
    assert figure.amount == Decimal("29000.00")
    assert not figure.is_prorated


def test_member_without_quota_left_out(in_org, personas):
    make_quota(personas.rep1, "100.00")

    figures = member_quotas([personas.rep1, personas.rep2], Q1_START, Q1_END)

    assert set(figures) == {personas.rep1.pk}


def test_other_metric_not_mixed(in_org, personas):
    make_quota(personas.rep1, "100.00")
    make_quota(personas.rep1, "7", metric="deal_count")

    figures = member_quotas([personas.rep1], Q1_START, Q1_END, "deal_count")

    assert figures[personas.rep1.pk].amount == Decimal("7.00")
    assert figures[personas.rep1.pk].currency == ""


def test_team_quota_independent_of_sum(in_org, personas):
    east = personas.rep1.team
    make_quota(personas.rep1, "100000.00")
    make_quota(personas.rep2, "100000.00")
    make_quota(east, "250000.00")

    figures = team_quotas([east.pk], Q1_START, Q1_END)

    # The team's own 250,000, not the 200,000 its reps add up to.
    assert figures[east.pk].amount == Decimal("250000.00")


def test_member_quotas_queries(in_org, personas, django_assert_num_queries):
    reps = [personas.rep1, personas.rep2, personas.rep3]
    for rep in reps:
        make_quota(rep, "100.00")
    with django_assert_num_queries(2):
        member_quotas(reps, Q1_START, Q1_END)


# member_benchmarks ----------------------------------------------------------


def test_ramp_across_month_boundary(in_org, personas):
    # Month one of a start on Monday 15 January runs to 14 February.
    rep = set_dates(personas.rep1, start=D(2024, 1, 15))
    make_benchmark(personas.org.pk, "call", "10", ramp=[50, 75])

    # Monday 12 to Friday 16 February: three days in month one (50%) and two
    # in month two (75%): 3 x 10 x 0.50 + 2 x 10 x 0.75 = 15 + 15 = 30.
    [expectation] = member_benchmarks([rep], D(2024, 2, 12), D(2024, 2, 19))[rep.pk]

    assert expectation.expected == Decimal("30.00")
    assert expectation.counted_days == 5
    assert expectation.ramped


def test_ramp_with_time_off(in_org, personas):
    rep = set_dates(personas.rep1, start=D(2024, 1, 15))
    make_benchmark(personas.org.pk, "call", "10", ramp=[50, 75])
    # Away on Tuesday 13 February, a 50% day.
    make_time_off(rep, D(2024, 2, 13), D(2024, 2, 13))

    [expectation] = member_benchmarks([rep], D(2024, 2, 12), D(2024, 2, 19))[rep.pk]

    # 2 x 5 + 2 x 7.5 = 25
    assert expectation.expected == Decimal("25.00")
    assert expectation.counted_days == 4
    assert expectation.business_days == 5


def test_ramp_ends_after_listed_months(in_org, personas):
    rep = set_dates(personas.rep1, start=D(2024, 1, 15))
    make_benchmark(personas.org.pk, "call", "10", ramp=[50, 75])

    # From 15 March on, month three: 100%. Monday 18 to Friday 22 March.
    [expectation] = member_benchmarks([rep], D(2024, 3, 18), D(2024, 3, 23))[rep.pk]

    assert expectation.expected == Decimal("50.00")
    assert not expectation.ramped


def test_per_week_benchmark_over_two_weeks(in_org, personas):
    rep = personas.rep1
    make_benchmark(personas.org.pk, "email", "25", unit="week")

    # Monday 4 to Sunday 17 March: 10 business days, each a fifth of 25.
    [expectation] = member_benchmarks([rep], D(2024, 3, 4), D(2024, 3, 18))[rep.pk]

    assert expectation.expected == Decimal("50.00")
    assert expectation.business_days == 10


def test_most_specific_benchmark_wins(in_org, personas):
    org_id = personas.org.pk
    make_benchmark(org_id, "call", "10")
    make_benchmark(org_id, "call", "8", role="rep")
    make_benchmark(org_id, "call", "6", team=personas.rep1.team)

    result = member_benchmarks(
        [personas.rep1, personas.rep3, personas.manager], D(2024, 3, 4), D(2024, 3, 5)
    )

    # One business day each. rep1's team (East) wins over the rep role, rep3
    # (West) gets the rep role's, and the manager is in East too.
    assert result[personas.rep1.pk][0].expected == Decimal("6.00")
    assert result[personas.rep3.pk][0].expected == Decimal("8.00")
    assert result[personas.manager.pk][0].expected == Decimal("6.00")


# coverage_targets -----------------------------------------------------------

# A day in Q3 2024 of a calendar fiscal year. The trailing window is the four
# quarters before it: 1 July 2023 to 30 June 2024.
COVERAGE_DAY = D(2024, 7, 15)
IN_WINDOW = D(2024, 3, 1)


def _closed(personas, member, won: int, lost: int, close_date=IN_WINDOW):
    for _ in range(won):
        make_deal(member, personas.stages["Won"], "100.00", close_date)
    for _ in range(lost):
        make_deal(member, personas.stages["Lost"], "100.00", close_date)


@pytest.fixture
def closed_deals(personas):
    # rep1: 5 won of 20 closed; rep2: 4 won of 10 (East); rep3: 1 won of 2
    # (West). A deal closed before the window does not count.
    _closed(personas, personas.rep1, won=5, lost=15)
    _closed(personas, personas.rep2, won=4, lost=6)
    _closed(personas, personas.rep3, won=1, lost=1)
    _closed(personas, personas.rep3, won=0, lost=30, close_date=D(2023, 6, 30))
    return personas


def test_rep_with_enough_deals_uses_own_win_rate(in_org, closed_deals):
    rep = closed_deals.rep1
    target = coverage_targets(closed_deals.org, [rep], COVERAGE_DAY)[rep.pk]

    # 20 closed / 5 won = 4.00
    assert target.source == "rep"
    assert target.ratio == Decimal("4.00")
    assert target.window_start == D(2023, 7, 1)
    assert target.window_end == D(2024, 7, 1)


def test_rep_with_few_deals_uses_team(in_org, closed_deals):
    rep = closed_deals.rep2
    target = coverage_targets(closed_deals.org, [rep], COVERAGE_DAY)[rep.pk]

    # East: 5 + 4 = 9 won of 20 + 10 = 30 closed: 30 / 9 = 3.333... -> 3.33
    assert target.source == "team"
    assert target.ratio == Decimal("3.33")
    assert "rep closed 10 deals, fewer than 20" in target.notes


def test_team_with_few_deals_uses_organisation(in_org, closed_deals):
    rep = closed_deals.rep3
    target = coverage_targets(closed_deals.org, [rep], COVERAGE_DAY)[rep.pk]

    # West closed 2. Everyone: 10 won of 32 closed: 32 / 10 = 3.20
    assert target.source == "organization"
    assert target.ratio == Decimal("3.20")
    assert target.closed == 32


def test_fixed_ratio_wins(in_org, closed_deals):
    org = closed_deals.org
    org.coverage_target_fixed = Decimal("3.50")
    rep = closed_deals.rep1

    target = coverage_targets(org, [rep], COVERAGE_DAY)[rep.pk]

    assert target.source == "fixed"
    assert target.ratio == Decimal("3.50")


def test_no_closed_deals_gives_no_target(in_org, personas):
    rep = personas.rep1
    target = coverage_targets(personas.org, [rep], COVERAGE_DAY)[rep.pk]

    assert target.source == "none"
    assert target.ratio is None
    assert "no deals closed" in target.explanation


def test_minimum_closed_deals_is_a_setting(in_org, closed_deals):
    org = closed_deals.org
    org.coverage_min_closed_deals = 10
    rep = closed_deals.rep2

    target = coverage_targets(org, [rep], COVERAGE_DAY)[rep.pk]

    # 10 closed now suffices: 10 / 4 = 2.50
    assert target.source == "rep"
    assert target.ratio == Decimal("2.50")


def test_closed_deal_counts_cached_until_changed(in_org, closed_deals):
    rep = closed_deals.rep1
    coverage_targets(closed_deals.org, [rep], COVERAGE_DAY)
    # Five more won deals: 10 won of 25 closed.
    _closed(closed_deals, rep, won=5, lost=0)

    cached = coverage_targets(closed_deals.org, [rep], COVERAGE_DAY)[rep.pk]
    closed_deals_changed(closed_deals.org.pk)
    fresh = coverage_targets(closed_deals.org, [rep], COVERAGE_DAY)[rep.pk]

    assert cached.ratio == Decimal("4.00")
    # 25 closed / 10 won = 2.50
    assert fresh.ratio == Decimal("2.50")


def test_team_move_applies_despite_cache(in_org, closed_deals):
    rep2 = closed_deals.rep2
    coverage_targets(closed_deals.org, [rep2], COVERAGE_DAY)
    # rep1 moves from East to West: East keeps rep2's 4 won of 10 closed.
    closed_deals.rep1.team = closed_deals.rep3.team
    closed_deals.rep1.save()

    target = coverage_targets(closed_deals.org, [rep2], COVERAGE_DAY)[rep2.pk]

    # East closed 10, fewer than 20. Everyone: 10 won of 32 closed = 3.20
    assert target.source == "organization"
    assert target.ratio == Decimal("3.20")


# Fiscal year naming ---------------------------------------------------------


@pytest.mark.parametrize(
    ("named_by", "quarter", "year"),
    [("end", "FY2025 Q1", "FY2025"), ("start", "FY2024 Q1", "FY2024")],
)
def test_fiscal_year_naming(named_by, quarter, year):
    # With a February start, 15 February 2024 is in the year that starts on
    # 1 February 2024 and ends on 31 January 2025.
    org = Organization(
        fiscal_year_start_month=2, fiscal_year_named_by=named_by, quota_period="quarter"
    )
    assert quota_period_containing(org, D(2024, 2, 15)).label == quarter
    org.quota_period = "year"
    assert quota_period_containing(org, D(2024, 2, 15)).label == year
