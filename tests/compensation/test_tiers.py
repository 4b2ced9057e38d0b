"""Tier tables: half-open bounds, and marginal against retroactive pay."""

from __future__ import annotations

from decimal import Decimal

import pytest

from compensation.engine import ParamsError, TierTable
from tests.compensation.builders import D, amounts, component, credit, payee, run, terms

PLAN_A = [{"from": "0", "rate": "0.50"}, {"from": "100000", "rate": "0.60"}]
PLAN_B = [
    {"from": "0", "rate": "0.03"},
    {"from": "300000", "rate": "0.05"},
    {"from": "500000", "rate": "0.07"},
]


def _commission(tiers, mode: str, *amounts_in_period: str) -> list[Decimal]:
    plan = terms(component("tiered", basis="amount", mode=mode, tiers=tiers))
    credits = [
        credit(amount, D(2024, 3, 1 + index), index + 1)
        for index, amount in enumerate(amounts_in_period)
    ]
    return amounts(run(payee(plan, credits), D(2024, 3, 1))[0])


@pytest.mark.parametrize(
    ("tiers", "credited", "mode", "expected"),
    [
        # 100,000 x 50% + 80,000 x 60%
        (PLAN_A, "180000", "marginal", "98000.00"),
        # 180,000 x 60%
        (PLAN_A, "180000", "retroactive", "108000.00"),
        # 300,000 x 3% + 200,000 x 5% + 100,000 x 7% = 9,000 + 10,000 + 7,000
        (PLAN_B, "600000", "marginal", "26000.00"),
        # 600,000 x 7%
        (PLAN_B, "600000", "retroactive", "42000.00"),
    ],
)
def test_marginal_and_retroactive_modes(tiers, credited, mode, expected):
    assert _commission(tiers, mode, credited) == [Decimal(expected)]


CYCLE_BANDS = [
    {"from": "0", "to": "500", "rate": "0.25"},
    {"from": "500", "to": "3000", "rate": "0.30"},
    {"from": "3000", "rate": "0.40"},
]


@pytest.mark.parametrize(
    ("revenue", "expected"),
    [
        ("400", "100.00"),
        ("100", "25.00"),
        # 500 x 25% + 1,000 x 30% = 125 + 300
        ("1500", "425.00"),
        # 125 + 2,500 x 30% + 2,000 x 40% = 125 + 750 + 800
        ("5000", "1675.00"),
        # A row on a bound belongs to the band that starts there, and adds nothing.
        ("500.00", "125.00"),
        ("3000.00", "875.00"),
    ],
)
def test_half_open_bands_per_cycle(revenue, expected):
    assert _commission(CYCLE_BANDS, "marginal", revenue) == [Decimal(expected)]


def test_pay_cycles_add_up():
    plan = terms(
        component("tiered", basis="amount", mode="marginal", tiers=CYCLE_BANDS)
    )
    credits = [
        credit(amount, D(2024, month, 15), month)
        for month, amount in zip(
            range(1, 5), ["400", "100", "1500", "5000"], strict=True
        )
    ]

    statements = run(payee(plan, credits), D(2024, 1, 1), 4)

    totals = [statement.total for statement in statements]
    assert totals == [Decimal(v) for v in ["100.00", "25.00", "425.00", "1675.00"]]
    assert sum(totals) == Decimal("2225.00")


def test_retroactive_total_on_bound():
    # 500.00 is the start of [500, 3000), so every amount earns 30%.
    assert _commission(CYCLE_BANDS, "retroactive", "200", "300") == [
        Decimal("60.00"),
        Decimal("90.00"),
    ]


def test_marginal_line_names_tiers():
    plan = terms(component("tiered", basis="amount", mode="marginal", tiers=PLAN_A))
    statement = run(payee(plan, [credit("180000", D(2024, 3, 4))]), D(2024, 3, 1))[0]

    assert statement.lines[0].explanation == (
        "100,000.00 x 50% in tier 0.00-100,000.00 + 80,000.00 x 60% in tier "
        "100,000.00 and up = 98,000.00"
    )


def test_attainment_tiers_scale_with_quota():
    tiers = [
        {"from": "0", "to": "100", "rate": "0.08"},
        {"from": "100", "to": "150", "rate": "0.10"},
        {"from": "150", "rate": "0.12"},
    ]
    plan = terms(component("tiered", basis="attainment", mode="marginal", tiers=tiers))
    quota = {(D(2024, 3, 1), D(2024, 4, 1)): Decimal("50000.00")}
    credits = [credit("50000", D(2024, 3, 4), 1), credit("12500", D(2024, 3, 20), 2)]

    statement = run(payee(plan, credits, quotas=quota), D(2024, 3, 1))[0]

    # 50,000 is 100% of the quota: 50,000 x 8%. The next 12,500 is in 100-150%.
    assert amounts(statement) == [Decimal("4000.00"), Decimal("1250.00")]
    assert statement.lines[1].explanation == (
        "12,500.00 x 10% in tier 100-150% of the 50,000.00 quota = 1,250.00"
    )


def test_marginal_credit_note_earns_back():
    # 12,000 reaches the 60% tier by 2,000; a 5,000 credit note takes back
    # 2,000 x 60% + 3,000 x 50%.
    assert _commission(
        PLAN_A[:1] + [{"from": "10000", "rate": "0.60"}], "marginal", "12000", "-5000"
    ) == [
        Decimal("6200.00"),
        Decimal("-2700.00"),
    ]


@pytest.mark.parametrize(
    ("rows", "field"),
    [
        ([], "tiers"),
        ([{"from": "10", "rate": "0.1"}], "tiers[0].from"),
        ([{"from": "0", "rate": "0.1"}, {"from": "0", "rate": "0.2"}], "tiers[1].from"),
        (
            [{"from": "0", "to": "400", "rate": "0.1"}, {"from": "500", "rate": "0.2"}],
            "tiers[0].to",
        ),
        (
            [
                {"from": "0", "to": "499.99", "rate": "0.1"},
                {"from": "500", "rate": "0.2"},
            ],
            "tiers[0].to",
        ),
        ([{"from": "0", "to": "500", "rate": "0.1"}], "tiers[0].to"),
        ([{"from": "0", "rate": "-0.1"}], "tiers[0].rate"),
        ([{"from": "0", "rate": "8"}, {"from": "5", "rate": "12"}], "tiers[1].rate"),
        ([{"from": "0", "rate": "abc"}], "tiers[0].rate"),
        ([{"from": "0", "rate": "0.1", "upto": "5"}], "tiers[0].upto"),
    ],
)
def test_invalid_tier_table_names_field(rows, field):
    with pytest.raises(ParamsError) as raised:
        TierTable.parse(rows)

    assert raised.value.field == field


def test_marginal_lines_explain_each_move():
    plan = terms(
        component("tiered", basis="amount", mode="marginal", tiers=CYCLE_BANDS)
    )
    credits = [
        credit(amount, D(2024, 3, day), day)
        for day, amount in enumerate(["400.00", "0.00", "-100.50", "300.50"], start=1)
    ]

    statement = run(payee(plan, credits), D(2024, 3, 1))[0]

    # -100.50 x 25% = -25.125 and 200.50 x 25% + 100.00 x 30% = 80.125 round
    # half away from zero, to -25.13 and 80.13.
    assert [line.explanation for line in statement.lines] == [
        "400.00 x 25% in tier 0.00-500.00 = 100.00",
        "0.00 x 25% = 0.00",
        "-100.50 x 25% in tier 0.00-500.00 = -25.13",
        "200.50 x 25% in tier 0.00-500.00 + 100.00 x 30% in tier "
        "500.00-3,000.00 = 80.13",
    ]
    assert amounts(statement) == [
        Decimal("100.00"),
        Decimal("0.00"),
        Decimal("-25.13"),
        Decimal("80.13"),
    ]


def test_marginal_deal_cap_explained():
    tiered = component(
        "tiered", basis="amount", mode="marginal", tiers=CYCLE_BANDS, cap_per_deal="90"
    )
    credits = [credit("400.00", D(2024, 3, 1), 1), credit("-400.00", D(2024, 3, 2), 2)]

    statement = run(payee(terms(tiered), credits), D(2024, 3, 1))[0]

    assert [line.explanation for line in statement.lines] == [
        "400.00 x 25% in tier 0.00-500.00; capped at 90.00 per deal = 90.00",
        "-400.00 x 25% in tier 0.00-500.00; capped at 90.00 per deal = -90.00",
    ]
    assert amounts(statement) == [Decimal("90.00"), Decimal("-90.00")]


# Credits that stay in a tier, land on a bound, start on one, cross one
# just past it or two at once, and go back down (credit notes), with a zero
# among them.
RUNNING_TOTAL_MOVES = [
    "300.00",
    "200.00",
    "0.01",
    "2499.99",
    "1000.00",
    "-1500.00",
    "0.00",
    "-2000.00",
    "-100.00",
    "150.00",
    "3450.00",
    "-3999.00",
    "4000.00",
    "50.50",
]


def test_marginal_lines_match_portions():
    """Each line pays and names the tier portions of its move.

    The expected values come from the table itself: ``marginal_total(b) -
    marginal_total(a)`` for the amount, and ``describe_portions`` of
    ``portions(a, b)`` for the sentence.
    """
    from compensation.engine.tiered import _tier_label, parse
    from compensation.engine.tiers import describe_portions
    from spm.money import round_money

    spec = parse({"basis": "amount", "mode": "marginal", "tiers": CYCLE_BANDS})
    table = spec.tiers
    label = _tier_label(spec, table)
    plan = terms(
        component("tiered", basis="amount", mode="marginal", tiers=CYCLE_BANDS)
    )
    credits = [
        credit(amount, D(2024, 3, 1 + index), index + 1)
        for index, amount in enumerate(RUNNING_TOTAL_MOVES)
    ]
    lines = run(payee(plan, credits), D(2024, 3, 1))[0].lines
    assert len(lines) == len(RUNNING_TOTAL_MOVES)
    running = Decimal("0.00")
    for line, moved in zip(lines, RUNNING_TOTAL_MOVES, strict=True):
        end = running + Decimal(moved)
        expected = round_money(
            table.marginal_total(end) - table.marginal_total(running)
        )
        assert line.amount == expected, (moved, running)
        parts = table.portions(running, end)
        if parts:
            assert line.explanation.startswith(describe_portions(table, parts, label))
        else:
            assert line.explanation.startswith(f"{moved} x 25%")
        running = end


MARCH_START = D(2024, 3, 1)


def _segment(plan, credits, *, start=MARCH_START, quota=None):
    from compensation.engine.plans import Segment
    from tests.compensation.builders import assignment

    return Segment(
        start=start,
        end=D(2024, 4, 1),
        period_start=D(2024, 3, 1),
        period_end=D(2024, 4, 1),
        terms=plan,
        assignment=assignment(plan),
        credits=tuple(credits),
        quota=quota,
    )


ATTAINMENT_BANDS = [
    {"from": "0", "to": "100", "rate": "0.08"},
    {"from": "100", "to": "150", "rate": "0.10"},
    {"from": "150", "rate": "0.12"},
]


@pytest.mark.parametrize(
    ("basis", "mode", "options", "start", "quota"),
    [
        ("amount", "marginal", {}, D(2024, 3, 1), None),
        ("amount", "retroactive", {}, D(2024, 3, 1), None),
        ("amount", "marginal", {"cap_per_deal": "600"}, D(2024, 3, 1), None),
        ("amount", "marginal", {"threshold": "99999"}, D(2024, 3, 1), None),
        ("amount", "marginal", {}, D(2024, 3, 17), None),
        ("attainment", "marginal", {}, D(2024, 3, 1), "4000"),
        ("attainment", "retroactive", {}, D(2024, 3, 1), "4000"),
        ("attainment", "marginal", {}, D(2024, 3, 10), "4000"),
        ("attainment", "marginal", {"threshold": "50"}, D(2024, 3, 1), "90000"),
    ],
)
def test_tier_column_matches_sentences(basis, mode, options, start, quota):
    """The tiers ``entries`` reports for each line are what ``tier_text`` reads.

    The runs cover credits that stay in a tier, cross one or two, go back
    down, are capped, are prorated and stay below a threshold.
    """
    from compensation.engine import tiered
    from compensation.engine.tiers import tier_text

    bands = CYCLE_BANDS if basis == "amount" else ATTAINMENT_BANDS
    tiered_component = component(
        "tiered", basis=basis, mode=mode, tiers=bands, **options
    )
    credits = [
        credit(amount, D(2024, 3, 1 + index % 28), index + 1)
        for index, amount in enumerate(RUNNING_TOTAL_MOVES)
    ]
    segment = _segment(
        terms(tiered_component),
        credits,
        start=start,
        quota=Decimal(quota) if quota else None,
    )
    column: list[str] = []

    found = tiered.entries(tiered_component, segment, column)

    assert len(column) == len(found) == len(credits)
    for (_, _, explanation), tiers in zip(found, column, strict=True):
        assert tiers == tier_text(explanation), explanation
    assert tiered.entries(tiered_component, segment) == found
