"""Caps per deal, per component and per plan, and the plan year schedule."""

from __future__ import annotations

from decimal import Decimal

from compensation.crediting import DealInput, FxRates, SplitInput, credit_deals
from compensation.engine import Payee, TierTable, calculate_periods
from tests.compensation.builders import (
    BASIS,
    D,
    amounts,
    assignment,
    component,
    credit,
    flat,
    months,
    payee,
    run,
    terms,
)

RITA, ROB = 1, 2


def _split_deal_credits():
    deal = DealInput(
        deal_id=1,
        name="Big deal",
        amount=Decimal("200000.00"),
        currency="USD",
        owner_id=RITA,
        splits=(SplitInput(RITA, Decimal(60)), SplitInput(ROB, Decimal(40))),
        close_date=D(2024, 3, 12),
    )
    return credit_deals(
        [deal],
        currency="USD",
        rates=FxRates({}),
        time_zone="UTC",
        default_currency="USD",
    )


def _statement_of(member_id: int, plan, credits):
    member = Payee(
        member_id=member_id,
        name=f"Member {member_id}",
        assignments=(assignment(plan),),
        credits={BASIS: tuple(c for c in credits if c.member_id == member_id)},
    )
    return calculate_periods(member, months(D(2024, 3, 1), 1))[0]


def test_deal_cap_before_split():
    plan = terms(flat("0.10", cap_per_deal="15000"))
    credits = _split_deal_credits()

    rita = _statement_of(RITA, plan, credits)
    rob = _statement_of(ROB, plan, credits)

    # The deal earns min(200,000 x 10%, 15,000) = 15,000, split 60 / 40.
    # Capping each share instead (12,000 and 8,000) would pay 20,000.
    assert rita.total == Decimal("9000.00")
    assert rob.total == Decimal("6000.00")
    assert rita.lines[0].explanation == (
        "120,000.00 x 10%; capped at your 60% share of the 15,000.00 cap per deal, "
        "9,000.00 = 9,000.00"
    )


def test_deal_cap_for_sole_owner():
    plan = terms(flat("0.10", cap_per_deal="500"))
    statement = run(payee(plan, [credit("8000", D(2024, 3, 4))]), D(2024, 3, 1))[0]

    assert amounts(statement) == [Decimal("500.00")]


def test_plan_cap_across_components():
    spiff = component(
        "spiff", "Spring", starts_on="2024-03-01", ends_on="2024-03-31", amount="300"
    )
    plan = terms(flat("0.10"), spiff, cap_per_period=Decimal("1500.00"))
    credits = [credit("10000", D(2024, 3, 4), 1), credit("10000", D(2024, 3, 20), 2)]

    statement = run(payee(plan, credits), D(2024, 3, 1))[0]

    # In date order, 1,000 and 300 on the 4th fit (1,300). On the 20th the
    # 1,000 commission gets the 200 left, and the 300 SPIFF gets nothing.
    assert [(line.kind, line.amount) for line in statement.lines] == [
        ("commission", Decimal("1000.00")),
        ("spiff", Decimal("300.00")),
        ("commission", Decimal("200.00")),
        ("spiff", Decimal("0.00")),
    ]
    assert statement.total == Decimal("1500.00")
    assert [line.gross for line in statement.lines][2] == Decimal("1000.00")


def test_negative_line_under_binding_cap():
    plan = terms(flat("0.10", cap_per_period="1000"))
    credits = [credit("20000", D(2024, 3, 4), 1), credit("-2000", D(2024, 3, 20), 2)]

    statement = run(payee(plan, credits), D(2024, 3, 1))[0]

    # The gross goes from 2,000 to 1,800, still over the 1,000 cap.
    assert amounts(statement) == [Decimal("1000.00"), Decimal("0.00")]


def test_period_cap_prorated_on_plan_change():
    v1 = terms(flat("0.10", cap_per_period="3100"), label="Plan v1")
    v2 = terms(flat("0.10"), label="Plan v2", effective_from=D(2024, 3, 16))
    credits = [credit("50000", D(2024, 3, 10))]

    statement = run(payee((v1, v2), credits), D(2024, 3, 1))[0]

    # Version 1 covers 15 of March's 31 days: 3,100 x 15 / 31 = 1,500.
    assert amounts(statement) == [Decimal("1500.00")]


YEAR_SCHEDULE = TierTable.parse(
    [{"from": "0", "rate": "0.75"}, {"from": "100000", "rate": "1"}]
)


def test_year_schedule_crossed_inside_deal():
    plan = terms(flat("0.10"), year_payout_tiers=YEAR_SCHEDULE)
    credits = [
        credit("950000", D(2024, 2, 10), 1),  # 95,000 gross
        credit("100000", D(2024, 3, 10), 2),  # 10,000 gross, crosses 100,000
        credit("10000", D(2024, 4, 10), 3),  # 1,000 gross, all above
        credit("10000", D(2025, 1, 10), 4),  # 1,000 gross in a new plan year
    ]

    statements = run(payee(plan, credits), D(2024, 1, 1), 13)

    # February: 95,000 x 75%. March: 5,000 x 75% + 5,000 x 100% = 8,750,
    # where one rate for the deal would pay 7,500 or 10,000. April is all
    # at 100%. The anniversary on 1 January restarts the year at 75%.
    totals = {s.period_start.strftime("%Y-%m"): s.total for s in statements}
    assert totals["2024-02"] == Decimal("71250.00")
    assert totals["2024-03"] == Decimal("8750.00")
    assert totals["2024-04"] == Decimal("1000.00")
    assert totals["2025-01"] == Decimal("750.00")
    assert statements[2].lines[0].gross == Decimal("10000.00")
    assert (
        statements[2]
        .lines[0]
        .explanation.endswith(
            "of that gross, 5,000.00 x 75% in the plan year's gross 0.00-100,000.00 + "
            "5,000.00 x 100% in the plan year's gross from 100,000.00 = 8,750.00"
        )
    )
