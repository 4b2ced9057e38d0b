"""Bonuses, SPIFF conditions, overrides and the validation of component parameters."""

from __future__ import annotations

from decimal import Decimal

import pytest

from compensation.engine import CalculationError, ParamsError, TeamMember
from tests.compensation.builders import (
    BASIS,
    D,
    amounts,
    component,
    credit,
    flat,
    payee,
    run,
    terms,
)

MARCH = (D(2024, 3, 1), D(2024, 4, 1))
MILESTONES = [
    {"attainment": "100", "amount": "2000"},
    {"attainment": "150", "target_incentive_percent": "10"},
]


@pytest.mark.parametrize(
    ("credited", "expected"),
    [
        ("99999.99", []),
        # Reaching the level exactly counts.
        ("100000.00", ["2000.00"]),
        # 10% of the 60,000 target incentive.
        ("150000.00", ["2000.00", "6000.00"]),
    ],
)
def test_milestone_bonus(credited, expected):
    plan = terms(component("bonus", "Club", milestones=MILESTONES))
    member = payee(
        plan,
        [credit(credited, D(2024, 3, 8))],
        quotas={MARCH: Decimal("100000.00")},
        target_incentive=Decimal("60000.00"),
    )

    statement = run(member, D(2024, 3, 1))[0]

    assert amounts(statement) == [Decimal(value) for value in expected]


def test_bonus_sentence_shows_attainment():
    plan = terms(component("bonus", "Club", milestones=MILESTONES[:1]))
    member = payee(
        plan, [credit("112500", D(2024, 3, 8))], quotas={MARCH: Decimal("100000.00")}
    )

    line = run(member, D(2024, 3, 1))[0].lines[0]

    assert line.explanation == (
        "Bonus for reaching 100% of quota: 112,500.00 of the 100,000.00 quota is "
        "112.5%; pays 2,000.00"
    )
    assert line.date == D(2024, 3, 31)


def test_attainment_without_quota_fails():
    plan = terms(component("bonus", "Club", milestones=MILESTONES[:1]))

    with pytest.raises(CalculationError, match="Rita Rep has no bookings quota"):
        run(payee(plan, [credit("10", D(2024, 3, 8))]), D(2024, 3, 1))


GTX_SPIFF = {
    "starts_on": "2024-03-01",
    "ends_on": "2024-03-31",
    "conditions": [
        {"field": "product", "operator": "contains", "value": "gtx pro"},
        {"field": "amount", "operator": "gte", "value": "5000"},
    ],
}


@pytest.mark.parametrize(
    ("products", "deal_amount", "pays"),
    [
        (["GTX Pro 2"], "5000", True),
        (["GTX Basic", "GTX Pro"], "9000", True),
        (["GTX Basic"], "9000", False),
        (["GTX Pro"], "4999.99", False),
        ([], "9000", False),
    ],
)
def test_spiff_conditions(products, deal_amount, pays):
    plan = terms(component("spiff", "GTX", amount="500", **GTX_SPIFF))
    fields = {"product": products, "amount": Decimal(deal_amount)}
    deal = credit(deal_amount, D(2024, 3, 8), fields=fields)

    statement = run(payee(plan, [deal]), D(2024, 3, 1))[0]

    assert amounts(statement) == ([Decimal("500.00")] if pays else [])


def test_spiff_fixed_amount_per_share():
    plan = terms(
        component(
            "spiff", "March", starts_on="2024-03-01", ends_on="2024-03-31", amount="500"
        )
    )
    credits = [
        credit("6000", D(2024, 3, 8), 1, share="0.6", deal_amount="10000"),
        credit("-300", D(2024, 3, 9), 2),
    ]

    statement = run(payee(plan, credits), D(2024, 3, 1))[0]

    assert amounts(statement) == [Decimal("300.00")]
    assert statement.lines[0].explanation == (
        "SPIFF for deals closed 2024-03-01 to 2024-03-31: 500.00 per deal x your "
        "60% share = 300.00"
    )


def test_spiff_rate_with_text_condition():
    spiff = component(
        "spiff",
        "Retail push",
        starts_on="2024-03-01",
        ends_on="2024-03-31",
        rate="0.02",
        conditions=[
            {"field": "account_industry", "operator": "in", "value": ["Retail", "Food"]}
        ],
    )
    credits = [
        credit("1000", D(2024, 3, 4), 1, fields={"account_industry": "retail"}),
        credit("1000", D(2024, 3, 5), 2, fields={"account_industry": "Software"}),
    ]

    statement = run(payee(terms(spiff), credits), D(2024, 3, 1))[0]

    assert amounts(statement) == [Decimal("20.00")]


def test_override_on_reporting_tree():
    plan = terms(flat("0.01"), component("override", "Team", rate="0.02", levels=2))
    team = (
        TeamMember(2, "Rob Rep", 1, (credit("30000", D(2024, 3, 5), 11, member_id=2),)),
        TeamMember(
            3,
            "Rita Rep",
            2,
            (
                credit("15000", D(2024, 3, 6), 12, member_id=3),
                credit("5000", D(2024, 4, 2), 13, member_id=3),
            ),
        ),
        TeamMember(
            4, "Deep Rep", 3, (credit("90000", D(2024, 3, 7), 14, member_id=4),)
        ),
    )
    manager = payee(plan, [credit("10000", D(2024, 3, 9), 10)], team={BASIS: team})

    statement = run(manager, D(2024, 3, 1))[0]

    # Own deal at 1%; 2% of Rita's March 15,000 and of Rob's 30,000. Deep
    # Rep is three levels down, beyond the component's two.
    assert amounts(statement) == [
        Decimal("100.00"),
        Decimal("300.00"),
        Decimal("600.00"),
    ]
    assert statement.lines[1].explanation == (
        "2% override on Rita Rep's credited bookings of 15,000.00 (1 deal) = 300.00"
    )


@pytest.mark.parametrize(
    ("kind", "params", "field"),
    [
        ("flat", {}, "rate"),
        ("flat", {"rate": "0.1", "tiers": []}, "tiers"),
        ("flat", {"rate": True}, "rate"),
        ("tiered", {"basis": "amount", "tiers": [{"from": 0, "rate": 0.1}]}, "mode"),
        ("tiered", {"mode": "marginal", "tiers": [{"from": 0, "rate": 0.1}]}, "basis"),
        (
            "tiered",
            {"basis": "amount", "mode": "stepped", "tiers": [{"from": 0, "rate": 0.1}]},
            "mode",
        ),
        ("bonus", {"milestones": []}, "milestones"),
        ("bonus", {"milestones": [{"attainment": "100"}]}, "milestones[0].amount"),
        (
            "bonus",
            {
                "milestones": [
                    {"attainment": 100, "amount": 1},
                    {"attainment": 90, "amount": 1},
                ]
            },
            "milestones[1].attainment",
        ),
        ("spiff", {"ends_on": "2024-03-31", "amount": "5"}, "starts_on"),
        (
            "spiff",
            {"starts_on": "2024-04-01", "ends_on": "2024-03-31", "amount": "5"},
            "ends_on",
        ),
        ("spiff", {"starts_on": "2024-03-01", "ends_on": "2024-03-31"}, "amount"),
        (
            "spiff",
            {
                "starts_on": "2024-03-01",
                "ends_on": "2024-03-31",
                "amount": "5",
                "conditions": [{"field": "colour", "operator": "equals", "value": "x"}],
            },
            "conditions[0].field",
        ),
        (
            "spiff",
            {
                "starts_on": "2024-03-01",
                "ends_on": "2024-03-31",
                "amount": "5",
                "conditions": [
                    {"field": "amount", "operator": "contains", "value": "1"}
                ],
            },
            "conditions[0].operator",
        ),
        ("override", {"rate": "0.02", "levels": 0}, "levels"),
        ("commission", {}, "kind"),
    ],
)
def test_invalid_params_name_field(kind, params, field):
    with pytest.raises(ParamsError) as raised:
        component(kind, **params)

    assert raised.value.field == field


def test_bonus_rejects_deal_cap():
    with pytest.raises(ParamsError) as raised:
        component("bonus", milestones=MILESTONES, cap_per_deal="10")

    assert raised.value.field == "cap_per_deal"
