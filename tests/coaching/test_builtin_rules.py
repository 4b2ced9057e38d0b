"""Each built-in rule on data worked out by hand.

Acme's reps are Rita (rep1), Rob (rep2), Remy (rep3) and Rex (rep4), in UTC.
Every test runs one rule on Wednesday 2024-05-15 at 12:00 UTC.
"""

import datetime as dt
from decimal import Decimal

from activity.models import Activity
from coaching.catalog import BUILTIN_RULES
from coaching.models import Rule
from coaching.services import evaluate_rules
from spm.tenancy import tenant_context
from tests.coaching.conftest import (
    TODAY,
    at,
    evaluate,
    log_on_deal,
    log_on_lead,
    make_lead,
    only_rule,
    unresolved,
)
from tests.measurement.builders import (
    make_activity,
    make_benchmark,
    make_deal,
    make_quota,
)

D = dt.date
Q2 = (D(2024, 4, 1), D(2024, 7, 1))


def test_every_organisation_gets_the_builtin_rules(personas):
    with tenant_context(personas.org):
        keys = set(Rule.objects.values_list("builtin_key", flat=True))
    assert keys == {spec.key for spec in BUILTIN_RULES}
    with tenant_context(personas.other_org):
        assert Rule.objects.count() == len(BUILTIN_RULES)


APRIL_10 = D(2024, 4, 10)


def _closed(rep, stages, won: int, lost: int, day=APRIL_10):
    for _ in range(won):
        make_deal(rep, stages["Won"], "1000.00", day)
    for _ in range(lost):
        make_deal(rep, stages["Lost"], "1000.00", day)


def test_win_rate_below_team_median(personas, reps):
    rule = only_rule(personas.org, "win_rate_below_team")
    stages = personas.stages
    # Win rates 20%, 30%, 40%, 50% on 10 closed deals each. The median of an
    # even count is the mean of the middle two: (30 + 40) / 2 = 35.
    for rep, won in zip(reps, (2, 3, 4, 5), strict=True):
        _closed(rep, stages, won, 10 - won)
    # Outside the 90 days before today ([2024-02-15, 2024-05-15)): ignored.
    make_deal(personas.rep4, stages["Lost"], "1.00", D(2024, 2, 14))
    make_deal(personas.rep4, stages["Lost"], "1.00", TODAY)

    evaluate(personas.org)

    alerts = unresolved(rule)
    assert set(alerts) == {"Rita Rep", "Rob Rep"}
    rita = alerts["Rita Rep"]
    assert rita.value == Decimal("20.0")
    assert rita.team_value == Decimal("35")
    assert rita.threshold == Decimal("35")
    assert rita.sample_size == 10
    assert rita.period_key == "rolling"
    assert rita.details["evidence"] == {"won": 2, "lost": 8}
    assert alerts["Rob Rep"].value == Decimal("30.0")


def test_win_rate_needs_minimum_sample(personas, reps):
    rule = only_rule(personas.org, "win_rate_below_team")
    stages = personas.stages
    # Rita lost all of her 3 closed deals: 0%, but 3 < 10 closed deals, so no
    # alert, and she stays out of the median of 30, 40 and 50, which is 40.
    _closed(personas.rep1, stages, 0, 3)
    _closed(personas.rep2, stages, 3, 7)
    _closed(personas.rep3, stages, 4, 6)
    _closed(personas.rep4, stages, 5, 5)

    evaluate(personas.org)

    alerts = unresolved(rule)
    assert set(alerts) == {"Rob Rep"}
    assert alerts["Rob Rep"].team_value == Decimal("40")


def _leads(rep, minutes: int, count: int = 5):
    """Give ``rep`` ``count`` leads assigned at 10:00 on business days, each
    with a response ``minutes`` later the same day."""
    days = [D(2024, 5, 6), D(2024, 5, 7), D(2024, 5, 8), D(2024, 5, 9), D(2024, 5, 10)]
    for day in days[:count]:
        lead = make_lead(rep, at(day, 10))
        log_on_lead(rep, lead, at(day, 10) + dt.timedelta(minutes=minutes))


def test_response_time_above_twice_team_median(personas, reps):
    rule = only_rule(personas.org, "slow_lead_response")
    _leads(personas.rep1, 10)
    _leads(personas.rep2, 20)
    _leads(personas.rep3, 30)
    # Rex responded to four leads in 100 business minutes each. The fifth,
    # assigned on Tuesday 2024-05-14 at 09:00, has no response at Wednesday
    # 12:00: 480 minutes on Tuesday plus 180 on Wednesday = 660 so far.
    _leads(personas.rep4, 100, count=4)
    waiting = make_lead(personas.rep4, at(D(2024, 5, 14), 9), "Wanda Waiting")
    # A colleague's call is not a response from Rex.
    log_on_lead(personas.rep1, waiting, at(D(2024, 5, 14), 9, 5))

    evaluate(personas.org)

    # Medians 10, 20, 30 and 100 (of 100, 100, 100, 100, 660). The team
    # median is (20 + 30) / 2 = 25, so the threshold is 2 x 25 = 50.
    alerts = unresolved(rule)
    assert set(alerts) == {"Rex Rep"}
    rex = alerts["Rex Rep"]
    assert rex.value == Decimal("100")
    assert rex.team_value == Decimal("25")
    assert rex.threshold == Decimal("50")
    assert rex.sample_size == 5
    slowest = rex.details["evidence"]["leads"][0]
    assert slowest["name"] == "Wanda Waiting"
    assert slowest["minutes"] == "660.0"
    assert slowest["responded_at"] is None
    assert rex.details["evidence"]["unanswered"] == 1


def test_response_time_counts_business_minutes(personas, reps):
    rule = only_rule(personas.org, "slow_lead_response")
    for rep in (personas.rep1, personas.rep2, personas.rep3):
        _leads(rep, 30)
    # Five leads assigned on Saturday 2024-05-11 at 10:00 and answered on
    # Monday 2024-05-13 at 09:30: 30 business minutes, not 47.5 hours.
    for _ in range(5):
        lead = make_lead(personas.rep4, at(D(2024, 5, 11), 10))
        log_on_lead(personas.rep4, lead, at(D(2024, 5, 13), 9, 30))

    evaluate(personas.org)

    assert unresolved(rule) == {}


def test_activity_below_benchmark(personas, reps):
    rule = only_rule(personas.org, "activity_below_benchmark")
    make_benchmark(personas.org.pk, Activity.Type.CALL, "2")
    # The last 5 business days before Wednesday 2024-05-15 are 8, 9, 10, 13
    # and 14 May: 2 calls a day gives 10 expected; 80% of it is 8.
    window_days = [D(2024, 5, d) for d in (8, 9, 10, 13, 14)]
    for rep, calls in zip(reps, (7, 8, 10, 0), strict=True):
        for number in range(calls):
            make_activity(rep, at(window_days[number % 5], 10 + number // 5))
    # Outside the window: today, and the day before it starts.
    make_activity(personas.rep1, at(TODAY, 9))
    make_activity(personas.rep1, at(D(2024, 5, 7), 9))

    evaluate(personas.org)

    alerts = unresolved(rule)
    assert set(alerts) == {"Rita Rep", "Rex Rep"}
    rita = alerts["Rita Rep"]
    assert rita.value == Decimal("7")
    assert rita.threshold == Decimal("8")
    assert rita.period_label == "last 5 business days"
    assert rita.details["window"]["start"] == "2024-05-08"
    assert alerts["Rex Rep"].value == Decimal("0")


def test_stale_open_deals_with_evidence(personas, reps):
    rule = only_rule(personas.org, "stale_open_deal")
    stages, rita = personas.stages, personas.rep1
    # Last activity 2024-05-01: 14 days idle on 2024-05-15, stale.
    idle = make_deal(rita, stages["Engaging"], "500.00", D(2024, 6, 30), D(2024, 3, 1))
    idle.name = "Idle Corp"
    idle.save()
    log_on_deal(rita, idle, at(D(2024, 5, 1), 16))
    # Last activity 2024-05-02: 13 days idle, not stale.
    recent = make_deal(rita, stages["Engaging"], "700.00", D(2024, 6, 30))
    log_on_deal(rita, recent, at(D(2024, 5, 2), 8))
    # No activity, created 2024-04-01: 44 days idle, stale.
    untouched = make_deal(
        rita, stages["Prospecting"], "900.00", D(2024, 6, 30), D(2024, 4, 1)
    )
    untouched.name = "Untouched Ltd"
    untouched.save()
    # No activity but created 2024-05-10: 5 days, not stale.
    make_deal(rita, stages["Prospecting"], "100.00", D(2024, 6, 30), D(2024, 5, 10))
    # Closed and archived deals are never stale.
    make_deal(rita, stages["Won"], "100.00", D(2024, 1, 5), D(2024, 1, 1))
    make_deal(rita, stages["Engaging"], "100.00", None, D(2024, 1, 1), archived=True)

    evaluate(personas.org)

    alerts = unresolved(rule)
    assert set(alerts) == {"Rita Rep"}
    alert = alerts["Rita Rep"]
    assert alert.value == Decimal("2")
    assert alert.period_key == "current"
    deals = alert.details["evidence"]["deals"]
    assert [deal["name"] for deal in deals] == ["Untouched Ltd", "Idle Corp"]
    assert deals[0]["idle_days"] == 44
    assert deals[0]["last_activity"] is None
    assert deals[1]["idle_days"] == 14
    assert deals[1]["last_activity"] == "2024-05-01"
    assert deals[1]["id"] == str(idle.public_id)


def test_stale_deal_days_counted_in_local_time(personas, reps):
    rule = only_rule(personas.org, "stale_open_deal")
    personas.org.time_zone = "America/New_York"
    personas.org.save()
    deal = make_deal(
        personas.rep2, personas.stages["Engaging"], "10.00", None, D(2024, 1, 1)
    )
    # 02:00 UTC on 2 May is 22:00 on 1 May in New York: 14 days before the
    # 15th there, so stale, where UTC dates would count 13 days.
    log_on_deal(personas.rep2, deal, at(D(2024, 5, 2), 2))

    evaluate(personas.org)

    alert = unresolved(rule)["Rob Rep"]
    assert alert.details["evidence"]["deals"][0]["idle_days"] == 14


def _quarter_setup(personas):
    """Quotas for Q2 2024 and a coverage target fixed at 3x."""
    personas.org.coverage_target_fixed = Decimal("3.00")
    personas.org.save()
    for rep, amount in (
        (personas.rep1, "100000"),
        (personas.rep2, "100000"),
        (personas.rep3, "50000"),
    ):
        make_quota(rep, *Q2, amount)


def test_coverage_below_target(personas, reps):
    rule = only_rule(personas.org, "coverage_below_target")
    _quarter_setup(personas)
    stages = personas.stages
    # Rita: 40,000 booked, 60,000 to go, 150,000 open closing from today to
    # the end of the quarter: 150,000 / 60,000 = 2.50x, below 1 x 3.00x.
    make_deal(personas.rep1, stages["Won"], "40000.00", D(2024, 4, 20))
    make_deal(personas.rep1, stages["Engaging"], "150000.00", D(2024, 6, 1))
    # Past due and next quarter's deals do not cover this quarter.
    make_deal(personas.rep1, stages["Engaging"], "500000.00", D(2024, 5, 10))
    make_deal(personas.rep1, stages["Engaging"], "500000.00", D(2024, 7, 1))
    # Rob: 300,000 / 100,000 = 3.00x, not below 3.00x.
    make_deal(personas.rep2, stages["Prospecting"], "300000.00", D(2024, 6, 15))
    # Remy booked 60,000 of 50,000: nothing remains, so no coverage is needed.
    make_deal(personas.rep3, stages["Won"], "60000.00", D(2024, 4, 2))
    # Rex has no quota and is not judged.

    evaluate(personas.org)

    alerts = unresolved(rule)
    assert set(alerts) == {"Rita Rep"}
    rita = alerts["Rita Rep"]
    assert rita.value == Decimal("2.5")
    assert rita.threshold == Decimal("3")
    assert rita.period_key == "2024-04-01"
    assert rita.period_label == "FY2024 Q2"


def test_attainment_below_pace(personas, reps):
    rule = only_rule(personas.org, "attainment_behind_pace")
    _quarter_setup(personas)
    stages = personas.stages
    # 2024-05-15 is day 45 of the 91-day quarter: pace 45 / 91 = 49.5%, and
    # 70% of it is 34.65%.
    make_deal(personas.rep1, stages["Won"], "30000.00", D(2024, 4, 20))  # 30%
    make_deal(personas.rep2, stages["Won"], "35000.00", D(2024, 4, 20))  # 35%
    make_deal(personas.rep3, stages["Won"], "10000.00", D(2024, 4, 20))  # 20%

    evaluate(personas.org)

    alerts = unresolved(rule)
    assert set(alerts) == {"Rita Rep", "Remy Rep"}
    rita = alerts["Rita Rep"]
    assert rita.value == Decimal("30.0")
    assert rita.threshold == Decimal("34.65")
    assert rita.details["evidence"]["pace"] == "49.5"


def test_attainment_rule_waits_for_first_third(personas, reps):
    rule = only_rule(personas.org, "attainment_behind_pace")
    _quarter_setup(personas)
    # Nothing booked. On 30 April, day 30 of 91, pace is 33.0%: too early.
    evaluate(personas.org, today=D(2024, 4, 30), now=at(D(2024, 4, 30), 12))
    assert unresolved(rule) == {}

    # On 1 May, day 31, pace is 34.1%, past the first third (33.33%).
    evaluate(personas.org, today=D(2024, 5, 1), now=at(D(2024, 5, 1), 12))
    assert set(unresolved(rule)) == {"Rita Rep", "Rob Rep", "Remy Rep"}


def test_evaluation_defaults_to_the_present(personas):
    summary = evaluate_rules(personas.org)
    assert summary.rules == len(BUILTIN_RULES)
    assert summary.created == 0
