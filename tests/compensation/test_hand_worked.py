"""Hand-worked statements, one row per rule, through the whole engine.

Each case builds a payee from plain values, calculates the listed months
and compares every line and the total with the figures worked out below.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from decimal import Decimal

import pytest

from compensation.crediting import DealInput, FxRates, SplitInput, credit_deals
from compensation.engine import ClawbackTerms, DrawTerms
from tests.compensation.builders import (
    D,
    amounts,
    assignment,
    component,
    credit,
    flat,
    payee,
    run,
    terms,
)

TIERS = [
    {"from": "0", "to": "10000", "rate": "0.05"},
    {"from": "10000", "rate": "0.10"},
]


@dataclass
class Case:
    payee: object
    first_month: dt.date
    months: int
    # Lines and total of each month calculated, in order.
    lines: list[list[str]]
    totals: list[str]


def _tier_boundary(mode: str) -> object:
    plan = terms(component("tiered", basis="amount", mode=mode, tiers=TIERS))
    return payee(
        plan, [credit("8000", D(2024, 3, 4), 1), credit("5000", D(2024, 3, 18), 2)]
    )


def _spiff_window_edge() -> object:
    # Both deals are known only by the instant they closed. In New York (UTC-4
    # in spring) 03:30 UTC on 1 April is 23:30 on 31 March, the SPIFF's last
    # day; 04:30 UTC is 00:30 on 1 April, the day after it.
    deals = [
        DealInput(
            deal_id=deal_id,
            name=name,
            amount=Decimal("1000.00"),
            currency="USD",
            owner_id=1,
            closed_at=closed_at,
        )
        for deal_id, name, closed_at in [
            (1, "Late on the last day", dt.datetime(2024, 4, 1, 3, 30, tzinfo=dt.UTC)),
            (2, "Just after midnight", dt.datetime(2024, 4, 1, 4, 30, tzinfo=dt.UTC)),
        ]
    ]
    credits = credit_deals(
        deals,
        currency="USD",
        rates=FxRates({}),
        time_zone="America/New_York",
        default_currency="USD",
    )
    spiff = component(
        "spiff",
        "March SPIFF",
        starts_on="2024-03-01",
        ends_on="2024-03-31",
        amount="250",
    )
    return payee(terms(spiff), credits)


CASES = {
    # 8,000 fills the 5% tier up to 8,000. The next 5,000 crosses 10,000:
    # 2,000 x 5% + 3,000 x 10% = 100 + 300.
    "tier boundary marginal": Case(
        _tier_boundary("marginal"), D(2024, 3, 1), 1, [["400.00", "400.00"]], ["800.00"]
    ),
    # The period's 13,000 is in the 10% tier, which pays every deal:
    # 8,000 x 10% and 5,000 x 10%.
    "tier boundary retroactive": Case(
        _tier_boundary("retroactive"),
        D(2024, 3, 1),
        1,
        [["800.00", "500.00"]],
        ["1300.00"],
    ),
    # 6,000 x 10% = 600 fits under the 1,000 cap; 7,000 x 10% = 700 would
    # take the total to 1,300, so only the remaining 400 is paid.
    "cap binds inside the second deal": Case(
        payee(
            terms(flat("0.10", cap_per_period="1000")),
            [credit("6000", D(2024, 3, 4), 1), credit("7000", D(2024, 3, 18), 2)],
        ),
        D(2024, 3, 1),
        1,
        [["600.00", "400.00"]],
        ["1000.00"],
    ),
    # 40,000 of a 100,000 quota is 40%, under the 50% gate: nothing is paid,
    # though 40,000 x 8% would be 3,200.
    "threshold not reached": Case(
        payee(
            terms(
                component(
                    "tiered",
                    basis="attainment",
                    mode="marginal",
                    threshold="50",
                    tiers=[{"from": "0", "rate": "0.08"}],
                )
            ),
            [credit("40000", D(2024, 3, 4))],
            quotas={(D(2024, 3, 1), D(2024, 4, 1)): Decimal("100000.00")},
        ),
        D(2024, 3, 1),
        1,
        [["0.00"]],
        ["0.00"],
    ),
    # 24,000 x 10% = 2,400 paid in January. Cancelled on 20 April after 3
    # full months of a 12-month term: 2,400 x 9 / 12 = 1,800 comes back in
    # April. January still pays 2,400.
    "clawback after payout": Case(
        payee(
            terms(flat("0.10"), clawback=ClawbackTerms("prorated", 12)),
            [credit("24000", D(2024, 1, 10), 7)],
            cancellations={7: D(2024, 4, 20)},
        ),
        D(2024, 1, 1),
        4,
        [["2400.00"], [], [], ["-1800.00"]],
        ["2400.00", "0.00", "0.00", "-1800.00"],
    ),
    # Version 1 pays 5% until 15 March, version 2 pays 8% from 16 March:
    # 10,000 on 10 March x 5% + 10,000 on 20 March x 8% = 500 + 800.
    "plan change in mid-period": Case(
        payee(
            (
                terms(flat("0.05"), label="Plan v1"),
                terms(flat("0.08"), label="Plan v2", effective_from=D(2024, 3, 16)),
            ),
            [credit("10000", D(2024, 3, 10), 1), credit("10000", D(2024, 3, 20), 2)],
        ),
        D(2024, 3, 1),
        1,
        [["500.00", "800.00"]],
        ["1300.00"],
    ),
    # A 3,000 recoverable draw. January earns 1,000 (10,000 x 10%), so 2,000
    # is advanced and owed. February earns 4,500 (45,000 x 10%): 1,500 over
    # the draw goes to the debt, leaving 500 owed and 3,000 paid.
    "recoverable draw over two periods": Case(
        payee(
            terms(flat("0.10")),
            [credit("10000", D(2024, 1, 10), 1), credit("45000", D(2024, 2, 10), 2)],
            draws=(DrawTerms(Decimal("3000.00"), "USD", True, D(2024, 1, 1)),),
        ),
        D(2024, 1, 1),
        2,
        [["1000.00", "2000.00"], ["4500.00", "-1500.00"]],
        ["3000.00", "3000.00"],
    ),
    # Only the deal closed at 23:30 local time on 31 March earns the 250.
    "SPIFF window edge in the organisation's time zone": Case(
        _spiff_window_edge(), D(2024, 3, 1), 2, [["250.00"], []], ["250.00", "0.00"]
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_hand_worked_statement(name):
    case = CASES[name]

    statements = run(case.payee, case.first_month, case.months)

    for statement, lines, total in zip(
        statements, case.lines, case.totals, strict=True
    ):
        assert amounts(statement) == [Decimal(value) for value in lines]
        assert statement.total == Decimal(total)
        assert statement.total == sum(amounts(statement), Decimal(0))


def test_three_way_split_adds_up():
    deal = DealInput(
        deal_id=1,
        name="Three-way",
        amount=Decimal("100.01"),
        currency="USD",
        owner_id=1,
        splits=tuple(SplitInput(member, Decimal("33.3333")) for member in (1, 2, 3)),
        close_date=D(2024, 3, 5),
    )

    credits = credit_deals(
        [deal],
        currency="USD",
        rates=FxRates({}),
        time_zone="UTC",
        default_currency="USD",
    )

    # 10,001 cents / 3 = 3,333.67: each share floors to 33.33 and the two
    # cents left go to the first two splits, as the remainders tie.
    assert [c.amount for c in credits] == [
        Decimal("33.34"),
        Decimal("33.34"),
        Decimal("33.33"),
    ]
    assert sum(c.amount for c in credits) == Decimal("100.01")


def test_fx_on_close_date():
    deal = DealInput(
        deal_id=1,
        name="Berlin",
        amount=Decimal("5000.00"),
        currency="EUR",
        owner_id=1,
        close_date=D(2024, 5, 31),
    )
    rates = FxRates(
        {
            ("EUR", "USD", D(2024, 5, 31)): Decimal("1.0850"),
            ("EUR", "USD", D(2024, 6, 1)): Decimal("1.0900"),
        }
    )
    credits = credit_deals(
        [deal], currency="USD", rates=rates, time_zone="UTC", default_currency="USD"
    )

    statement = run(payee(terms(flat("0.10")), credits), D(2024, 5, 1))[0]

    # 5,000 EUR x 1.0850 (31 May, not 1 June) = 5,425.00 USD; x 10% = 542.50.
    assert credits[0].amount == Decimal("5425.00")
    assert credits[0].fx_rate == Decimal("1.0850")
    assert statement.total == Decimal("542.50")
    assert "5,000.00 EUR at 1.0850 EUR/USD of 2024-05-31" == credits[0].fx_note


def test_credit_after_assignment_end_is_noted():
    plan = terms(flat("0.10"))
    credits = [
        credit("1000", D(2024, 3, 10), 1),
        credit("1000", D(2024, 3, 20), 2, name="Late deal"),
    ]
    member = payee(plan, credits)
    ended = replace(member.assignments[0], end=D(2024, 3, 15))
    member = replace(member, assignments=(ended,))

    statement = run(member, D(2024, 3, 1))[0]

    assert amounts(statement) == [Decimal("100.00")]
    assert statement.notes == (
        "Late deal, credited on 2024-03-20, falls on a day with no published plan "
        "assigned, so it earns nothing.",
    )


def test_credits_in_assignment_gap_noted():
    plan = terms(flat("0.10"))
    credits = [
        credit("1000", D(2024, 3, 1), 1),
        credit("1000", D(2024, 3, 10), 2, name="Gap start"),
        credit("1000", D(2024, 3, 19), 3, name="Gap end"),
        credit("1000", D(2024, 3, 20), 4),
        credit("1000", D(2024, 3, 31), 5),
    ]
    member = replace(
        payee(plan, credits),
        assignments=(
            assignment(plan, end=D(2024, 3, 9)),
            assignment(plan, start=D(2024, 3, 20)),
        ),
    )

    statement = run(member, D(2024, 3, 1))[0]

    assert amounts(statement) == [Decimal("100.00")] * 3
    assert statement.notes == (
        "Gap start, credited on 2024-03-10, falls on a day with no published plan "
        "assigned, so it earns nothing.",
        "Gap end, credited on 2024-03-19, falls on a day with no published plan "
        "assigned, so it earns nothing.",
    )


def test_overlapping_assignments_leave_no_note():
    plan = terms(flat("0.10"))
    credits = [credit("1000", D(2024, 3, 1), 1), credit("1000", D(2024, 3, 31), 2)]
    member = replace(
        payee(plan, credits),
        assignments=(
            assignment(plan, end=D(2024, 3, 20)),
            assignment(plan, start=D(2024, 3, 10)),
        ),
    )

    statement = run(member, D(2024, 3, 1))[0]

    assert amounts(statement) == [Decimal("100.00")] * 2
    assert statement.notes == ()
